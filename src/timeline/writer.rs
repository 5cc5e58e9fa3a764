//! Appending to a chained timeline: number, redact, hash, write one line,
//! flush.

use crate::id::RunId;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::chain::{ChainKey, KEY_SECRET, Scheme};
use super::event::hash_object;
use super::{Event, Payload, Unwritable, chain_hash_with, ensure_dir, open_file, parse, stamp};
use crate::clock::Clock;
use crate::secret::Redactor;

/// Appends events to one run's timeline (or one incident log).
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
    run_id: RunId,
    incident_id: String,
    seq: u64,
    prev_hash: String,
    key: Option<ChainKey>,
    /// The write that failed, once one has.
    broken: Option<Unwritable>,
    redactor: Redactor,
    clock: Clock,
}

impl Writer {
    /// Creates (or continues) the plain-chained timeline at `path`; its
    /// events are stamped by the system clock unless [`Writer::with_clock`]
    /// says otherwise.
    pub fn open(
        path: &Path,
        run_id: &RunId,
        incident_id: &str,
        redactor: Redactor,
    ) -> anyhow::Result<Self> {
        Self::open_keyed(path, run_id, incident_id, redactor, None)
    }

    /// Creates (or continues) the timeline at `path`, keyed when `key` is
    /// given (see [`super::chain`]). Never through a symbolic link: the file
    /// and its directory are refused if either is one, and a new file is
    /// created exclusively. A keyed timeline is continued only with its key:
    /// plain events after keyed ones would let anyone extend it.
    pub fn open_keyed(
        path: &Path,
        run_id: &RunId,
        incident_id: &str,
        redactor: Redactor,
        key: Option<ChainKey>,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            ensure_dir(dir)?;
        }
        let opened = open_file(path, OpenOptions::new().read(true).append(true));
        let (file, events) = match opened {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)
                    .with_context(|| format!("cannot read timeline `{}`", path.display()))?;
                (file, parse(&bytes).events)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = open_file(path, OpenOptions::new().append(true).create_new(true))
                    .with_context(|| format!("cannot create timeline `{}`", path.display()))?;
                (file, Vec::new())
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot open timeline `{}`", path.display()));
            }
        };
        let (seq, prev_hash) = events
            .last()
            .map(|e| (e.seq, e.hash.clone()))
            .unwrap_or_default();
        if let Some(last) = events.last()
            && Scheme::of(&last.hash) == Scheme::Keyed
        {
            let Some(key) = &key else {
                anyhow::bail!(
                    "timeline `{}` is keyed: set the timeline key (`{KEY_SECRET}`) to continue it",
                    path.display()
                );
            };
            let before = events.len().checked_sub(2).map_or("", |i| &events[i].hash);
            if chain_hash_with(before, last, Some(key)) != last.hash {
                anyhow::bail!(
                    "the timeline key (`{KEY_SECRET}`) is not the key timeline `{}` was written with",
                    path.display()
                );
            }
        }
        Ok(Writer {
            file,
            path: path.to_path_buf(),
            run_id: run_id.clone(),
            incident_id: incident_id.to_string(),
            seq,
            prev_hash,
            key,
            broken: None,
            redactor,
            clock: Clock::System,
        })
    }

    /// The chain's head: the hash of the last event written (empty before
    /// the first). [`super::chain::display`] shows it.
    pub fn head(&self) -> &str {
        &self.prev_hash
    }

    /// Whether events are keyed.
    pub fn keyed(&self) -> bool {
        self.key.is_some()
    }

    /// Stamps events by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The timeline's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event and flushes it to the OS before returning. Every
    /// string of the payload is redacted first, whatever field it is in.
    /// A write that fails (a full disk, a file-size limit) is an
    /// [`Unwritable`] error; what it wrote of the line is cut off again, and
    /// nothing more is appended after it, so the file stays a valid prefix
    /// of what happened (at worst with a torn last line, when the cut fails
    /// too).
    pub fn append(&mut self, payload: impl Into<Payload>) -> anyhow::Result<Event> {
        if let Some(failed) = &self.broken {
            return Err(anyhow::Error::new(failed.clone()));
        }
        let payload = payload.into();
        let (payload, extra) = if self.redactor.is_empty() {
            (payload, serde_json::Map::new())
        } else {
            // Redacting the serialised fields reaches every string, in
            // whatever field a payload grows next.
            let fields = serde_json::Value::Object(payload.fields());
            match self.redactor.redact_json(&fields) {
                serde_json::Value::Object(map) => Payload::read(payload.kind(), map),
                _ => (payload, serde_json::Map::new()),
            }
        };
        let mut event = Event {
            ts: stamp(self.clock.now()),
            seq: self.seq + 1,
            run_id: self.run_id.clone(),
            incident_id: self.incident_id.clone(),
            payload,
            extra,
            hash: String::new(),
        };
        // One serialisation feeds both the hash and the line: the line is
        // the hashed object with `hash` appended, which is exactly what
        // serialising the event writes.
        let mut object = event.unhashed_object();
        event.hash = hash_object(&self.prev_hash, &object, self.key.as_ref());
        object.insert("hash".into(), event.hash.clone().into());
        let mut line = serde_json::to_vec(&object).context("cannot serialize timeline event")?;
        line.push(b'\n');
        if let Err((e, written)) = write_line(&mut self.file, &line) {
            // Appending after part of a line would bury that torn line
            // mid-file: nothing more is written, and the part is cut off.
            let failed = Unwritable::new("timeline", &self.path, &e);
            self.broken = Some(failed.clone());
            if written > 0 {
                cut_back(&self.file, written);
            }
            return Err(anyhow::Error::new(failed));
        }
        self.seq += 1;
        self.prev_hash = event.hash.clone();
        Ok(event)
    }

    /// Forces written events to disk (called at run boundaries).
    pub fn sync(&self) {
        let _ = self.file.sync_data();
    }
}

/// Writes `line` with as few writes as the OS allows: one, normally, and with
/// `O_APPEND` a concurrent writer (a note) never interleaves mid-line. On
/// failure, also says how many bytes of the line did reach the file.
fn write_line(file: &mut File, line: &[u8]) -> Result<(), (std::io::Error, usize)> {
    let mut written = 0;
    while written < line.len() {
        match file.write(&line[written..]) {
            Ok(0) => return Err((std::io::ErrorKind::WriteZero.into(), written)),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, written)),
        }
    }
    file.flush().map_err(|e| (e, written))
}

/// Cuts the `written` bytes of a line that could not be finished off the end
/// of `file` (shrinking a file needs no space), unless something was
/// appended after them: then the torn line stays, and readers skip it.
fn cut_back(file: &File, written: usize) {
    use std::io::Seek as _;
    // With `O_APPEND` the offset is the end of what this writer wrote.
    let mut handle = file;
    let Ok(end) = handle.stream_position() else {
        return;
    };
    let Ok(meta) = file.metadata() else {
        return;
    };
    if meta.len() == end
        && let Some(keep) = end.checked_sub(written as u64)
    {
        let _ = file.set_len(keep);
    }
}
