//! The run engine: one library call that takes a playbook, an incident and
//! options, runs the steps as a DAG and returns the result.
//!
//! The scheduler alone owns concurrency: it decides which steps are ready,
//! skips the ones whose trigger or `when` says so (recording why), spawns the
//! rest under a concurrency limit, and is the only writer of the timeline
//! besides the step tasks' own attempt events. Executors ([`shell`],
//! [`http`], [`notify`]) are plain async functions that return an
//! [`Attempt`]. A later `irctl serve` reuses [`run`] unchanged.

pub mod context;
pub mod http;
pub mod lock;
pub mod notify;
pub mod plan;
mod render;
pub mod resume;
pub mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::incident::Incident;
use crate::playbook::Playbook;
use crate::playbook::model::Trigger;
use crate::secret::{Redactor, Secret};
use crate::timeline::{self, Event};
use context::{ContextBase, RunMeta, StepOutput, StepStatus};

/// One try of a step.
#[derive(Debug)]
pub struct Attempt {
    /// How it ended.
    pub status: StepStatus,
    /// What it captured.
    pub output: StepOutput,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether trying again may help.
    pub retryable: bool,
    /// A server's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    /// A success.
    pub fn ok(mut output: StepOutput) -> Self {
        output.status = StepStatus::Succeeded;
        Attempt {
            status: StepStatus::Succeeded,
            output,
            error: None,
            retryable: false,
            retry_after: None,
        }
    }

    /// A failure with its reason.
    pub fn failed(mut output: StepOutput, error: String, retryable: bool) -> Self {
        output.status = StepStatus::Failed;
        Attempt {
            status: StepStatus::Failed,
            output,
            error: Some(error),
            retryable,
            retry_after: None,
        }
    }
}

/// Receives events as they are written, for live progress.
pub trait Observer: Send + Sync {
    /// An event was appended to the timeline (already redacted).
    fn on_event(&self, event: &Event);
    /// A line of a running step's output (only when streaming is on; already redacted).
    fn on_output(&self, _step: &str, _stream: &str, _line: &str) {}
}

/// Asks a person to approve a step.
pub trait Confirmer: Send + Sync {
    /// `Some(answer)` from a person, `None` when nobody can be asked (no TTY).
    fn confirm(&self, step: &str, question: &str) -> Option<bool>;
}

/// Stands in for the real executors (shell, HTTP, notify): when set in
/// [`RunOptions::executor`], every attempt of a step is answered by it from
/// the step's fully rendered action, so `irctl test` runs the real scheduler,
/// templates, retries, triggers and `when` with no process and no network.
pub trait Executor: Send + Sync {
    /// Answers attempt `attempt` (1-based) of `step`, whose rendered action is
    /// `action` (as the timeline records it: `shell`/`command`, a request, or
    /// a notification with its `notify` target).
    fn execute(
        &self,
        step: &crate::playbook::Step,
        attempt: u32,
        action: &serde_json::Value,
    ) -> Attempt;
}

/// How to run.
pub struct RunOptions {
    /// Where runs, locks and drill state live.
    pub state_dir: PathBuf,
    /// Steps running at once.
    pub concurrency: usize,
    /// Approve every `confirm`.
    pub yes: bool,
    /// Stream step output to the observer.
    pub verbose: bool,
    /// This is a drill: simulate `simulate_in_drill` steps, tag notifications.
    pub drill: bool,
    /// Answers attempts instead of the real executors, without waiting between retries.
    pub executor: Option<Arc<dyn Executor>>,
    /// `--input` values.
    pub inputs: Vec<(String, String)>,
    /// Resolved secrets.
    pub secrets: BTreeMap<String, Secret>,
    /// Set when the playbook was named although it does not match; recorded.
    pub match_warning: Option<String>,
    /// Who runs this (for confirmations).
    pub actor: String,
    /// A deadline for the whole run on top of the playbook's `timeout` (a
    /// drill's `max_duration`): reaching it cancels the run.
    pub deadline: Option<Duration>,
    /// Continue this earlier run instead of starting a new one (`irctl resume`).
    pub resume: Option<resume::Resume>,
}

/// The outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step succeeded, was skipped, or failed with `continue_on_error`.
    Succeeded,
    /// A step failed.
    Failed,
    /// Interrupted.
    Cancelled,
}

impl RunStatus {
    /// Name in the timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// One row of the summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepReport {
    /// Step id.
    pub id: String,
    /// Final status.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Total time.
    pub duration_ms: u64,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
}

/// What [`run`] returns.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run id.
    pub run_id: String,
    /// Overall status.
    pub status: RunStatus,
    /// Per step, in playbook order.
    pub steps: Vec<StepReport>,
    /// The timeline file.
    pub timeline: PathBuf,
    /// Wall time.
    pub duration: Duration,
    /// The signal or reason, when cancelled.
    pub cancelled_by: Option<String>,
}

/// A new run id: sortable by time, unique enough to never collide in practice.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    format!(
        "{}-{:06x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>() & 0xFF_FFFF
    )
}

/// The default state directory (`$XDG_STATE_HOME/irctl`).
pub fn default_state_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("irctl")
}

/// The directory of one run.
pub fn run_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("runs").join(run_id)
}

/// Writes events and tells the observer; remembers the first write failure.
pub(crate) struct Recorder {
    writer: Mutex<timeline::Writer>,
    observer: Arc<dyn Observer>,
    failure: Mutex<Option<String>>,
    redactor: Redactor,
}

impl Recorder {
    pub(crate) fn emit(&self, kind: &str, data: serde_json::Value) {
        let result = match self.writer.lock() {
            Ok(mut w) => w.append(kind, data),
            Err(_) => Err(anyhow::anyhow!("timeline writer poisoned")),
        };
        match result {
            Ok(event) => self.observer.on_event(&event),
            Err(e) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }
}

struct RedactingObserver {
    inner: Arc<dyn Observer>,
    redactor: Redactor,
}

impl Observer for RedactingObserver {
    fn on_event(&self, event: &Event) {
        self.inner.on_event(event);
    }
    fn on_output(&self, step: &str, stream: &str, line: &str) {
        self.inner
            .on_output(step, stream, &self.redactor.redact(line));
    }
}

/// Per-step bookkeeping of the scheduler.
#[derive(Clone)]
enum State {
    Pending,
    Running,
    Done(StepStatus),
}

/// Runs `playbook` for `incident`. Exits early (nothing written) only for
/// input problems; once `run_started` is written every outcome is recorded.
pub async fn run(
    playbook: &Playbook,
    incident: &Incident,
    opts: RunOptions,
    observer: Arc<dyn Observer>,
    confirmer: Arc<dyn Confirmer>,
    cancel: watch::Receiver<Option<String>>,
) -> anyhow::Result<RunResult> {
    let run_id = match &opts.resume {
        Some(r) => r.run_id.clone(),
        None => new_run_id(),
    };
    let started = Instant::now();
    let meta = RunMeta {
        id: run_id.clone(),
        started_at: match &opts.resume {
            Some(r) => r.started_at.clone(),
            None => timeline::now(),
        },
        drill: opts.drill,
        dry_run: false,
    };
    let drill_inputs = if opts.drill {
        playbook.drill.as_ref().map(|d| &d.inputs)
    } else {
        None
    };
    let inputs = context::resolve_inputs(playbook, incident, &meta, &opts.inputs, drill_inputs)?;
    let _lock = lock::acquire(&opts.state_dir, &incident.id, &playbook.name, &run_id)?;

    let credentials = incident.credentials();
    let redactor = Redactor::new(opts.secrets.values().chain(&credentials));
    let path = run_dir(&opts.state_dir, &run_id).join(timeline::FILE_NAME);
    let torn_tail_bytes = match &opts.resume {
        Some(_) => timeline::remove_torn_tail(&path)?,
        None => 0,
    };
    let writer = timeline::Writer::open(&path, &run_id, &incident.id, redactor.clone())?;
    let recorder = Arc::new(Recorder {
        writer: Mutex::new(writer),
        observer: Arc::new(RedactingObserver {
            inner: observer,
            redactor: redactor.clone(),
        }),
        failure: Mutex::new(None),
        redactor: redactor.clone(),
    });
    let base = Arc::new(ContextBase {
        incident: incident.to_template_value(),
        inputs: inputs.clone(),
        run: meta.clone(),
        playbook: context::playbook_value(playbook),
        secrets: opts.secrets.clone(),
    });
    if let Some(r) = &opts.resume {
        recorder.emit(
            "run_resumed",
            resume::event(r, playbook, &opts.actor, torn_tail_bytes),
        );
    } else {
        recorder.emit(
            "run_started",
            json!({
                "playbook": playbook.name,
                "title": playbook.raw.title,
                "owner": playbook.raw.owner,
                "provenance": playbook.provenance,
                "incident": incident.to_template_value(),
                "inputs": inputs,
                "drill": opts.drill,
                "concurrency": opts.concurrency,
                "actor": opts.actor,
                "steps": playbook.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
            }),
        );
    }
    if let Some(w) = &opts.match_warning {
        recorder.emit("warning", json!({ "message": w }));
    }

    let sched = Scheduler {
        playbook,
        base,
        recorder: recorder.clone(),
        confirmer,
        opts: &opts,
        clients: Arc::new(http::Clients::default()),
        confirm_lock: Arc::new(tokio::sync::Mutex::new(())),
    };
    let run_timeout = match (playbook.timeout, opts.deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (cancelled_by, reports) = sched.drive(cancel, run_timeout).await;

    let failed = reports
        .iter()
        .zip(&playbook.steps)
        .any(|(r, s)| r.status.is_failure() && !s.raw.continue_on_error);
    let status = if cancelled_by.is_some() {
        RunStatus::Cancelled
    } else if failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    if let Some(reason) = &cancelled_by {
        recorder.emit("run_cancelled", json!({ "signal": reason }));
    }
    let duration = started.elapsed();
    recorder.emit(
        "run_finished",
        json!({ "status": status.as_str(), "duration_ms": duration.as_millis() as u64 }),
    );
    if let Ok(w) = recorder.writer.lock() {
        w.sync();
    }
    if let Some(err) = recorder.failure.lock().ok().and_then(|f| f.clone()) {
        anyhow::bail!("the timeline could not be written completely: {err}");
    }
    Ok(RunResult {
        run_id,
        status,
        steps: reports,
        timeline: path,
        duration,
        cancelled_by,
    })
}

struct Scheduler<'a> {
    playbook: &'a Playbook,
    base: Arc<ContextBase>,
    recorder: Arc<Recorder>,
    confirmer: Arc<dyn Confirmer>,
    opts: &'a RunOptions,
    clients: Arc<http::Clients>,
    confirm_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Why a ready step should not run, if it should not.
fn trigger_skip(trigger: Trigger, needs: &[(String, StepStatus, bool)]) -> Option<String> {
    match trigger {
        Trigger::Always => None,
        Trigger::OnSuccess => needs
            .iter()
            .find(|(_, st, tolerated)| {
                !(matches!(st, StepStatus::Succeeded | StepStatus::Simulated)
                    || (st.is_failure() && *tolerated))
            })
            .map(|(id, st, _)| match st {
                StepStatus::Skipped => format!("need {id} was skipped"),
                StepStatus::TimedOut => format!("need {id} timed out"),
                StepStatus::Cancelled => format!("need {id} was cancelled"),
                _ => format!("need {id} failed"),
            }),
        Trigger::OnFailure => {
            if needs.iter().any(|(_, st, _)| st.is_failure()) {
                None
            } else if needs.is_empty() {
                Some("trigger on_failure without needs".to_string())
            } else {
                Some(format!(
                    "trigger on_failure: {} succeeded",
                    needs
                        .iter()
                        .map(|(id, _, _)| id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
}

impl Scheduler<'_> {
    async fn drive(
        &self,
        mut cancel: watch::Receiver<Option<String>>,
        run_timeout: Option<Duration>,
    ) -> (Option<String>, Vec<StepReport>) {
        let steps = &self.playbook.steps;
        let n = steps.len();
        let mut state = vec![State::Pending; n];
        let mut reports: Vec<StepReport> = steps
            .iter()
            .map(|s| StepReport {
                id: s.id.clone(),
                status: StepStatus::Skipped,
                attempts: 0,
                duration_ms: 0,
                reason: None,
            })
            .collect();
        let mut outputs = serde_json::Map::new();
        if let Some(r) = &self.opts.resume {
            resume::seed(r, steps, &mut reports, &mut outputs);
            for (i, s) in steps.iter().enumerate() {
                if r.done.contains_key(&s.id) {
                    state[i] = State::Done(StepStatus::Succeeded);
                }
            }
        }
        let semaphore = Arc::new(Semaphore::new(self.opts.concurrency.max(1)));
        let mut tasks: JoinSet<(usize, StepReport, StepOutput)> = JoinSet::new();
        let mut running = 0usize;
        // Internal cancel channel: the outer signal or the run timeout feeds it.
        let (stop_tx, stop_rx) = watch::channel::<Option<String>>(None);
        let deadline = run_timeout.map(|d| tokio::time::Instant::now() + d);
        let mut cancelled_by: Option<String> = None;

        loop {
            // Start or skip every ready step; skipping can make more steps ready.
            let mut progressed = true;
            while progressed {
                progressed = false;
                for i in 0..n {
                    if !matches!(state[i], State::Pending) {
                        continue;
                    }
                    let step = &steps[i];
                    let mut need_states = Vec::new();
                    let mut ready = true;
                    for &j in &step.needs {
                        match state[j] {
                            State::Done(st) => need_states.push((
                                steps[j].id.clone(),
                                st,
                                steps[j].raw.continue_on_error,
                            )),
                            _ => ready = false,
                        }
                    }
                    if !ready {
                        continue;
                    }
                    progressed = true;
                    let skip = if let Some(reason) = &cancelled_by {
                        Some((
                            StepStatus::Cancelled,
                            format!("run cancelled ({reason}) before it started"),
                        ))
                    } else if let Some(reason) = trigger_skip(step.raw.trigger.value, &need_states)
                    {
                        Some((StepStatus::Skipped, reason))
                    } else if let Some(when) = &step.raw.when {
                        let ctx = self.base.value(&outputs, crate::template::Sink::Text);
                        match crate::template::eval_bool(&when.value, &ctx) {
                            Ok(true) => None,
                            Ok(false) => Some((
                                StepStatus::Skipped,
                                format!("when was false: {}", when.value.trim()),
                            )),
                            Err(e) => Some((
                                StepStatus::Failed,
                                format!("when could not be evaluated: {e}"),
                            )),
                        }
                    } else {
                        None
                    };
                    if let Some((status, reason)) = skip {
                        let reason = self.recorder.redactor.redact(&reason);
                        if status == StepStatus::Failed {
                            self.recorder.emit(
                                "step_finished",
                                json!({ "step": step.id, "status": "failed", "attempts": 0, "duration_ms": 0, "error": reason }),
                            );
                        } else {
                            self.recorder.emit("step_skipped", json!({ "step": step.id, "status": status.as_str(), "reason": reason }));
                        }
                        state[i] = State::Done(status);
                        reports[i].status = status;
                        reports[i].reason = Some(reason);
                        let mut out = StepOutput::empty(status);
                        out.status = status;
                        outputs.insert(
                            step.id.clone(),
                            serde_json::to_value(&out).unwrap_or_default(),
                        );
                        continue;
                    }
                    state[i] = State::Running;
                    running += 1;
                    let task = StepTask {
                        index: i,
                        playbook_step: step.clone(),
                        base: self.base.clone(),
                        outputs: outputs.clone(),
                        recorder: self.recorder.clone(),
                        confirmer: self.confirmer.clone(),
                        confirm_lock: self.confirm_lock.clone(),
                        clients: self.clients.clone(),
                        cancel: stop_rx.clone(),
                        yes: self.opts.yes,
                        drill: self.opts.drill,
                        executor: self.opts.executor.clone(),
                        drill_notify: if self.opts.drill {
                            self.playbook.drill.as_ref().and_then(|d| d.notify.clone())
                        } else {
                            None
                        },
                        verbose: self.opts.verbose,
                        actor: self.opts.actor.clone(),
                        semaphore: semaphore.clone(),
                    };
                    tasks.spawn(task.run());
                }
            }
            if running == 0 {
                break;
            }
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
            tokio::select! {
                joined = tasks.join_next() => {
                    let Some(joined) = joined else { break };
                    running -= 1;
                    match joined {
                        Ok((i, report, output)) => {
                            state[i] = State::Done(report.status);
                            outputs.insert(steps[i].id.clone(), serde_json::to_value(&output).unwrap_or_default());
                            reports[i] = report;
                        }
                        Err(e) => {
                            // A panicking task must not take the run down with it unrecorded.
                            self.recorder.emit("engine_error", json!({ "error": e.to_string() }));
                            if let Some(i) = state.iter().position(|s| matches!(s, State::Running)) {
                                state[i] = State::Done(StepStatus::Failed);
                                reports[i].status = StepStatus::Failed;
                                reports[i].reason = Some("internal error".into());
                            }
                        }
                    }
                }
                reason = shell::wait_cancel(&mut cancel), if cancelled_by.is_none() => {
                    cancelled_by = Some(reason.clone());
                    let _ = stop_tx.send(Some(reason));
                }
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() && cancelled_by.is_none() => {
                    let what = if self.opts.drill && self.opts.deadline == run_timeout { "drill max_duration" } else { "run timeout" };
                    let reason = format!("{what} of {} reached", crate::duration::format(run_timeout.unwrap_or_default()));
                    cancelled_by = Some(reason.clone());
                    let _ = stop_tx.send(Some(reason));
                }
            }
        }
        (cancelled_by, reports)
    }
}

struct StepTask {
    index: usize,
    playbook_step: crate::playbook::Step,
    base: Arc<ContextBase>,
    outputs: serde_json::Map<String, serde_json::Value>,
    recorder: Arc<Recorder>,
    confirmer: Arc<dyn Confirmer>,
    confirm_lock: Arc<tokio::sync::Mutex<()>>,
    clients: Arc<http::Clients>,
    cancel: watch::Receiver<Option<String>>,
    yes: bool,
    drill: bool,
    executor: Option<Arc<dyn Executor>>,
    drill_notify: Option<crate::playbook::model::RawDrillNotify>,
    verbose: bool,
    actor: String,
    semaphore: Arc<Semaphore>,
}

impl StepTask {
    async fn run(self) -> (usize, StepReport, StepOutput) {
        let step = &self.playbook_step;
        let _permit = self.semaphore.clone().acquire_owned().await.ok();
        let started = Instant::now();
        let finish =
            |status: StepStatus, attempts: u32, reason: Option<String>, mut output: StepOutput| {
                output.status = status;
                output.attempts = attempts;
                let report = StepReport {
                    id: step.id.clone(),
                    status,
                    attempts,
                    duration_ms: started.elapsed().as_millis() as u64,
                    reason: reason.map(|r| self.recorder.redactor.redact(&r)),
                };
                (self.index, report, output)
            };

        let prepared = match render::prepare(step, &self.base, &self.outputs, self.drill).and_then(
            |p| match &self.drill_notify {
                Some(o) => render::reroute_for_drill(p, o, &self.base, &self.outputs),
                None => Ok(p),
            },
        ) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("template error: {e}");
                self.recorder.emit(
                    "step_finished",
                    json!({ "step": step.id, "status": "failed", "attempts": 0, "duration_ms": 0, "error": msg }),
                );
                return finish(
                    StepStatus::Failed,
                    0,
                    Some(msg),
                    StepOutput::empty(StepStatus::Failed),
                );
            }
        };

        // A simulated step does nothing, so there is nothing to approve: an
        // unattended drill must not fail closed on remediation it never runs.
        if self.drill && step.raw.simulate_in_drill {
            self.recorder.emit(
                "step_simulated",
                json!({ "step": step.id, "action": prepared.describe() }),
            );
            let mut out = StepOutput::empty(StepStatus::Simulated);
            out.simulated = true;
            return finish(
                StepStatus::Simulated,
                0,
                Some("simulated in drill".into()),
                out,
            );
        }

        if let Some(question) = &prepared.confirm {
            let answer = if self.yes {
                Some((true, "--yes".to_string()))
            } else {
                let _guard = self.confirm_lock.lock().await;
                let confirmer = self.confirmer.clone();
                let (s, q) = (step.id.clone(), question.clone());
                let asked = tokio::task::spawn_blocking(move || confirmer.confirm(&s, &q))
                    .await
                    .ok()
                    .flatten();
                asked.map(|a| (a, "tty".to_string()))
            };
            match answer {
                Some((approved, via)) => {
                    self.recorder.emit(
                        "confirmation",
                        json!({ "step": step.id, "question": question, "answer": if approved { "yes" } else { "no" }, "by": self.actor, "via": via }),
                    );
                    if !approved {
                        let msg = "confirmation declined".to_string();
                        self.recorder.emit(
                            "step_finished",
                            json!({ "step": step.id, "status": "failed", "attempts": 0, "duration_ms": 0, "error": msg }),
                        );
                        return finish(
                            StepStatus::Failed,
                            0,
                            Some(msg),
                            StepOutput::empty(StepStatus::Failed),
                        );
                    }
                }
                None => {
                    let msg = "confirmation required: no terminal to ask and `--yes` not given"
                        .to_string();
                    self.recorder.emit(
                        "step_finished",
                        json!({ "step": step.id, "status": "failed", "attempts": 0, "duration_ms": 0, "error": msg }),
                    );
                    return finish(
                        StepStatus::Failed,
                        0,
                        Some(msg),
                        StepOutput::empty(StepStatus::Failed),
                    );
                }
            }
        }

        let policy = step.retry;
        let mut attempt_no = 0u32;
        loop {
            attempt_no += 1;
            self.recorder.emit(
                "step_started",
                json!({ "step": step.id, "attempt": attempt_no, "kind": step.kind, "action": prepared.describe() }),
            );
            let observer: Option<Arc<dyn Observer>> = if self.verbose {
                Some(self.recorder.observer.clone())
            } else {
                None
            };
            let attempt = match &self.executor {
                Some(executor) => executor.execute(step, attempt_no, &prepared.describe()),
                None => {
                    render::execute(
                        &prepared,
                        step,
                        &self.clients,
                        self.cancel.clone(),
                        observer,
                        &self.recorder,
                    )
                    .await
                }
            };
            let cancelled = self.cancel.borrow().is_some();
            let more = attempt_no < policy.attempts
                && attempt.status != StepStatus::Succeeded
                && attempt.retryable
                && !cancelled;
            if more {
                let delay = backoff(policy, attempt_no, attempt.retry_after);
                self.recorder.emit(
                    "step_retrying",
                    json!({
                        "step": step.id, "attempt": attempt_no, "status": attempt.status.as_str(),
                        "error": attempt.error, "exit_code": attempt.output.exit_code,
                        "http_status": attempt.output.http_status, "delay_ms": delay.as_millis() as u64,
                    }),
                );
                let mut cancel = self.cancel.clone();
                // A stand-in executor answers instantly; waiting would only slow tests down.
                let wait = if self.executor.is_some() {
                    Duration::ZERO
                } else {
                    delay
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shell::wait_cancel(&mut cancel) => {}
                }
                if self.cancel.borrow().is_some() {
                    let msg = "cancelled while waiting to retry".to_string();
                    self.recorder.emit(
                        "step_finished",
                        json!({ "step": step.id, "status": "cancelled", "attempts": attempt_no, "duration_ms": started.elapsed().as_millis() as u64, "error": msg }),
                    );
                    return finish(StepStatus::Cancelled, attempt_no, Some(msg), attempt.output);
                }
                continue;
            }
            self.recorder.emit(
                "step_finished",
                json!({
                    "step": step.id,
                    "status": attempt.status.as_str(),
                    "attempts": attempt_no,
                    "duration_ms": started.elapsed().as_millis() as u64,
                    "exit_code": attempt.output.exit_code,
                    "http_status": attempt.output.http_status,
                    "stdout": attempt.output.stdout,
                    "stderr": attempt.output.stderr,
                    "body": if attempt.output.body.is_empty() { None } else { Some(&attempt.output.body) },
                    "error": attempt.error,
                    "continue_on_error": step.raw.continue_on_error && attempt.status != StepStatus::Succeeded,
                }),
            );
            return finish(
                attempt.status,
                attempt_no,
                attempt.error.clone(),
                attempt.output,
            );
        }
    }
}

/// Exponential backoff with jitter, capped; a server's `Retry-After` wins when longer.
fn backoff(
    policy: crate::playbook::RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = policy
        .backoff
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
    let capped = exp.min(policy.max_backoff);
    // Up to 20% jitter down, so retries from many runs do not synchronise.
    let jitter = capped.mul_f64(rand::random::<f64>() * 0.2);
    let delay = capped.saturating_sub(jitter);
    match retry_after {
        Some(ra) => ra
            .min(policy.max_backoff.max(ra.min(Duration::from_secs(300))))
            .max(delay),
        None => delay,
    }
}

/// Reads a run's timeline, for commands that show it.
pub fn timeline_path(state_dir: &Path, run_id: &str) -> anyhow::Result<PathBuf> {
    let p = run_dir(state_dir, run_id).join(timeline::FILE_NAME);
    if !p.exists() {
        anyhow::bail!("no run `{run_id}` in `{}`", state_dir.display());
    }
    Ok(p)
}

#[allow(unused)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<StepTask>();
}

/// Context helper for errors at the state directory boundary.
pub(crate) fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}
