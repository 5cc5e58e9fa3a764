//! A cgroup v2 per step, where the machine lets irctl create one below its
//! own (root, or a delegated subtree such as a systemd unit with
//! `Delegate=yes`). Every process a step starts stays in its cgroup however
//! it detaches, so the cgroup lists them all and `cgroup.kill` ends them at
//! once. Where no cgroup can be created (no cgroup v2, read-only, not
//! delegated, or `IRCTL_NO_CGROUP` set) irctl falls back silently to the
//! marker and subreaper of [`super`], tried once per process.
//!
//! A step's cgroup is not made for it: creating and removing one costs the
//! kernel more than a trivial step, so an ended step's cgroup, once empty,
//! waits in a pool for the next step, and the pool goes when the run ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::Signal;

/// Where step cgroups are created: irctl's own cgroup, if it can have children.
fn base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        if crate::env::no_cgroup() {
            return None;
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let (root, mount) = mounts.lines().find_map(|l| {
            let (fields, fs) = l.split_once(" - ")?;
            fs.starts_with("cgroup2 ").then_some(())?;
            let fields: Vec<&str> = fields.split(' ').collect();
            Some((fields.get(3)?.to_string(), fields.get(4)?.to_string()))
        })?;
        let rel = if root == "/" {
            own
        } else {
            own.strip_prefix(root.as_str())?
        };
        let dir = Path::new(&mount).join(rel.trim_start_matches('/'));
        dir.join("cgroup.procs").is_file().then_some(dir)
    })
    .as_deref()
}

/// Set once creating a step cgroup failed: the machine does not allow it.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Empty step cgroups of this process, ready for the next step: creating
/// and removing a cgroup costs the kernel far more than a step's own
/// `true`, and an empty cgroup is as good as a new one.
static POOL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty cgroup for one step (a pooled one, else a new one), or `None`
/// where the machine does not allow it.
pub fn create() -> Option<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    let base = base()?;
    if let Some(dir) = pool().pop() {
        return Some(dir);
    }
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| remove_stale(base));
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("irctl-{}-{n}", std::process::id()));
    match std::fs::create_dir(&dir) {
        Ok(()) => Some(dir),
        Err(_) => {
            REFUSED.store(true, Ordering::Relaxed);
            None
        }
    }
}

/// Removes the empty step cgroups of irctl processes that no longer exist
/// (a killed irctl leaves its own behind); one that still holds a process
/// cannot be removed and stays for the lock check.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.strip_prefix("irctl-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        if let Some(pid) = owner
            && super::stat(pid).is_none()
        {
            remove(&entry.path());
        }
    }
}

/// The processes in the cgroup `dir` (none if it is gone).
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Sends `signal` to every process in `dir`; SIGKILL goes through
/// `cgroup.kill` where the kernel has it, which no fork can outrun.
pub fn signal(dir: &Path, signal: Signal) {
    if signal == Signal::SIGKILL && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for pid in procs(dir) {
        super::signal(pid, signal);
    }
}

/// Removes the step cgroup `dir` once it is empty; one that still holds a
/// process is left for the next run's lock check to find.
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

/// Gives back the cgroup of an ended step: to the pool if it is empty (and
/// still there), else left for the next run's lock check to find.
pub fn release(dir: &Path) {
    let empty =
        std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
    if empty {
        pool().push(dir.to_path_buf());
    }
}

/// Removes the pooled cgroups, when a run ends; a killed irctl leaves its
/// pool to the next irctl's sweep.
pub fn drain() {
    for dir in std::mem::take(&mut *pool()) {
        remove(&dir);
    }
}
