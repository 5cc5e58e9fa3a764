//! The incident log: what people and payloads add to an incident outside any
//! run — notes, detection, acknowledgement, resolution, repeats — at
//! `STATE/incidents/<prefix>+<hash>/timeline.jsonl`.
//!
//! It is written with the same [`timeline::Writer`] as a run's timeline, so
//! notes are redacted and hash-chained (tamper-evident) like automation's
//! events. Notes never go into a run's own timeline: the engine keeps that
//! chain's last hash in memory while it runs, and a second writer would break
//! it. Writers take an exclusive lock on a sibling file for the whole
//! read-last-hash-then-append, so two responders noting at once get
//! consecutive, correctly chained events rather than a fork.
//!
//! The state directory may be shared, so the log's directory name is a
//! readable prefix plus a hash of the exact id ([`dir_name`]): ids that
//! differ only where the prefix loses information (`a/b` and `a_b`, case on
//! a case-insensitive disk, a long tail) never share a file. Nothing here
//! follows a symbolic link or writes through a second hard link. Logs
//! written before this scheme (named by [`file_safe_id`]) keep being read
//! and appended to, but only by the incident their first event names.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use super::{file_safe_id, first_event, read_events};
use crate::secret::Redactor;
use crate::timeline::{self, Event, Payload};

/// The directory holding incident logs.
pub const DIR_NAME: &str = "incidents";

/// Characters of the id kept readable in a log's directory name.
const PREFIX_LEN: usize = 40;

/// Hex digits of the id's hash in a log's directory name (96 bits).
const HASH_LEN: usize = 24;

/// The SHA-256 of the exact id, in lowercase hex: the tail of its log's
/// directory name, and (its first 8 digits) the short id people type.
pub fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The directory name of `id`'s log: up to 40 file-safe, lowercase
/// characters of the id, `+`, and 24 hex digits of [`id_hash`]. The `+`
/// never appears in a [`file_safe_id`], so no name of this scheme is the
/// name of an older log.
pub fn dir_name(id: &str) -> String {
    let prefix: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(PREFIX_LEN)
        .collect();
    let prefix = prefix.trim_matches(['.', '-', '_']);
    let prefix = if prefix.is_empty() {
        "incident"
    } else {
        prefix
    };
    format!("{prefix}+{}", &id_hash(id)[..HASH_LEN])
}

/// The log file of the incident `id` (its exact id): the older
/// file-safe-named log when one exists and belongs to this very id, else
/// the one named by [`dir_name`].
pub fn path(state_dir: &Path, id: &str) -> PathBuf {
    let root = state_dir.join(DIR_NAME);
    let current = root.join(dir_name(id)).join(timeline::FILE_NAME);
    if current.exists() {
        return current;
    }
    let legacy = root.join(file_safe_id(id)).join(timeline::FILE_NAME);
    if first_event(&legacy).is_some_and(|e| e.incident_id == id) {
        return legacy;
    }
    current
}

/// Whether the incident `id` has a log.
pub fn exists(state_dir: &Path, id: &str) -> bool {
    path(state_dir, id).exists()
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
    match std::fs::symlink_metadata(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Log::default()),
        Ok(meta) if meta.file_type().is_symlink() => anyhow::bail!(
            "incident log `{}` is a symbolic link; refusing to read it as `{incident}`'s record",
            p.display()
        ),
        _ => {}
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
    let dir = real_dir(state_dir, &p)?;
    let lock_path = dir.join("timeline.lock");
    let lock = no_follow()
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
    only_link(&p)?;
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

/// Creates (if need be) the incidents directory and the log's own directory
/// of `log`, and refuses either when it is a symbolic link: in a shared
/// state directory a planted link would send the log elsewhere.
fn real_dir(state_dir: &Path, log: &Path) -> anyhow::Result<PathBuf> {
    let root = state_dir.join(DIR_NAME);
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create `{}`", root.display()))?;
    refuse_link(&root)?;
    let dir = log.parent().unwrap_or(&root).to_path_buf();
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create `{}`", dir.display())),
    }
    refuse_link(&dir)?;
    Ok(dir)
}

fn refuse_link(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!(
            "`{}` is not a directory (a symbolic link?); refusing to write an incident log through it",
            dir.display()
        );
    }
    Ok(())
}

/// Options that never follow a symbolic link in the last component.
fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    o
}

/// Makes sure `log` is a regular file of its own before anything reads or
/// appends to it: created exclusively when missing, never a symbolic link,
/// never a second hard link to some other file.
fn only_link(log: &Path) -> anyhow::Result<()> {
    let file: File = match no_follow()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(log)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            no_follow().read(true).open(log).with_context(|| {
                format!(
                    "cannot open incident log `{}` (a symbolic link is refused)",
                    log.display()
                )
            })?
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create incident log `{}`", log.display()));
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read `{}`", log.display()))?;
    if !meta.is_file() || meta.nlink() != 1 {
        anyhow::bail!(
            "incident log `{}` is not a regular file with a single link; refusing to append to it",
            log.display()
        );
    }
    Ok(())
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
