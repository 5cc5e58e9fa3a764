//! The run timeline: append-only JSON Lines, one event a line, written and
//! flushed as it happens, so a killed process leaves a valid prefix.
//!
//! Every event shares one envelope — `ts` (RFC 3339 UTC, milliseconds), `seq`,
//! `run_id`, `incident_id`, `type` — plus its own fields, and `hash`: the
//! SHA-256 of the previous event's hash and this event's canonical JSON, so an
//! edited, removed or reordered line is detectable — keyed (HMAC-SHA256) when
//! a timeline key is set, so that nobody without it can recompute the chain
//! ([`chain`]). Every string is redacted before it is written: the [`Writer`]
//! is the one choke point for secrets. Record files are never opened through
//! a symbolic link.
//!
//! [`Event`] is typed — one [`Payload`] variant per event type — and
//! serialises to exactly the JSON earlier releases wrote, so old timelines
//! read, re-serialise and verify unchanged. [`describe`] is the one place
//! that turns an event into words for people; [`RecordedIncident`] reads the
//! incident a run or detection recorded.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};

pub mod chain;
mod describe;
mod event;
mod payload;
mod recorded;
mod writer;

pub use chain::{ChainKey, Scheme};
pub use describe::{action_text, describe};
pub use event::{Event, chain_hash, chain_hash_with};
pub use payload::*;
pub use recorded::{RecordedAlert, RecordedIncident};
pub use writer::Writer;

/// A record (a timeline, an incident log) that could not be written: the
/// disk is full, a file-size limit or quota was reached, or the device
/// failed. What was written before it stays as it was. Its message names the
/// file and the OS's reason, in one line.
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot write {what} `{}`: {reason}", path.display())]
pub struct Unwritable {
    /// What kind of record (`timeline`).
    pub what: &'static str,
    /// The file.
    pub path: std::path::PathBuf,
    /// The OS's reason (`No space left on device (os error 28)`).
    pub reason: String,
    /// The OS error number, when there was one.
    pub errno: Option<i32>,
}

impl Unwritable {
    /// The failed write of `what` at `path`.
    pub fn new(what: &'static str, path: &Path, err: &std::io::Error) -> Self {
        Unwritable {
            what,
            path: path.to_path_buf(),
            reason: err.to_string(),
            errno: err.raw_os_error(),
        }
    }
}

/// File name of a run's timeline inside its run directory.
pub const FILE_NAME: &str = "timeline.jsonl";

/// A time as timeline events write it (RFC 3339 UTC, milliseconds).
pub fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A timeline read back.
#[derive(Debug, Default)]
pub struct Timeline {
    /// The complete events.
    pub events: Vec<Event>,
    /// Set when the last line was torn (the writer was killed mid-line).
    pub torn_tail: bool,
    /// Lines that did not parse, other than a torn last line (1-based).
    pub bad_lines: Vec<usize>,
}

/// Reads a timeline, tolerating a torn last line.
pub fn read(path: &Path) -> anyhow::Result<Timeline> {
    Ok(parse(&read_bytes(path)?))
}

/// The bytes of the timeline at `path`, never through a symbolic link.
pub fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    open_file(path, OpenOptions::new().read(true))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read timeline `{}`", path.display()))?;
    Ok(bytes)
}

/// Parses a timeline's bytes, tolerating a torn last line.
fn parse(bytes: &[u8]) -> Timeline {
    let mut out = Timeline::default();
    let text = String::from_utf8_lossy(bytes);
    // Only a last line without its newline is torn (the writer died
    // mid-write); a complete line that does not parse was edited, and is a
    // bad line wherever it is.
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(e) => out.events.push(e),
            Err(_) if i + 1 == last && !complete => out.torn_tail = true,
            Err(_) => out.bad_lines.push(i + 1),
        }
    }
    out
}

/// Opens the file at `path` with `options`, never through a symbolic link
/// (`O_NOFOLLOW`): in a state directory others can write to, a link planted
/// at a record's path would make irctl read, append to or truncate whatever
/// it points at.
fn open_file(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    options
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "`{}` is a symbolic link; irctl does not follow links to records",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })
}

/// Creates the directory of a record (a run directory, an incident's
/// directory) if needed, and refuses one that is a symbolic link.
fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot read directory `{}`", dir.display()))?;
    if meta.file_type().is_symlink() {
        anyhow::bail!(
            "directory `{}` is a symbolic link; irctl does not follow links to records",
            dir.display()
        );
    }
    Ok(())
}

/// Cuts a torn last line (a writer killed mid-line) off the timeline, so
/// events appended after it start on a line of their own. Returns the number
/// of bytes removed (0 when the file ends with a complete line). Callers hold
/// the lock of whatever appends to the file (a resumed run, an incident log).
/// Only the tail is read: the file may be long and is about to be read whole
/// by [`Writer::open`] anyway.
pub fn remove_torn_tail(path: &Path) -> anyhow::Result<u64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = match open_file(path, OpenOptions::new().read(true).write(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open timeline `{}`", path.display()));
        }
    };
    let read_err = || format!("cannot read timeline `{}`", path.display());
    let len = file.metadata().with_context(read_err)?.len();
    // Walk back from the end a chunk at a time to the last newline.
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).with_context(read_err)?;
        file.read_exact(buf).with_context(read_err)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if keep == len {
        return Ok(0);
    }
    file.set_len(keep)
        .with_context(|| format!("cannot truncate the torn last line of `{}`", path.display()))?;
    Ok(len - keep)
}

/// The first `n` characters of `id` (a commit or blob id), cut on a character
/// boundary: ids read back from a timeline may have been edited into anything.
pub fn short_id(id: &str, n: usize) -> &str {
    id.char_indices().nth(n).map_or(id, |(i, _)| &id[..i])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_newline_however_far_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let cases: [(&[u8], &[u8]); 4] = [
            (b"", b""),
            (b"a\nb\n", b"a\nb\n"),
            (b"a\nb\n{\"torn", b"a\nb\n"),
            (b"no newline at all", b""),
        ];
        for (before, after) in cases {
            std::fs::write(&path, before).unwrap();
            let removed = super::remove_torn_tail(&path).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), after);
            assert_eq!(removed, (before.len() - after.len()) as u64);
        }
        // A torn line longer than one read chunk.
        let mut long = b"first\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 200_000));
        std::fs::write(&path, &long).unwrap();
        assert_eq!(super::remove_torn_tail(&path).unwrap(), 200_000);
        assert_eq!(std::fs::read(&path).unwrap(), b"first\n");
        assert_eq!(
            super::remove_torn_tail(&dir.path().join("missing")).unwrap(),
            0
        );
    }
}
