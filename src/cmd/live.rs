//! Live output around the engine, for the commands that run it (`run`,
//! `resume`, `drill`): the async runtime, Ctrl-C/SIGTERM as a cancel
//! signal, progress on stderr as events are written, the question a
//! `confirm` step asks (or, with `--approval wait` and no terminal, the
//! `irctl approve` commands it waits for), and the summary of a finished
//! run. One copy, so the three cannot drift.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use super::{EXIT_FAILED, EXIT_INTERRUPTED};
use crate::ui::{Styled, Tone, Ui};
use irctl::engine::{self, Confirmer, Observer, RunOptions, RunStatus, context::StepStatus};
use irctl::playbook::Playbook;
use irctl::timeline::{Event, Payload, describe};

/// The runtime the engine runs on: two workers are plenty for steps that
/// mostly wait on processes and sockets. Not one thread: starting a process
/// blocks its thread until the child has executed its program, so on one
/// thread a wide playbook's steps start one after another (a 1,000-step DAG
/// at `-c 8` took 1.5x as long), more than the handoffs between threads
/// that one thread saves on a chain.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A receiver that gets `SIGINT` or `SIGTERM` (the signal's name) once
/// either arrives; call inside the runtime that runs the engine.
pub fn cancel_on_signal() -> watch::Receiver<Option<String>> {
    let (cancel_tx, cancel_rx) = watch::channel(None);
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let reason = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = cancel_tx.send(Some(reason.to_string()));
    });
    cancel_rx
}

/// Runs the engine with live progress and prints the summary; the exit
/// code of the run and what the engine reported. With `wait`, a `confirm`
/// nobody can be asked on a terminal waits for `irctl approve` instead of
/// failing.
pub fn execute_reporting(
    ui: &Ui,
    playbook: &Playbook,
    incident: &irctl::incident::Incident,
    opts: RunOptions,
    wait: bool,
) -> anyhow::Result<(u8, engine::RunResult)> {
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let cancel_rx = cancel_on_signal();
        let observer: Arc<dyn Observer> = Arc::new(Progress { ui: *ui });
        let confirmer: Arc<dyn Confirmer> = Arc::new(TtyConfirmer { ui: *ui, wait });
        engine::run(playbook, incident, opts, observer, confirmer, cancel_rx).await
    })?;
    // The runtime owns no process after the run; don't wait on stray blocking reads.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));

    let mut table = ui.table(&["STEP", "STATUS", "ATTEMPTS", "DURATION", "REASON"]);
    for s in &result.steps {
        table.add_row(vec![
            s.id.to_string(),
            s.status.as_str().to_string(),
            s.attempts.to_string(),
            irctl::duration::format(std::time::Duration::from_millis(s.duration_ms)),
            s.reason.clone().unwrap_or_default(),
        ]);
    }
    ui.outln(&table.to_string())?;
    ui.outln(&format!(
        "run {} {} in {}",
        result.run_id,
        result.status.as_str(),
        irctl::duration::format(result.duration)
    ))?;
    // A copy of the final hash outside the state directory is what
    // `irctl timeline verify --expect` checks a rewritten chain against.
    ui.outln(&format!(
        "timeline: {} (final hash {}{})",
        result.timeline.display(),
        result.timeline_hash,
        if result.keyed { ", keyed" } else { "" }
    ))?;
    let code = match result.status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed => EXIT_FAILED,
        // 130 is for a person or a supervisor stopping irctl; a deadline
        // (the playbook's `timeout`, a drill's `max_duration`) is the work
        // failing to get done in time.
        RunStatus::Cancelled
            if matches!(result.cancelled_by.as_deref(), Some("SIGINT" | "SIGTERM")) =>
        {
            EXIT_INTERRUPTED
        }
        // Stopped from outside because the incident resolved
        // (`cancel_on_resolve`): interrupted, not failed.
        RunStatus::Cancelled
            if result
                .cancelled_by
                .as_deref()
                .is_some_and(|r| r.starts_with(engine::RESOLVED_CANCEL)) =>
        {
            EXIT_INTERRUPTED
        }
        RunStatus::Cancelled => EXIT_FAILED,
    };
    Ok((code, result))
}

/// An event's description laid out under a progress line: continuation
/// lines (a console notification's text, a multi-line error) indented, or
/// only the first line when `whole` is false (a step's script is in the
/// timeline; progress names it).
fn progress_words(e: &Event, whole: bool) -> String {
    let words = describe(e);
    if whole {
        return words.replace('\n', "\n    ");
    }
    match words.split_once('\n') {
        Some((first, _)) => format!("{first} \u{2026}"),
        None => words,
    }
}

/// Live progress of a run on stderr.
struct Progress {
    ui: Ui,
}

impl Observer for Progress {
    fn on_event(&self, e: &Event) {
        let step = e.step().unwrap_or_default();
        let words = progress_words(e, !matches!(e.payload, Payload::StepStarted(_)));
        let marked = |tone: Tone, mark: &str| {
            Styled::new()
                .text("  ")
                .tone(tone, mark)
                .text(format!(" {step} {words}"))
        };
        let line = match &e.payload {
            Payload::RunStarted(_) => {
                // The run id goes to stdout first, so scripts can capture it.
                let _ = self.ui.outln(&format!("run {}", e.run_id));
                Styled::new().text(format!("{words} for incident {}", e.incident_id))
            }
            Payload::Warning(_) => Styled::new().tone(Tone::Warning, format!("warning: {words}")),
            Payload::StepStarted(_) => marked(Tone::Running, "\u{25b8}"),
            Payload::StepRetrying(_) => marked(Tone::Retrying, "\u{21bb}"),
            Payload::StepFinished(f) if f.status == StepStatus::Succeeded => {
                marked(Tone::Succeeded, "\u{2714}")
            }
            Payload::StepFinished(_) => marked(Tone::Failed, "\u{2718}"),
            Payload::StepSkipped(_) => marked(Tone::Muted, "-"),
            Payload::StepSimulated(_) => marked(Tone::Simulated, "\u{2248}"),
            Payload::Notification(_) => marked(Tone::Notified, "\u{2709}"),
            Payload::Confirmation(_) => Styled::new().text(format!("  ? {step} {words}")),
            Payload::ApprovalRequested(_) => Styled::new().text(format!("  ? {step} {words}")),
            Payload::RunCancelled(_) => Styled::new().tone(Tone::Alarm, format!("run {words}")),
            _ => return,
        };
        self.ui.say(&line);
    }

    fn on_output(&self, step: &str, stream: &str, line: &str) {
        let tag = if stream == "stderr" {
            Styled::new().text("    ").tone(Tone::Retrying, "!")
        } else {
            Styled::new().text("    ").tone(Tone::Muted, "|")
        };
        self.ui.say(&tag.text(format!(" {step}: {line}")));
    }
}

/// Asks on the terminal; with no terminal, nobody can approve here, and
/// the step fails or (`--approval wait`) waits for `irctl approve`.
struct TtyConfirmer {
    ui: Ui,
    wait: bool,
}

impl Confirmer for TtyConfirmer {
    fn confirm(&self, step: &str, question: &str) -> Option<bool> {
        self.ui.ask(&format!("? [{step}] {question}"))
    }

    fn waits(&self) -> bool {
        self.wait
    }
}

/// One line per drill on stderr, and its steps with `--verbose`.
pub struct DrillProgress {
    /// Where to print.
    pub ui: Ui,
    /// List the steps and stream their output too.
    pub verbose: bool,
}

impl Observer for DrillProgress {
    fn on_event(&self, e: &Event) {
        let step = e.step().unwrap_or_default();
        let line = match &e.payload {
            Payload::RunStarted(p) => format!("drill {}: run {}", p.playbook, e.run_id),
            Payload::RunCancelled(_) => format!("  run {}", progress_words(e, true)),
            _ if !self.verbose => return,
            Payload::StepFinished(_)
            | Payload::StepSkipped(_)
            | Payload::StepSimulated(_)
            | Payload::Notification(_) => format!("  {step} {}", progress_words(e, false)),
            _ => return,
        };
        self.ui.errln(&line);
    }

    fn on_output(&self, step: &str, _stream: &str, line: &str) {
        self.ui.errln(&format!("    {step}: {line}"));
    }
}
