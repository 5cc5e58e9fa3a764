//! `shell` and `command` steps: a child process contained with everything
//! it starts (see [`super::contain`]).
//!
//! Containment is what makes "nothing hangs" true: on timeout or
//! cancellation, and after a normal exit for anything left behind, every
//! process of the step gets SIGTERM, then SIGKILL after a grace period,
//! however it detached (a new session or group, a double fork), so no
//! daemon outlives its step or keeps our pipes open. Output read before the
//! step ended is kept even if an unkillable process still holds a pipe.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::Observer;
use super::contain;
use super::response::{Captured, Exit, ProcessRun, Response, StepError, Stopped};
use crate::process::spawn::Command;
use crate::secret::Redactor;

/// Most bytes kept of each of stdout and stderr.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// Time between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long a pipe may stay open after its process ended.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// What a `shell` or `command` step executes.
#[derive(Clone)]
pub struct Invocation {
    /// The script or the argv.
    pub program: Program,
    /// Extra environment (it carries secret values).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
    /// For a script, the argv it is appended to (`shell_interpreter`);
    /// `None` is [`default_interpreter`].
    pub interpreter: Option<Vec<String>>,
}

/// The interpreter of a `shell:` script without `shell_interpreter`: bash
/// with `-e -o pipefail` where it is installed, else the system shell with
/// `-e`, so a script stops at its first failing command as CI users expect.
/// Looked up once per process: bash starts slower than dash, but finding it
/// must not cost a step anything.
pub fn default_interpreter() -> &'static [String] {
    static DEFAULT: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| {
        // By absolute path: no PATH search, and a `bash` planted earlier in
        // PATH cannot stand in for it.
        let bash = ["/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file());
        match bash {
            Some(bash) => [bash, "-e", "-o", "pipefail", "-c"]
                .map(String::from)
                .to_vec(),
            None => ["/bin/sh", "-e", "-c"].map(String::from).to_vec(),
        }
    })
}

/// The two ways a step names what to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A script for the system shell (`shell:`).
    Shell(String),
    /// An argv executed directly (`command:`).
    Command(Vec<String>),
}

impl Invocation {
    /// The argv to execute.
    pub fn argv(&self) -> Vec<String> {
        match &self.program {
            Program::Shell(script) => {
                let mut argv = match &self.interpreter {
                    Some(argv) => argv.clone(),
                    None => default_interpreter().to_vec(),
                };
                argv.push(script.clone());
                argv
            }
            Program::Command(argv) => argv.clone(),
        }
    }
}

// The environment carries secrets: debug output names the variables only.
impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("program", &self.program)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

/// Reads one stream to its end, keeping up to [`OUTPUT_CAP`] bytes and, for
/// `--verbose`, passing it on line by line. Both cuts respect secrets: the
/// lines are redacted as one stream before they are split, so a secret
/// across lines or reads is masked whole, and the kept bytes end before any
/// secret the cap would cut (the record redacts the rest). Reading stops,
/// keeping what it has, [`PIPE_GRACE`] after `ended` turns true: a process
/// outside irctl's reach could hold the pipe open forever.
async fn read_capped<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: &'static str,
    step: &str,
    observer: Option<std::sync::Arc<dyn Observer>>,
    redactor: &Redactor,
    mut ended: watch::Receiver<bool>,
) -> Captured {
    let cut = async move {
        let _ = ended.wait_for(|e| *e).await;
        tokio::time::sleep(PIPE_GRACE).await;
    };
    tokio::pin!(cut);
    // Past the cap, enough to see whole any secret that starts before it.
    let limit = OUTPUT_CAP + redactor.longest().saturating_sub(1);
    let mut kept: Vec<u8> = Vec::new();
    let mut overflow = false;
    // On the heap: a buffer inside the future would make every step's
    // future tens of kilobytes, copied each time it is spawned or moved.
    let mut buf = vec![0u8; 16 * 1024];
    let mut shown = redactor.stream();
    let mut pending_line: Vec<u8> = Vec::new();
    let emit_lines = |pending_line: &mut Vec<u8>, obs: &dyn Observer| {
        while let Some(i) = pending_line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending_line.drain(..=i).collect();
            obs.on_output(step, stream, String::from_utf8_lossy(&line).trim_end());
        }
    };
    loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => read,
            () = &mut cut => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = &buf[..n];
                let room = limit.saturating_sub(kept.len());
                if room >= n {
                    kept.extend_from_slice(chunk);
                } else {
                    kept.extend_from_slice(&chunk[..room]);
                    overflow = true;
                }
                if let Some(obs) = &observer {
                    pending_line.extend(shown.push(chunk));
                    emit_lines(&mut pending_line, obs.as_ref());
                    if pending_line.len() > 64 * 1024 {
                        pending_line.clear();
                    }
                }
            }
        }
    }
    if let Some(obs) = &observer {
        pending_line.extend(shown.finish());
        emit_lines(&mut pending_line, obs.as_ref());
        if !pending_line.is_empty() {
            obs.on_output(
                step,
                stream,
                String::from_utf8_lossy(&pending_line).trim_end(),
            );
        }
    }
    let truncated = overflow || kept.len() > OUTPUT_CAP;
    if truncated {
        kept.truncate(redactor.safe_cut(&kept, OUTPUT_CAP));
    }
    Captured {
        bytes: kept,
        truncated,
    }
}

/// Runs the invocation once, bounded by `timeout` and `cancel`, and reports
/// how the process ended; whether that is a success is the judge's call.
/// `tag` (`<run>/<step>/<attempt>`) marks every process of the attempt.
pub async fn run(
    step: &str,
    tag: &str,
    inv: &Invocation,
    timeout: Duration,
    mut cancel: watch::Receiver<Option<String>>,
    observer: Option<std::sync::Arc<dyn Observer>>,
    redactor: &Redactor,
) -> Response {
    let started = Instant::now();
    let argv = inv.argv();
    let Some((program, args)) = argv.split_first() else {
        return Response::failed(StepError::EmptyCommand, Duration::ZERO);
    };
    // Its stdio is the leader's: stdin from /dev/null, two pipes out.
    let mut cmd = Command::new(program);
    cmd.args(args);
    // irctl's own Git credential is not the playbook's to read.
    cmd.env_remove(crate::source::auth::TOKEN_ENV);
    // Nor the timeline key: a step that has it could rewrite the record.
    cmd.env_remove(crate::timeline::chain::KEY_SECRET);
    cmd.env_remove(format!(
        "IRCTL_SECRET_{}",
        crate::timeline::chain::KEY_SECRET
    ));
    for (k, v) in &inv.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &inv.cwd {
        cmd.current_dir(cwd);
    }
    let (mut child, mut scope) = match contain::spawn(cmd, tag) {
        Ok(c) => c,
        Err(source) => {
            let error = match &inv.cwd {
                Some(cwd) if !std::path::Path::new(cwd).is_dir() => {
                    StepError::NoWorkingDir(cwd.clone())
                }
                _ => StepError::Spawn {
                    program: program.clone(),
                    source,
                },
            };
            return Response::failed(error, Duration::ZERO);
        }
    };
    // Both pipes are read inside this future rather than by tasks of their
    // own: a step is then one task, woken once per event, instead of three
    // handing results to each other across threads.
    let (ended_tx, ended_rx) = watch::channel(false);
    let stdout = read_until_cut(
        child.stdout.take(),
        "stdout",
        step,
        observer.clone(),
        redactor,
        ended_rx.clone(),
    );
    let stderr = read_until_cut(
        child.stderr.take(),
        "stderr",
        step,
        observer,
        redactor,
        ended_rx,
    );
    let process = async {
        let end = wait_bounded(&mut child, &mut scope, timeout, &mut cancel).await;
        let _ = ended_tx.send(true);
        end
    };
    let (end, stdout, stderr) = tokio::join!(process, stdout, stderr);
    Response::Process(ProcessRun {
        end,
        stdout,
        stderr,
        duration: started.elapsed(),
    })
}

/// Waits for the child to exit, or stops it on timeout or cancellation;
/// either way ends everything else the step started. How it ended.
async fn wait_bounded(
    child: &mut crate::process::spawn::Child,
    scope: &mut contain::Scope,
    timeout: Duration,
    cancel: &mut watch::Receiver<Option<String>>,
) -> Result<Exit, Stopped> {
    let stopped = tokio::select! {
        _ = child.wait() => None,
        _ = tokio::time::sleep(timeout) => Some(StepError::Timeout { after: timeout }),
        reason = wait_cancel(cancel) => Some(StepError::Cancelled { reason: Some(reason) }),
    };
    // After an exit, only leftovers get the signals; the status is kept.
    let status = scope.finish(child, KILL_GRACE).await;
    match stopped {
        None => match status {
            Ok(status) => Ok(Exit::from(status)),
            Err(e) => Err(Stopped {
                error: StepError::Wait(e),
                exit: None,
            }),
        },
        Some(error) => Err(Stopped {
            error,
            exit: status.ok().map(Exit::from),
        }),
    }
}

/// Reads one pipe, if there is one (see [`read_capped`]).
async fn read_until_cut<R: AsyncRead + Unpin>(
    reader: Option<R>,
    stream: &'static str,
    step: &str,
    observer: Option<std::sync::Arc<dyn Observer>>,
    redactor: &Redactor,
    ended: watch::Receiver<bool>,
) -> Captured {
    match reader {
        Some(reader) => read_capped(reader, stream, step, observer, redactor, ended).await,
        None => Captured::default(),
    }
}

/// Resolves when the run is cancelled, with the reason.
pub async fn wait_cancel(cancel: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(reason) = cancel.borrow().clone() {
            return reason;
        }
        if cancel.changed().await.is_err() {
            // The sender is gone: nobody can cancel any more.
            std::future::pending::<()>().await;
        }
    }
}
