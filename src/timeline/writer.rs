//! Appending to a chained timeline: number, redact, hash, write one line,
//! flush.

use crate::id::RunId;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::event::hash_object;
use super::{Event, Payload, read, stamp};
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
    redactor: Redactor,
    clock: Clock,
}

impl Writer {
    /// Creates (or continues) the timeline at `path`; its events are stamped
    /// by the system clock unless [`Writer::with_clock`] says otherwise.
    pub fn open(
        path: &Path,
        run_id: &RunId,
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
            run_id: run_id.clone(),
            incident_id: incident_id.to_string(),
            seq,
            prev_hash,
            redactor,
            clock: Clock::System,
        })
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
    pub fn append(&mut self, payload: impl Into<Payload>) -> anyhow::Result<Event> {
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
        self.seq += 1;
        let mut event = Event {
            ts: stamp(self.clock.now()),
            seq: self.seq,
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
        event.hash = hash_object(&self.prev_hash, &object);
        object.insert("hash".into(), event.hash.clone().into());
        let mut line = serde_json::to_vec(&object).context("cannot serialize timeline event")?;
        line.push(b'\n');
        // One write per line: with O_APPEND a concurrent writer (a note) never interleaves mid-line.
        self.file
            .write_all(&line)
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
