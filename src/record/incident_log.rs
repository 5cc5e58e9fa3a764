//! The incident log: what people and payloads add to an incident outside any
//! run — notes, detection, resolution — at
//! `STATE/incidents/<file-safe id>/timeline.jsonl`.
//!
//! It is written with the same [`timeline::Writer`] as a run's timeline, so
//! notes are redacted and hash-chained (tamper-evident) like automation's
//! events. Notes never go into a run's own timeline: the engine keeps that
//! chain's last hash in memory while it runs, and a second writer would break
//! it. Writers take an exclusive lock on a sibling file for the whole
//! read-last-hash-then-append, so two responders noting at once get
//! consecutive, correctly chained events rather than a fork.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{file_safe_id, first_event, read_events};
use crate::secret::Redactor;
use crate::timeline::{self, Event, Payload};

/// The directory holding incident logs.
pub const DIR_NAME: &str = "incidents";

/// The log file of `incident` (its id or file-safe form).
pub fn path(state_dir: &Path, incident: &str) -> PathBuf {
    state_dir
        .join(DIR_NAME)
        .join(file_safe_id(incident))
        .join(timeline::FILE_NAME)
}

/// An incident log read back.
#[derive(Debug, Default)]
pub struct Log {
    /// The complete events, in file order.
    pub events: Vec<Event>,
    /// Torn or unparsable lines that were skipped.
    pub warnings: Vec<String>,
}

/// Reads the log of `incident`; a missing log is empty.
pub fn read(state_dir: &Path, incident: &str) -> anyhow::Result<Log> {
    let p = path(state_dir, incident);
    if !p.exists() {
        return Ok(Log::default());
    }
    let (events, warnings) = read_events(&p, &format!("incident log of `{incident}`"))?;
    Ok(Log { events, warnings })
}

/// Appends one event to the log of `incident_id` (the id as
/// recorded), attributed to `run_id` when the event is about a run (empty
/// otherwise). Every string is redacted by `redactor` before it is written.
pub fn append(
    state_dir: &Path,
    incident_id: &str,
    run_id: &str,
    payload: impl Into<Payload>,
    redactor: Redactor,
) -> anyhow::Result<Event> {
    match append_unless(state_dir, incident_id, run_id, payload, redactor, |_| None)? {
        Appended::New(e) | Appended::Already(e) => Ok(e),
    }
}

/// What [`append_unless`] did.
#[derive(Debug)]
pub enum Appended {
    /// The event was appended.
    New(Event),
    /// Nothing was appended: the log already holds this event.
    Already(Event),
}

/// Like [`append`], but first asks `already` about the log's events, read
/// under the same lock, and appends nothing when it names one: two
/// deliveries of the same webhook at once must record one detection, and a
/// check made before taking the lock would let both through.
pub fn append_unless(
    state_dir: &Path,
    incident_id: &str,
    run_id: &str,
    payload: impl Into<Payload>,
    redactor: Redactor,
    already: impl FnOnce(&[Event]) -> Option<Event>,
) -> anyhow::Result<Appended> {
    let p = path(state_dir, incident_id);
    let dir = p.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let lock_path = dir.join("timeline.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open lock `{}`", lock_path.display()))?;
    // The holder is another `irctl note` that appends one line and exits
    // (the kernel drops the lock if it dies); a bounded wait still covers
    // one that was stopped (Ctrl-Z) while holding it.
    crate::lock::lock_within(&lock, &lock_path, crate::lock::SHORT_LOCK_WAIT)?;
    // A note killed mid-write leaves half a line; appending after it would
    // fuse this event into that garbage and lose it.
    timeline::remove_torn_tail(&p)?;
    if p.exists()
        && let Some(found) = already(&timeline::read(&p)?.events)
    {
        return Ok(Appended::Already(found));
    }
    let mut writer =
        timeline::Writer::open(&p, &crate::id::RunId::from(run_id), incident_id, redactor)?;
    let event = writer.append(payload)?;
    writer.sync();
    drop(lock);
    Ok(Appended::New(event))
}

/// The incident ids that have a log, as recorded in their first event.
pub fn logged_ids(state_dir: &Path) -> anyhow::Result<Vec<String>> {
    let dir = state_dir.join(DIR_NAME);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read `{}`", dir.display()));
        }
    };
    let mut ids = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        if let Some(first) = first_event(&entry.path().join(timeline::FILE_NAME)) {
            ids.push(first.incident_id);
        }
    }
    ids.sort();
    Ok(ids)
}
