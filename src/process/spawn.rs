//! Starting a step leader without copying irctl.
//!
//! Between its creation and its program a leader must join its step's
//! cgroup, ask for SIGKILL when irctl goes (`PR_SET_PDEATHSIG`) and leave
//! irctl's process group. Rust's `Command` runs such code only after a full
//! `fork`, which copies the page tables of all of irctl (runtime, threads,
//! caches) for a child that throws them away in `execve`: measured on a
//! chain of trivial steps, that copy and its teardown cost more than the
//! step's own shell. So the child is cloned as `posix_spawn` does it
//! (`CLONE_VM | CLONE_VFORK`): it shares irctl's memory, and the cloning
//! thread sleeps until the child has executed its program or failed.
//!
//! Sharing memory is what makes the child's rules strict: it runs only
//! system calls on data prepared before the clone (no allocation, no lock,
//! no panic), writes nothing but its own stack and one error slot, and all
//! signals stay blocked from before the clone until its handlers are reset,
//! so no irctl handler ever runs on the child's side.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::libc;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

/// The child's stack: it only makes system calls, a few frames deep.
const STACK: usize = 64 * 1024;

/// Signals are numbered below this on Linux.
const NSIG: libc::c_int = 65;

/// What a step leader runs: the builder half of `std::process::Command`,
/// which keeps a nul byte for [`Prepared::new`] to refuse. No `Debug`: its
/// environment carries secrets.
pub struct Command {
    argv: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
}

impl Command {
    /// Runs `program` (a path, or a name looked up in `PATH`).
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            argv: vec![program.into()],
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(&mut self, args: I) -> &mut Command {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable over the inherited environment.
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Command {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes a variable from the inherited environment.
    pub fn env_remove(&mut self, key: impl Into<OsString>) -> &mut Command {
        self.env.push((key.into(), None));
        self
    }

    /// Runs it in `dir`.
    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Command {
        self.cwd = Some(dir.into());
        self
    }
}

/// A program to start, with everything the child needs made up front.
pub struct Prepared {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: Option<CString>,
}

fn c_string(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

impl Prepared {
    /// What `cmd` would start: its program looked up in `PATH` (the child's
    /// own, as `std::process::Command` does), its arguments, and `inherited`
    /// changed by its environment settings; a nul byte anywhere is an error.
    pub fn new(cmd: &Command, inherited: Vec<(OsString, OsString)>) -> std::io::Result<Prepared> {
        let mut env: BTreeMap<OsString, OsString> = inherited.into_iter().collect();
        for (key, value) in &cmd.env {
            match value {
                Some(value) => env.insert(key.clone(), value.clone()),
                None => env.remove(key),
            };
        }
        let cwd = cmd.cwd.as_deref();
        let program = cmd.argv.first().map_or(OsStr::new(""), |p| p.as_os_str());
        let argv = cmd
            .argv
            .iter()
            .map(|a| c_string(a.as_bytes()))
            .collect::<std::io::Result<Vec<_>>>()?;
        let program = resolve(program, env.get(OsStr::new("PATH")), cwd)?;
        let envp = env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                c_string(&kv)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Prepared {
            program: c_string(program.as_os_str().as_bytes())?,
            argv,
            envp,
            cwd: cwd
                .map(|c| c_string(c.as_os_str().as_bytes()))
                .transpose()?,
        })
    }
}

/// The file `program` names: itself if it has a slash, else the first
/// executable file of that name in `path` (glibc's default without one).
fn resolve(
    program: &OsStr,
    path: Option<&OsString>,
    cwd: Option<&Path>,
) -> std::io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.map_or(OsStr::new("/bin:/usr/bin"), |p| p.as_os_str());
    path.as_bytes()
        .split(|b| *b == b':')
        .map(|dir| {
            let dir = Path::new(OsStr::from_bytes(if dir.is_empty() { b"." } else { dir }));
            match cwd {
                Some(cwd) if dir.is_relative() => cwd.join(dir).join(program),
                _ => dir.join(program),
            }
        })
        .find(|candidate| {
            candidate.is_file()
                && nix::unistd::access(candidate, nix::unistd::AccessFlags::X_OK).is_ok()
        })
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))
}

/// The three descriptors a leader starts with, and the ends irctl keeps.
pub struct Stdio {
    child: [OwnedFd; 3],
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl Stdio {
    /// `/dev/null` for stdin and a pipe each for stdout and stderr; every
    /// descriptor above 2 so that moving them into place cannot overwrite
    /// one another.
    pub fn new() -> std::io::Result<Stdio> {
        let null = above_stdio(
            std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot open /dev/null: {e}"))
                })?,
        )?;
        let (out_r, out_w) = pipe_pair()?;
        let (err_r, err_w) = pipe_pair()?;
        Ok(Stdio {
            child: [null, out_w, err_w],
            stdout: out_r,
            stderr: err_r,
        })
    }
}

fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// `fd`, moved above the standard descriptors if it is one of them (irctl
/// started with a closed stdin, say).
fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: duplicating a descriptor this function owns.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// What the child reads (all made before the clone) and the slot it
/// writes its error to.
struct Plan {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    sh_argv: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [RawFd; 3],
    join_fd: RawFd,
    parent: libc::pid_t,
    pdeathsig: bool,
    empty: libc::sigset_t,
    error: AtomicI32,
}

/// Starts `prepared` and returns its pid once it runs its program (or the
/// error that kept it from it). The child joins the cgroup whose
/// `cgroup.procs` is open as `join_fd`, and with `pdeathsig` dies with the
/// calling thread, whose process is `parent`.
pub fn start(
    prepared: &Prepared,
    stdio: &Stdio,
    join_fd: Option<RawFd>,
    parent: i32,
    pdeathsig: bool,
) -> std::io::Result<i32> {
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let argv = ptrs(&prepared.argv);
    let envp = ptrs(&prepared.envp);
    // A file without `#!` is run by the shell, as `execvp` does.
    let sh = c"/bin/sh";
    let sh_argv: Vec<*const libc::c_char> = [sh.as_ptr(), prepared.program.as_ptr()]
        .into_iter()
        .chain(argv.iter().skip(1).copied())
        .collect();
    let [stdin, stdout, stderr] = &stdio.child;
    // SAFETY: an empty set is a valid sigset_t once sigemptyset has run.
    let empty = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    };
    let plan = Plan {
        program: prepared.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        sh_argv: sh_argv.as_ptr(),
        cwd: prepared
            .cwd
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        stdio: [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
        join_fd: join_fd.unwrap_or(-1),
        parent,
        pdeathsig,
        empty,
        error: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; STACK];
    // SAFETY: the top of the buffer, aligned down to 16 bytes as the ABI
    // wants a stack; the buffer outlives the child's use of it because the
    // clone returns only once the child has exec'd or exited.
    let top = unsafe {
        let end = stack.as_mut_ptr().add(STACK);
        end.sub(end as usize % 16)
    };
    // SAFETY: every signal is blocked around the clone (see the module
    // doc) and restored right after; `child` only reads `plan`, which lives
    // on this frame until the child has left this address space.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(&plan).cast_mut().cast(),
        );
        let cloned = std::io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(cloned);
        }
        pid
    };
    drop(stack);
    let error = plan.error.load(Ordering::SeqCst);
    if error != 0 {
        // It exited without running its program: reap it here.
        let mut status = 0;
        // SAFETY: waiting for a child of this process that has exited.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(std::io::Error::from_raw_os_error(error));
    }
    Ok(pid)
}

/// The child between clone and exec (see the module doc for its rules).
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` on the suspended parent's frame.
    let plan = unsafe { &*(arg as *const Plan) };
    // SAFETY: system calls on descriptors and strings prepared before the
    // clone; nothing allocates, locks or unwinds.
    unsafe {
        // irctl's handlers must not run here; ignored signals stay ignored
        // but SIGPIPE, which Rust ignores for itself, as `Command` does.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut old: libc::sigaction = std::mem::zeroed();
        for sig in 1..NSIG {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let keep = old.sa_sigaction == libc::SIG_DFL
                || (old.sa_sigaction == libc::SIG_IGN && sig != libc::SIGPIPE);
            if !keep {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        for (target, fd) in (0..).zip(plan.stdio) {
            if libc::dup2(fd, target) < 0 {
                return fail(plan);
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(plan);
        }
        if !plan.cwd.is_null() && libc::chdir(plan.cwd) != 0 {
            return fail(plan);
        }
        if plan.join_fd >= 0 {
            // A refusal leaves the step to the marker and the subreaper.
            libc::write(plan.join_fd, b"0".as_ptr().cast(), 1);
        }
        if plan.pdeathsig {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return fail(plan);
            }
            // irctl died before the prctl: the signal will never come.
            if libc::getppid() != plan.parent {
                *libc::__errno_location() = libc::ESRCH;
                return fail(plan);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &plan.empty, std::ptr::null_mut());
        libc::execve(plan.program, plan.argv, plan.envp);
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), plan.sh_argv, plan.envp);
        }
        fail(plan)
    }
}

/// Leaves the child with the error of its last system call for the parent.
unsafe fn fail(plan: &Plan) -> libc::c_int {
    // SAFETY: reading errno and exiting without running any of irctl's
    // exit handlers, which belong to the parent.
    unsafe {
        let errno = *libc::__errno_location();
        plan.error
            .store(if errno == 0 { libc::EIO } else { errno }, Ordering::SeqCst);
        libc::_exit(127)
    }
}

/// A started leader: its pid, how to wait for it, and its output pipes.
pub struct Child {
    pid: i32,
    exited: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    /// The read end of its stdout, until taken.
    pub stdout: Option<pipe::Receiver>,
    /// The read end of its stderr, until taken.
    pub stderr: Option<pipe::Receiver>,
}

impl Child {
    /// Wraps the leader `pid` started with `stdio`; inside a tokio runtime.
    pub fn new(pid: i32, stdio: Stdio) -> std::io::Result<Child> {
        let Stdio { stdout, stderr, .. } = stdio;
        // SAFETY: pidfd_open on a child not yet reaped, whose pid is ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let exited = if fd >= 0 {
            // SAFETY: a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
            // SAFETY: the `OwnedFd` moves into the `AsyncFd` and stays the
            // same open descriptor until it is dropped with it.
            let registered =
                unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
            Some(registered.map_err(std::io::Error::from)?)
        } else {
            None
        };
        Ok(Child {
            pid,
            exited,
            status: None,
            stdout: Some(pipe::Receiver::from_owned_fd(stdout)?),
            stderr: Some(pipe::Receiver::from_owned_fd(stderr)?),
        })
    }

    /// Its process id.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// Its exit status if it has exited (and is now reaped).
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = reap(self.pid)?;
        }
        Ok(self.status)
    }

    /// Waits for it to exit; its exit status.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            match &self.exited {
                // A pidfd turns readable when its process exits.
                Some(fd) => {
                    let mut ready = fd.readable().await?;
                    if let Some(status) = reap(self.pid)? {
                        self.status = Some(status);
                        return Ok(status);
                    }
                    ready.clear_ready();
                }
                // Kernels before 5.3 have no pidfd: look again shortly.
                None => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }
}

/// The exit status of the child `pid` if it has exited, reaping it.
fn reap(pid: i32) -> std::io::Result<Option<ExitStatus>> {
    let mut status = 0;
    // SAFETY: a non-blocking wait for one child of this process.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        p if p == pid => Ok(Some(ExitStatus::from_raw(status))),
        _ => Err(std::io::Error::last_os_error()),
    }
}

// A leader dropped unwaited was signalled by its step's scope; reaping it
// now, if it is gone already, keeps zombies from piling up (the scope's
// later looks reap it otherwise).
impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = reap(self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_found_in_the_path_and_a_missing_one_is_not_found() {
        let path = OsString::from("/nonexistent:/bin:/usr/bin");
        let sh = resolve(OsStr::new("sh"), Some(&path), None).unwrap();
        assert!(sh.ends_with("sh") && sh.is_absolute(), "{sh:?}");
        let err = resolve(OsStr::new("no-such-program-irctl"), Some(&path), None).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            resolve(OsStr::new("./x"), None, None).unwrap(),
            PathBuf::from("./x")
        );
    }

    #[test]
    fn a_nul_byte_in_an_argument_is_an_error() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["a\0b"]);
        let Err(err) = Prepared::new(&cmd, Vec::new()) else {
            panic!("a nul byte was accepted");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let mut cmd = Command::new("/bin/sh");
        cmd.env("K", "v\0w");
        assert!(Prepared::new(&cmd, Vec::new()).is_err());
    }
}
