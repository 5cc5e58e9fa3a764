//! `shell` and `command` steps: a child process in its own process group.
//!
//! The group is what makes "nothing hangs" true: on timeout or cancellation
//! the whole group gets SIGTERM, then SIGKILL after a grace period, and when
//! the main process exits any background leftovers are killed too, so no
//! grandchild outlives its step or keeps our pipes open.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::watch;

use super::{Attempt, Observer};
use crate::engine::context::{StepOutput, StepStatus};

/// Most bytes kept of each of stdout and stderr.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// Time between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// What to execute.
pub struct Invocation {
    /// The argv; `["/bin/sh", "-c", script]` for `shell`.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
}

async fn read_capped<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: &'static str,
    step: String,
    observer: Option<std::sync::Arc<dyn Observer>>,
) -> (String, bool) {
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 16 * 1024];
    let mut pending_line: Vec<u8> = Vec::new();
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = &buf[..n];
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                if room >= n {
                    kept.extend_from_slice(chunk);
                } else {
                    kept.extend_from_slice(&chunk[..room]);
                    truncated = true;
                }
                if let Some(obs) = &observer {
                    pending_line.extend_from_slice(chunk);
                    while let Some(i) = pending_line.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending_line.drain(..=i).collect();
                        obs.on_output(&step, stream, String::from_utf8_lossy(&line).trim_end());
                    }
                    if pending_line.len() > 64 * 1024 {
                        pending_line.clear();
                    }
                }
            }
        }
    }
    if let Some(obs) = &observer
        && !pending_line.is_empty()
    {
        obs.on_output(
            &step,
            stream,
            String::from_utf8_lossy(&pending_line).trim_end(),
        );
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if truncated {
        text.push_str("\n[irctl: output truncated at 1 MiB]");
    }
    (text, truncated)
}

fn signal_group(pgid: i32, signal: Signal) {
    // ESRCH (group already gone) is the normal case after a clean exit.
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Runs the invocation once, bounded by `timeout` and `cancel`.
pub async fn run(
    step: &str,
    inv: &Invocation,
    timeout: Duration,
    mut cancel: watch::Receiver<Option<String>>,
    observer: Option<std::sync::Arc<dyn Observer>>,
) -> Attempt {
    let started = Instant::now();
    let Some((program, args)) = inv.argv.split_first() else {
        return Attempt::failed(
            StepOutput::empty(StepStatus::Failed),
            "empty command".into(),
            false,
        );
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // irctl's own Git credential is not the playbook's to read.
    cmd.env_remove(crate::source::auth::TOKEN_ENV);
    for (k, v) in &inv.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &inv.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = match &inv.cwd {
                Some(cwd) if !std::path::Path::new(cwd).is_dir() => {
                    format!("working directory `{cwd}` does not exist")
                }
                _ => format!("cannot start `{program}`: {e}"),
            };
            return Attempt::failed(StepOutput::empty(StepStatus::Failed), msg, false);
        }
    };
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let out_task = child
        .stdout
        .take()
        .map(|s| tokio::spawn(read_capped(s, "stdout", step.to_string(), observer.clone())));
    let err_task = child
        .stderr
        .take()
        .map(|s| tokio::spawn(read_capped(s, "stderr", step.to_string(), observer.clone())));

    enum End {
        Exited(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Cancelled(String),
    }
    let end = tokio::select! {
        status = child.wait() => End::Exited(status),
        _ = tokio::time::sleep(timeout) => End::TimedOut,
        reason = wait_cancel(&mut cancel) => End::Cancelled(reason),
    };
    let exit = match end {
        End::Exited(status) => {
            // Background leftovers of the script must not outlive the step.
            if pgid > 0 {
                signal_group(pgid, Signal::SIGKILL);
            }
            Ok(status)
        }
        ref stopped @ (End::TimedOut | End::Cancelled(_)) => {
            let why = match stopped {
                End::Cancelled(reason) => (StepStatus::Cancelled, format!("cancelled: {reason}")),
                _ => (
                    StepStatus::TimedOut,
                    format!("timed out after {}", crate::duration::format(timeout)),
                ),
            };
            if pgid > 0 {
                signal_group(pgid, Signal::SIGTERM);
            }
            let status = match tokio::time::timeout(KILL_GRACE, child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    if pgid > 0 {
                        signal_group(pgid, Signal::SIGKILL);
                    }
                    child.wait().await
                }
            };
            if pgid > 0 {
                signal_group(pgid, Signal::SIGKILL);
            }
            Err((why, status.ok()))
        }
    };
    let collect = |task: Option<tokio::task::JoinHandle<(String, bool)>>| async move {
        match task {
            // A process that escaped the group (setsid) could hold the pipe forever.
            Some(t) => match tokio::time::timeout(Duration::from_secs(2), t).await {
                Ok(Ok((s, _))) => s,
                _ => String::new(),
            },
            None => String::new(),
        }
    };
    let stdout = collect(out_task).await;
    let stderr = collect(err_task).await;
    let mut output = StepOutput::empty(StepStatus::Failed);
    output.stdout = stdout;
    output.stderr = stderr;
    output.duration_ms = started.elapsed().as_millis() as u64;
    match exit {
        Ok(Ok(status)) => {
            output.exit_code = status.code().or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                status.signal().map(|s| 128 + s)
            });
            if status.success() {
                output.status = StepStatus::Succeeded;
                Attempt::ok(output)
            } else {
                let msg = match status.code() {
                    Some(code) => format!("exited with status {code}"),
                    None => "killed by a signal".to_string(),
                };
                Attempt::failed(output, msg, true)
            }
        }
        Ok(Err(e)) => Attempt::failed(output, format!("cannot wait for the process: {e}"), true),
        Err(((status, msg), exit)) => {
            output.exit_code = exit.and_then(|s| s.code());
            output.status = status;
            let mut a = Attempt::failed(output, msg, status == StepStatus::TimedOut);
            a.status = status;
            a
        }
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
