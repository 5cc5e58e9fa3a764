//! File locks in the state directory and Git cache: one run at a time per
//! (incident, playbook), and short exclusive sections (an incident log
//! append, a drill record update, a cache fetch).
//!
//! An OS file lock (flock) is released by the kernel when its holder dies, so
//! a crashed run never blocks the next one; a run's lock file also names the
//! holder's run id for the error message. This sits at the base so the
//! engine, the record, drills and the playbook source all share it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// Held for the duration of a run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// The lock is held by another live run.
#[derive(Debug, thiserror::Error)]
#[error(
    "another run ({holder}) is already running playbook `{playbook}` for incident `{incident}`"
)]
pub struct Busy {
    /// The holder's run id.
    pub holder: String,
    /// The playbook.
    pub playbook: String,
    /// The incident.
    pub incident: String,
}

/// Takes the lock for `incident` × `playbook`, or fails with [`Busy`].
pub fn acquire(
    state_dir: &Path,
    incident: &str,
    playbook: &str,
    run_id: &str,
) -> anyhow::Result<RunLock> {
    let key = hex::encode(Sha256::digest(format!("{incident}\0{playbook}").as_bytes()));
    let path = state_dir
        .join("locks")
        .join(format!("{playbook}-{}.lock", &key[..16]));
    let mut file = open(&path)?;
    if !try_lock(&file, &path)? {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(Busy {
            holder: holder.trim().to_string(),
            playbook: playbook.to_string(),
            incident: incident.to_string(),
        }
        .into());
    }
    file.set_len(0).ok();
    file.rewind().ok();
    file.write_all(run_id.as_bytes())
        .with_context(|| format!("cannot write lock `{}`", path.display()))?;
    Ok(RunLock { _file: file })
}

/// How long the short locks (an incident log append, a drill record update)
/// are waited for: their holders keep them for one write, so a longer wait
/// means a stopped or stuck process, and the command says so instead of hanging.
pub const SHORT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes an exclusive lock on `file` (at `path`, for messages), waiting at
/// most `limit` for its holder to let go.
pub fn lock_within(file: &File, path: &Path, limit: std::time::Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while !try_lock(file, path)? {
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "`{}` has been locked by another irctl process for over {}s; if none is running, that process is stopped or stuck",
                path.display(),
                limit.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// Opens (creating it and its directory) the lock file at `path`, readable
/// so a busy lock's holder can be named.
pub fn open(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock `{}`", path.display()))
}

/// Takes an exclusive lock on `file` (at `path`, for messages) without
/// waiting: `false` when another holder has it.
pub fn try_lock(file: &File, path: &Path) -> anyhow::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
        }
    }
}
