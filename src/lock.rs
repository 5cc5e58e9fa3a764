//! File locks in the state directory and Git cache: one run at a time per
//! (incident, playbook), and short exclusive sections (an incident log
//! append, a drill record update, a cache fetch).
//!
//! An OS file lock (flock) is released by the kernel when its holder dies,
//! but a killed irctl can leave step processes running (a daemon a step
//! started, on a machine without cgroups), and a second non-idempotent
//! rollback must not overlap them. So a run's lock file records the holder
//! (its run id, pid and start time) and the leader of each running step, and
//! is emptied on a clean release. A lock that is free but not empty belonged
//! to an irctl that died: it is taken over only once none of that run's
//! processes is alive (found by [`crate::process::leftovers`]); until then
//! the next run waits a moment and then refuses with [`Leftover`], naming
//! them. Lock files never follow a symbolic link: a link planted at a lock's
//! path in a shared state directory is refused, never written through. This
//! sits at the base so the engine, the record, drills and the playbook
//! source all share it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Held for the duration of a run; dropping it empties the record and
/// releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    run_id: String,
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

/// The lock's last holder was killed, and processes of its steps still run.
#[derive(Debug, thiserror::Error)]
#[error(
    "run {run} of playbook `{playbook}` for incident `{incident}` was killed, but processes it started still run: {}; refusing to start while they may still be acting (stop them and retry)",
    describe(.processes)
)]
pub struct Leftover {
    /// The killed run's id.
    pub run: String,
    /// The playbook.
    pub playbook: String,
    /// The incident.
    pub incident: String,
    /// The live processes: pid and command line.
    pub processes: Vec<(i32, String)>,
}

fn describe(processes: &[(i32, String)]) -> String {
    const SHOWN: usize = 5;
    let mut text = processes
        .iter()
        .take(SHOWN)
        .map(|(pid, cmd)| format!("pid {pid} (`{cmd}`)"))
        .collect::<Vec<_>>()
        .join(", ");
    if processes.len() > SHOWN {
        text.push_str(&format!(" and {} more", processes.len() - SHOWN));
    }
    text
}

/// How long a run waits for a killed run's processes to go away (they may
/// be dying already) before it refuses.
const LEFTOVER_WAIT: Duration = Duration::from_secs(3);

/// What a run's lock file says while the run holds it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Record {
    run: String,
    #[serde(default)]
    pid: u32,
    /// The holder's start time (clock ticks since boot).
    #[serde(default)]
    start: u64,
    #[serde(default)]
    steps: Vec<StepRecord>,
}

/// One running step's leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StepRecord {
    pid: i32,
    start: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cgroup: Option<PathBuf>,
}

impl Record {
    /// Reads a lock file's text; an irctl before these records wrote the
    /// bare run id. A live holder rewrites its record in place as steps
    /// start, so a reader naming it may see a torn record: the run id comes
    /// first and never changes, so it is still read.
    fn parse(text: &str) -> Record {
        serde_json::from_str(text).unwrap_or_else(|_| {
            let run = match text.strip_prefix("{\"run\":\"") {
                Some(rest) => rest.split('"').next().unwrap_or_default(),
                None => text.trim(),
            };
            Record {
                run: run.to_string(),
                ..Record::default()
            }
        })
    }
}

/// The run locks this process holds, by run id, so the engine can record
/// the steps it starts in the right file.
static HELD: Mutex<Vec<(File, Record)>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(File, Record)>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Rewrites a lock file in place; it is only read by a process that took
/// the lock after this one died, so a torn write cannot be seen by a live reader.
fn write_record(file: &File, record: &Record) -> std::io::Result<()> {
    let text = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    file.write_all_at(&text, 0)?;
    file.set_len(text.len() as u64)
}

/// Notes in run `run_id`'s lock that a step leader `pid` (started at
/// `start`, in `cgroup`) runs. A run without a lock here records nothing.
pub fn track(run_id: &str, pid: i32, start: u64, cgroup: Option<&Path>) {
    let mut held = held();
    if let Some((file, record)) = held.iter_mut().find(|(_, r)| r.run == run_id) {
        record.steps.push(StepRecord {
            pid,
            start,
            cgroup: cgroup.map(Path::to_path_buf),
        });
        let _ = write_record(file, record);
    }
}

/// Notes in run `run_id`'s lock that the step led by `pid` has ended. The
/// file keeps it until the next step starts or the run ends: one write per
/// step instead of two, and a killed run's ended leader names no live
/// process (its pid comes with its start time), while any process left in
/// its group is one the next run should know of anyway.
pub fn untrack(run_id: &str, pid: i32) {
    let mut held = held();
    if let Some((_, record)) = held.iter_mut().find(|(_, r)| r.run == run_id) {
        record.steps.retain(|s| s.pid != pid);
    }
}

/// Takes the lock for `incident` × `playbook`, or fails with [`Busy`] (a
/// live holder) or [`Leftover`] (a killed holder whose processes live on).
pub fn acquire(
    state_dir: &Path,
    incident: &str,
    playbook: &str,
    run_id: &str,
) -> anyhow::Result<RunLock> {
    let dir = state_dir.join("locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    // irctl makes this directory; a link in its place would send the lock elsewhere.
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
        anyhow::bail!(
            "`{}` is a symbolic link; irctl keeps its locks in a real directory (remove the link)",
            dir.display()
        );
    }
    let path = run_lock_path(state_dir, incident, playbook);
    let mut file = open(&path)?;
    let mut text = String::new();
    if !try_lock(&file, &path)? {
        let _ = file.read_to_string(&mut text);
        return Err(Busy {
            holder: Record::parse(&text).run,
            playbook: playbook.to_string(),
            incident: incident.to_string(),
        }
        .into());
    }
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read lock `{}`", path.display()))?;
    if !text.trim().is_empty() {
        let prior = Record::parse(&text);
        wait_for_leftovers(&prior, playbook, incident)?;
        for cgroup in prior.steps.iter().filter_map(|s| s.cgroup.as_deref()) {
            crate::process::cgroup::remove(cgroup);
        }
    }
    let record = Record {
        run: run_id.to_string(),
        pid: std::process::id(),
        start: crate::process::own_start(),
        steps: Vec::new(),
    };
    write_record(&file, &record)
        .with_context(|| format!("cannot write lock `{}`", path.display()))?;
    let copy = file
        .try_clone()
        .with_context(|| format!("cannot use lock `{}`", path.display()))?;
    held().push((copy, record));
    Ok(RunLock {
        file,
        run_id: run_id.to_string(),
    })
}

/// Where the run lock of `incident` × `playbook` lives.
fn run_lock_path(state_dir: &Path, incident: &str, playbook: &str) -> PathBuf {
    let key = hex::encode(Sha256::digest(format!("{incident}\0{playbook}").as_bytes()));
    state_dir
        .join("locks")
        .join(format!("{playbook}-{}.lock", &key[..16]))
}

/// The live run holding the lock of `incident` × `playbook`: its run id,
/// pid and start time, read from the lock's record (never taking the lock).
pub fn holder(state_dir: &Path, incident: &str, playbook: &str) -> Option<(String, i32, u64)> {
    let path = run_lock_path(state_dir, incident, playbook);
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let record = Record::parse(&text);
    let pid = i32::try_from(record.pid).ok().filter(|p| *p > 0)?;
    crate::process::alive(pid, record.start).then_some((record.run, pid, record.start))
}

/// Returns once no process of the killed run `prior` is alive, or fails
/// with [`Leftover`] after [`LEFTOVER_WAIT`].
fn wait_for_leftovers(prior: &Record, playbook: &str, incident: &str) -> anyhow::Result<()> {
    let steps: Vec<(i32, u64)> = prior.steps.iter().map(|s| (s.pid, s.start)).collect();
    let cgroups: Vec<PathBuf> = prior
        .steps
        .iter()
        .filter_map(|s| s.cgroup.clone())
        .collect();
    let deadline = std::time::Instant::now() + LEFTOVER_WAIT;
    loop {
        let left = crate::process::leftovers(&prior.run, &steps, prior.start, &cgroups);
        if left.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Leftover {
                run: prior.run.clone(),
                playbook: playbook.to_string(),
                incident: incident.to_string(),
                processes: left,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// A clean release leaves an empty file: the next run knows nobody was killed.
impl Drop for RunLock {
    fn drop(&mut self) {
        held().retain(|(_, r)| r.run != self.run_id);
        let _ = self.file.set_len(0);
        crate::process::cgroup::drain();
    }
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
/// so a busy lock's holder can be named. The file is created exclusively
/// and opened without following a symbolic link, and must be a regular
/// file: a link or FIFO planted at the path in a shared state directory is
/// refused.
pub fn open(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK);
    let opened = match options.clone().create_new(true).open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => options.open(path),
        other => other,
    };
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => anyhow::bail!(
            "lock `{}` is a symbolic link; irctl never follows one in its state directory (remove it if you did not put it there)",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open lock `{}`", path.display()));
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect lock `{}`", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "lock `{}` is not a regular file; irctl refuses to use it (remove it if you did not put it there)",
            path.display()
        );
    }
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_path_that_is_a_symlink_is_refused_and_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        let link = dir.path().join("x.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open(&link).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        let dangling = dir.path().join("y.lock");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(open(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn a_record_reads_the_old_bare_run_id_and_a_clean_release_empties_it() {
        assert_eq!(
            Record::parse("20260101T000000Z-ab\n").run,
            "20260101T000000Z-ab"
        );
        assert_eq!(Record::parse("{\"run\":\"r-2\",\"pid\":1,\"st").run, "r-2");
        let dir = tempfile::tempdir().unwrap();
        let lock = acquire(dir.path(), "inc", "pb", "run-1").unwrap();
        track("run-1", 4_000_000, 1, None);
        let path = std::fs::read_dir(dir.path().join("locks"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let record = Record::parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!((record.run.as_str(), record.steps.len()), ("run-1", 1));
        untrack("run-1", 4_000_000);
        track("run-1", 4_000_001, 2, None);
        let record = Record::parse(&std::fs::read_to_string(&path).unwrap());
        let pids: Vec<i32> = record.steps.iter().map(|s| s.pid).collect();
        assert_eq!(pids, [4_000_001], "an ended step leaves the record");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
