//! The processes of steps, as Linux's `/proc` shows them: the one place that
//! finds a step's processes however they detach, and signals and reaps them.
//!
//! A step's script may start a daemon (`setsid`, `setpgid`, a double fork,
//! `nohup … &`) that leaves its process group, so a group kill alone lets it
//! outlive its step, hold the output pipe and keep changing things. Three
//! tags find such a process again: the step's cgroup ([`cgroup`], where the
//! machine lets irctl create one), the variable [`MARKER_VAR`] every step
//! process inherits, and descent from irctl itself, which is a child
//! subreaper so that orphans are re-parented to it rather than to init. The
//! engine's `contain` module uses these while irctl lives; [`crate::lock`]
//! uses them to tell whether the step processes of a killed irctl are still
//! alive. Elsewhere than Linux every lookup finds nothing, and steps keep
//! only their process group.

pub mod cgroup;
pub mod spawn;

use std::collections::{HashMap, HashSet};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The variable that marks every process of a step: `IRCTL_STEP=<run>/<step>/<attempt>`.
pub const MARKER_VAR: &str = "IRCTL_STEP";

/// Most characters of a command line shown in a message.
const CMDLINE_SHOWN: usize = 160;

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    /// Its id.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Its process group.
    pub pgid: i32,
    /// When it started, in clock ticks since boot: with the pid, an identity
    /// that a recycled pid cannot take over.
    pub start: u64,
    /// Whether it has exited and waits to be reaped.
    pub zombie: bool,
}

/// The process `pid`, or `None` when there is none (or not on Linux).
pub fn stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Parses a `stat` line; the command name in parentheses may hold anything,
/// so the fields are counted from its last `)`.
fn parse_stat(pid: i32, text: &str) -> Option<Proc> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        zombie: matches!(*fields.first()?, "Z" | "X"),
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether the process `pid` that started at `start` still runs (a zombie
/// does not).
pub fn alive(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|p| p.start == start && !p.zombie)
}

/// This process's own start time, to tell it apart from a later one with its pid.
pub fn own_start() -> u64 {
    stat(std::process::id() as i32).map_or(0, |p| p.start)
}

/// Every process id in `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The marker `<tag>` a process carries, read from `/proc/<pid>/environ`
/// (only for processes of the same user; a process that cleared its
/// environment has none).
pub fn marker(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARKER_VAR}=");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The command line of `pid` for a message: arguments joined by spaces,
/// control characters made visible, cut to a readable length.
pub fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut text: String = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > CMDLINE_SHOWN {
        text = text.chars().take(CMDLINE_SHOWN).collect::<String>() + "…";
    }
    if text.is_empty() {
        text = "(command line unreadable)".into();
    }
    text
}

/// The descendants of `root` (not `root` itself), parents before children.
/// Read from each task's `children` list where the kernel has them, else
/// from one pass over every process's parent.
pub fn descendants(root: i32) -> Vec<Proc> {
    // Whether the kernel lists children (`CONFIG_PROC_CHILDREN`) does not
    // change while irctl runs: asked once.
    static LISTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let mut out = Vec::new();
    if *LISTED.get_or_init(|| children(std::process::id() as i32).is_some()) {
        let mut queue = vec![root];
        let mut seen = HashSet::from([root]);
        while let Some(pid) = queue.pop() {
            for child in children(pid).unwrap_or_default() {
                if seen.insert(child)
                    && let Some(p) = stat(child)
                {
                    out.push(p);
                    queue.push(child);
                }
            }
        }
        return out;
    }
    let mut by_parent: HashMap<i32, Vec<Proc>> = HashMap::new();
    for p in all_pids().into_iter().filter_map(stat) {
        by_parent.entry(p.ppid).or_default().push(p);
    }
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for p in by_parent.remove(&pid).unwrap_or_default() {
            queue.push(p.pid);
            out.push(p);
        }
    }
    out
}

/// The direct children of `pid` over all its threads, or `None` when the
/// kernel does not list them (`CONFIG_PROC_CHILDREN`).
fn children(pid: i32) -> Option<Vec<i32>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut out = Vec::new();
    let mut listed = false;
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            listed = true;
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    listed.then_some(out)
}

/// Sends `signal` to `pid`; a process already gone is not an error.
pub fn signal(pid: i32, signal: Signal) {
    if pid > 0 {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Reaps the zombies among `procs` that are this process's children, so
/// orphans re-parented to irctl (a subreaper) do not pile up. `skip` holds
/// the children someone else waits for (tokio's step leaders).
pub fn reap(procs: &[Proc], skip: &HashSet<i32>) {
    let me = std::process::id() as i32;
    for p in procs {
        if p.zombie && p.ppid == me && !skip.contains(&p.pid) {
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(p.pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
    }
}

/// What a killed irctl left behind of one run: the processes still alive.
/// `steps` are the recorded step leaders (pid, start); `since` is when the
/// run's irctl started, so a pid recycled by an older process is not taken
/// for a step's process group; `cgroups` are the steps' cgroups.
pub fn leftovers(
    run_id: &str,
    steps: &[(i32, u64)],
    since: u64,
    cgroups: &[std::path::PathBuf],
) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let tag = format!("{run_id}/");
    let groups: HashSet<i32> = steps.iter().map(|(pid, _)| *pid).collect();
    let mut found: Vec<i32> = cgroups
        .iter()
        .flat_map(|c| cgroup::procs(c))
        .filter(|pid| stat(*pid).is_some_and(|p| !p.zombie))
        .collect();
    for pid in all_pids() {
        if pid == me {
            continue;
        }
        let Some(p) = stat(pid) else { continue };
        if p.zombie {
            continue;
        }
        let recorded =
            steps.contains(&(pid, p.start)) || (groups.contains(&p.pgid) && p.start >= since);
        if recorded || marker(pid).is_some_and(|m| m.starts_with(&tag)) {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found.dedup();
    found.into_iter().map(|pid| (pid, cmdline(pid))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "42 (a) b (c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2";
        let p = parse_stat(42, line).unwrap();
        assert_eq!((p.ppid, p.pgid, p.start, p.zombie), (7, 42, 987654, false));
        let z = parse_stat(9, "9 (x) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5").unwrap();
        assert!(z.zombie);
        assert!(parse_stat(1, "1 (x) S").is_none());
        assert!(parse_stat(1, "no parenthesis").is_none());
    }

    #[test]
    fn this_process_is_alive_and_its_descendants_are_found() {
        let me = std::process::id() as i32;
        let p = stat(me).unwrap();
        assert!(alive(me, p.start));
        assert!(!alive(me, p.start + 1));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(descendants(me).iter().any(|d| d.pid == pid));
        // Until the child has exec'd, its command line is this test's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !cmdline(pid).starts_with("sleep 5") {
            assert!(std::time::Instant::now() < deadline, "{}", cmdline(pid));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
