//! The run timeline: append-only JSON Lines, one event a line, written and
//! flushed as it happens, so a killed process leaves a valid prefix.
//!
//! Every event shares one envelope — `ts` (RFC 3339 UTC, milliseconds), `seq`,
//! `run_id`, `incident_id`, `type` — plus its own fields, and `hash`: the
//! SHA-256 of the previous event's hash and this event's canonical JSON, so an
//! edited, removed or reordered line is detectable. Every string is redacted
//! before it is written: this writer is the one choke point for secrets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::Redactor;

/// File name of a run's timeline inside its run directory.
pub const FILE_NAME: &str = "timeline.jsonl";

/// One timeline event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// When it happened (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// Position in the run, from 1.
    pub seq: u64,
    /// The run.
    pub run_id: String,
    /// The incident.
    pub incident_id: String,
    /// Event type, e.g. `step_finished`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's own fields.
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Chain hash over the previous hash and this event.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// The current time as the timeline writes it.
pub fn now() -> String {
    stamp(Utc::now())
}

/// A time as timeline events write it (RFC 3339 UTC, milliseconds).
pub fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn canonical(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            J::Object(out)
        }
        J::Array(items) => J::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The chain hash of `event` after `prev` (hex).
pub fn chain_hash(prev: &str, event: &Event) -> String {
    let mut unhashed = event.clone();
    unhashed.hash.clear();
    let value = serde_json::to_value(&unhashed).unwrap_or_default();
    let text = serde_json::to_string(&canonical(&value)).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// Appends events to one run's timeline.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
    run_id: String,
    incident_id: String,
    seq: u64,
    prev_hash: String,
    redactor: Redactor,
}

impl Writer {
    /// Creates (or continues) the timeline at `path`.
    pub fn open(
        path: &Path,
        run_id: &str,
        incident_id: &str,
        redactor: Redactor,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create run directory `{}`", dir.display()))?;
        }
        let (seq, prev_hash) = match read(path) {
            Ok(t) => t
                .events
                .last()
                .map(|e| (e.seq, e.hash.clone()))
                .unwrap_or_default(),
            Err(_) => (0, String::new()),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open timeline `{}`", path.display()))?;
        Ok(Writer {
            file,
            path: path.to_path_buf(),
            run_id: run_id.to_string(),
            incident_id: incident_id.to_string(),
            seq,
            prev_hash,
            redactor,
        })
    }

    /// The timeline's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event and flushes it to the OS before returning.
    pub fn append(&mut self, kind: &str, data: serde_json::Value) -> anyhow::Result<Event> {
        let data = match self.redactor.redact_json(&data) {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        self.seq += 1;
        let mut event = Event {
            ts: now(),
            seq: self.seq,
            run_id: self.run_id.clone(),
            incident_id: self.incident_id.clone(),
            kind: kind.to_string(),
            data,
            hash: String::new(),
        };
        event.hash = chain_hash(&self.prev_hash, &event);
        let mut line = serde_json::to_string(&event).context("cannot serialize timeline event")?;
        line.push('\n');
        // One write per line: with O_APPEND a concurrent writer (a note) never interleaves mid-line.
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot append to timeline `{}`", self.path.display()))?;
        self.prev_hash = event.hash.clone();
        Ok(event)
    }

    /// Forces written events to disk (called at run boundaries).
    pub fn sync(&self) {
        let _ = self.file.sync_data();
    }
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
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read timeline `{}`", path.display()))?;
    let mut out = Timeline::default();
    let text = String::from_utf8_lossy(&bytes);
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
    Ok(out)
}

/// Cuts a torn last line (a writer killed mid-line) off the timeline, so
/// events appended after it start on a line of their own. Returns the number
/// of bytes removed (0 when the file ends with a complete line). Callers hold
/// the lock of whatever appends to the file (a resumed run, an incident log).
/// Only the tail is read: the file may be long and is about to be read whole
/// by [`Writer::open`] anyway.
pub fn remove_torn_tail(path: &Path) -> anyhow::Result<u64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
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
