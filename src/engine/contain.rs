//! Containment of a step's processes: started so that every descendant can
//! be found again, and ended so that none outlives the step.
//!
//! Each step leader is started in its own process group, in a cgroup of its
//! own where the machine allows one ([`crate::process::cgroup`]), with the
//! marker [`process::MARKER_VAR`] in its environment, and with
//! `PR_SET_PDEATHSIG(SIGKILL)`, so a SIGKILL of irctl takes the leader with
//! it. The leader is cloned without copying irctl ([`crate::process::spawn`]:
//! a full fork cost more than a trivial step's whole shell). The kernel
//! sends that signal when the *thread* that cloned the leader exits, and
//! tokio's blocking threads exit when idle, so every leader is cloned by a
//! spawner thread that never exits (one per step starting at the same
//! moment, so starts do not queue). irctl is a child
//! subreaper: an orphaned descendant of a step (a `setsid` or double-forked
//! daemon) is re-parented to irctl, where it can still be found, and reaped
//! here once killed. When a step ends, however it ends, [`Scope::finish`]
//! sends SIGTERM to every process still in it, SIGKILL after a grace period,
//! and only then lets the step's pipes be read to their end.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, RwLock, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::spawn::{self, Child};
use crate::process::{self, Proc, cgroup};

/// How long a process that got SIGKILL may take to disappear before irctl
/// gives up on it (one in uninterruptible sleep, or outside irctl's reach).
const KILL_WAIT: Duration = Duration::from_secs(2);

/// The leaders of running steps, by pid, with their markers.
static LEADERS: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

/// Held shared from a leader's fork until it is in [`LEADERS`], and
/// exclusively while a look at `/proc` decides whose each process is: a
/// leader caught between fork and listing would otherwise be taken for an
/// unclaimed orphan (and ended), or reaped under tokio's feet.
static SPAWNING: RwLock<()> = RwLock::new(());

fn leaders() -> std::sync::MutexGuard<'static, Vec<(i32, String)>> {
    LEADERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One step attempt's processes, from spawn to [`Scope::finish`].
pub struct Scope {
    tag: String,
    run_id: String,
    leader: i32,
    cgroup: Option<PathBuf>,
    finished: bool,
}

/// Starts `cmd` as the leader of the step attempt marked `tag`
/// (`<run>/<step>/<attempt>`), with stdin from `/dev/null` and its stdout
/// and stderr on pipes (the command's own stdio settings are not used).
pub fn spawn(mut cmd: spawn::Command, tag: &str) -> std::io::Result<(Child, Scope)> {
    become_subreaper();
    cmd.env(process::MARKER_VAR, tag);
    let prepared = spawn::Prepared::new(&cmd, crate::env::inherited())?;
    let stdio = spawn::Stdio::new()?;
    let cgroup = cgroup::create();
    // Opened before the clone, so the child joins its cgroup with one write
    // before exec and nothing it starts can be outside it.
    let procs_file = cgroup.as_ref().and_then(|c| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(c.join("cgroup.procs"))
            .ok()
    });
    let join_fd = procs_file.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let req = Request {
        prepared,
        stdio,
        join_fd,
        tag: tag.to_string(),
    };
    let started = match spawner() {
        Some(tx) => spawn_on(tx, req),
        None => spawn_listed(req, false),
    };
    drop(procs_file);
    let (stdio, pid) = match started {
        Ok(started) => started,
        Err(e) => {
            if let Some(c) = &cgroup {
                cgroup::release(c);
            }
            return Err(e);
        }
    };
    let child = match Child::new(pid, stdio) {
        Ok(child) => child,
        Err(e) => {
            // Unwatchable: end it now rather than leave it unowned.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            process::signal(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            leaders().retain(|(p, _)| *p != pid);
            if let Some(c) = &cgroup {
                cgroup::release(c);
            }
            return Err(e);
        }
    };
    let run_id = tag.split('/').next().unwrap_or(tag).to_string();
    let start = process::stat(pid).map_or(0, |p| p.start);
    crate::lock::track(&run_id, pid, start, cgroup.as_deref());
    Ok((
        child,
        Scope {
            tag: tag.to_string(),
            run_id,
            leader: pid,
            cgroup,
            finished: false,
        },
    ))
}

/// Makes irctl the reaper of its orphaned descendants, once.
fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

/// A leader to start, all of it made by the step's own thread.
struct Request {
    prepared: spawn::Prepared,
    stdio: spawn::Stdio,
    join_fd: Option<i32>,
    tag: String,
}

/// What a spawner thread hands back: the descriptors and the leader's pid.
type Started = std::io::Result<(spawn::Stdio, i32)>;

/// The way to a spawner thread: a request and where to answer it.
type ToSpawner = mpsc::Sender<(Request, mpsc::SyncSender<Started>)>;

/// Spawner threads not starting a leader right now. There are as many as
/// steps ever started at once, so process starts do not queue behind each other.
static IDLE: Mutex<Vec<ToSpawner>> = Mutex::new(Vec::new());

/// A thread to start a leader from, which never exits; `None` if none
/// could be started (then the leader is started where it is asked for,
/// without PDEATHSIG).
fn spawner() -> Option<ToSpawner> {
    if let Some(tx) = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop() {
        return Some(tx);
    }
    let (tx, rx) = mpsc::channel::<(Request, mpsc::SyncSender<Started>)>();
    std::thread::Builder::new()
        .name("irctl-spawner".into())
        .spawn(move || {
            for (req, reply) in rx {
                let _ = reply.send(spawn_listed(req, true));
            }
            // Its children die with it: it must outlive them all.
            loop {
                std::thread::park();
            }
        })
        .ok()?;
    Some(tx)
}

fn spawn_on(tx: ToSpawner, req: Request) -> Started {
    let (reply, answer) = mpsc::sync_channel(1);
    if let Err(mpsc::SendError((req, _))) = tx.send((req, reply)) {
        return spawn_listed(req, false);
    }
    let started = answer
        .recv()
        .map_err(|_| std::io::Error::other("an irctl spawner thread is gone"))?;
    IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
    started
}
/// Starts and lists the leader (see [`SPAWNING`]); with `pdeathsig` it
/// dies with the calling thread.
fn spawn_listed(req: Request, pdeathsig: bool) -> Started {
    let _spawning = SPAWNING.read().unwrap_or_else(|e| e.into_inner());
    let parent = std::process::id() as i32;
    let pid = spawn::start(&req.prepared, &req.stdio, req.join_fd, parent, pdeathsig)?;
    leaders().push((pid, req.tag));
    Ok((req.stdio, pid))
}

/// Whose a process is, as far as one look at `/proc` can tell.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    This,
    Other,
    Nobody,
}

impl Scope {
    /// Ends the step attempt: every process still in it gets SIGTERM, then
    /// SIGKILL after `grace`; the leader is waited for. Then, if no other
    /// step runs, any orphan no step claims (one that cleared its
    /// environment) is ended the same way.
    pub async fn finish(
        &mut self,
        child: &mut Child,
        grace: Duration,
    ) -> std::io::Result<std::process::ExitStatus> {
        let mut leader_status = None;
        let strays = self.converge(child, &mut leader_status, grace, false).await;
        let status = match leader_status {
            Some(status) => Ok(status),
            None => child.wait().await,
        };
        let alone = {
            let mut list = leaders();
            list.retain(|(pid, _)| *pid != self.leader);
            list.is_empty()
        };
        self.finished = true;
        if alone && strays {
            self.converge(child, &mut None, grace, true).await;
        }
        self.release();
        status
    }

    /// Signals the processes of the scope (with `strays`, every unclaimed
    /// descendant of irctl instead) until none is left or they outlast
    /// SIGKILL; whether the last look saw an unclaimed process.
    async fn converge(
        &self,
        child: &mut Child,
        leader_status: &mut Option<std::process::ExitStatus>,
        grace: Duration,
        strays: bool,
    ) -> bool {
        let term_until = Instant::now() + grace;
        let kill_until = term_until + KILL_WAIT;
        let mut termed: HashSet<i32> = HashSet::new();
        let mut pause = Duration::from_millis(5);
        loop {
            if leader_status.is_none() {
                *leader_status = child.try_wait().ok().flatten();
            }
            let (targets, unclaimed) = self.targets(strays);
            if targets.is_empty() {
                return unclaimed;
            }
            let now = Instant::now();
            if now < term_until {
                if termed.insert(self.leader) && !strays {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(self.leader),
                        Signal::SIGTERM,
                    );
                }
                for pid in targets {
                    if termed.insert(pid) {
                        process::signal(pid, Signal::SIGTERM);
                    }
                }
            } else if now < kill_until {
                self.kill_all(&targets, strays);
            } else {
                return unclaimed;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn kill_all(&self, targets: &[i32], strays: bool) {
        if !strays {
            if let Some(c) = &self.cgroup {
                cgroup::signal(c, Signal::SIGKILL);
            }
            let _ =
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.leader), Signal::SIGKILL);
        }
        for pid in targets {
            process::signal(*pid, Signal::SIGKILL);
        }
    }

    /// The live processes to end: this step's (its cgroup, its leader's
    /// tree, its marker, its process group) or, with `strays`, the
    /// unclaimed ones; and whether it saw an unclaimed one. Reaps the
    /// zombies it passes.
    fn targets(&self, strays: bool) -> (Vec<i32>, bool) {
        let me = std::process::id() as i32;
        let found = process::descendants(me);
        let spawning = SPAWNING.write().unwrap_or_else(|e| e.into_inner());
        let list = leaders();
        let live: HashMap<i32, &str> = list.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let live_tags: HashSet<&str> = live.values().copied().collect();
        let mut owner: HashMap<i32, Owner> = HashMap::new();
        let mut out = Vec::new();
        let mut unclaimed = false;
        for p in &found {
            let o = if p.pid == self.leader {
                Owner::This
            } else if live.contains_key(&p.pid) {
                Owner::Other
            } else {
                match owner.get(&p.ppid) {
                    Some(o) if p.ppid != me && *o != Owner::Nobody => *o,
                    _ => self.claim(p, &live_tags),
                }
            };
            owner.insert(p.pid, o);
            unclaimed |= o == Owner::Nobody && !p.zombie;
            let wanted = if strays {
                o == Owner::Nobody
            } else {
                o == Owner::This
            };
            if wanted && !p.zombie {
                out.push(p.pid);
            }
        }
        if !strays && let Some(c) = &self.cgroup {
            for pid in cgroup::procs(c) {
                if pid != me && process::stat(pid).is_some_and(|p| !p.zombie) {
                    out.push(pid);
                }
            }
        }
        let skip: HashSet<i32> = live.keys().copied().collect();
        process::reap(&found, &skip);
        drop(list);
        drop(spawning);
        out.sort_unstable();
        out.dedup();
        (out, unclaimed)
    }

    /// Whose an orphan (or a process below an unclaimed one) is, by its
    /// marker or process group.
    fn claim(&self, p: &Proc, live_tags: &HashSet<&str>) -> Owner {
        if p.pgid == self.leader {
            return Owner::This;
        }
        match process::marker(p.pid) {
            Some(tag) if tag == self.tag => Owner::This,
            Some(tag) if live_tags.contains(tag.as_str()) => Owner::Other,
            _ => Owner::Nobody,
        }
    }

    /// Forgets the scope: the lock no longer lists it, its cgroup goes.
    fn release(&mut self) {
        crate::lock::untrack(&self.run_id, self.leader);
        if let Some(c) = self.cgroup.take() {
            cgroup::release(&c);
        }
    }
}

// A step future dropped before `finish` (the whole run torn down) still
// leaves no process behind: no time to be gentle, so SIGKILL.
impl Drop for Scope {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (targets, _) = self.targets(false);
        self.kill_all(&targets, false);
        leaders().retain(|(pid, _)| *pid != self.leader);
        self.release();
    }
}
