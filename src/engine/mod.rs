//! The run engine: one library call that takes a playbook, an incident and
//! options, runs the steps as a DAG and returns the result.
//!
//! The scheduler alone owns concurrency: it decides which steps are ready,
//! skips the ones whose trigger or `when` says so (recording why), spawns the
//! rest under a concurrency limit, and is the only writer of the timeline
//! besides the step tasks' own attempt events. Executors ([`shell`],
//! [`http`]) are plain async functions that carry out a rendered
//! [`Action`] and report a raw [`Response`]; the one [`judge`] turns it
//! into an [`Attempt`], for real and canned (`irctl test`) executions
//! alike. A later `irctl serve` reuses [`run`] unchanged.

pub mod action;
mod approval;
pub mod blocks;
pub mod budget;
mod contain;
pub mod context;
pub mod http;
pub mod judge;
pub mod notify;
pub mod plan;
mod render;
pub mod response;
pub mod resume;
mod scheduler;
pub mod shell;
mod task;
pub mod team;

pub use action::Action;
pub use response::{Response, StepError};

use scheduler::*;
use task::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::Clock;
use crate::id::{RunId, StepId};
use crate::incident::Incident;
use crate::playbook::Playbook;
use crate::playbook::model::Trigger;
use crate::secret::{Redactor, Secret};
use crate::timeline::{self, Event};
use context::{ContextBase, RunMeta, StepOutput, StepStatus};

/// One try of a step, as the [`judge`] decided it.
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

    /// Whether a question nobody can be asked here waits for an answer
    /// given with `irctl approve` (else the step fails at once).
    fn waits(&self) -> bool {
        false
    }
}

/// The reason a run cancelled because its incident resolved starts with
/// this (`cancel_on_resolve`).
pub const RESOLVED_CANCEL: &str = "incident resolved";

/// Stands in for the real executors (shell, HTTP, notify): when set in
/// [`RunOptions::executor`], every attempt of a step is answered by it from
/// the step's fully rendered action, so `irctl test` runs the real scheduler,
/// templates, retries, triggers, `when` and [`judge`] with no process and
/// no network.
pub trait Executor: Send + Sync {
    /// Answers attempt `attempt` (1-based) of `step`, whose rendered action
    /// is `action`, with what the real executor would have observed.
    fn execute(&self, step: &crate::playbook::Step, attempt: u32, action: &Action) -> Response;
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
    /// Stamps the run id, the timeline's events and what notifications send:
    /// the system clock, so the record says what really happened, except in
    /// tests that need fixed times. Timeouts and durations always use real time.
    pub clock: Clock,
    /// Keys the timeline's hash chain (HMAC-SHA256) when set; see
    /// [`crate::timeline::chain`].
    pub timeline_key: Option<timeline::ChainKey>,
}

pub use crate::timeline::RunStatus;

/// One row of the summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepReport {
    /// Step id.
    pub id: StepId,
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
    pub run_id: RunId,
    /// Overall status.
    pub status: RunStatus,
    /// Per step, in playbook order.
    pub steps: Vec<StepReport>,
    /// The timeline file.
    pub timeline: PathBuf,
    /// The timeline's final hash, as people see it (`sha256:…` or
    /// `hmac-sha256:…`): a copy to keep outside the state directory.
    pub timeline_hash: String,
    /// Whether the chain is keyed.
    pub keyed: bool,
    /// Wall time.
    pub duration: Duration,
    /// The signal or reason, when cancelled.
    pub cancelled_by: Option<String>,
}

/// A new run id for a run starting at `now`: sortable by time, unique
/// enough to never collide in practice.
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> RunId {
    RunId::from(format!(
        "{}-{:06x}",
        now.format("%Y%m%dT%H%M%SZ"),
        // Without OS randomness the clock's nanoseconds still tell runs apart.
        getrandom::u32().unwrap_or_else(|_| now.timestamp_subsec_nanos()) & 0xFF_FFFF
    ))
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

/// A run stopped because its timeline could not be written (a full disk, a
/// file-size limit): no step started after the failed write and the running
/// ones were stopped. One line naming the file, the reason and the way on.
#[derive(Debug, thiserror::Error)]
#[error(
    "the record could not be written, so run `{run_id}` was stopped and no further step started: {failed}; free space, then `irctl resume {run_id}`"
)]
pub struct RecordLost {
    /// The run.
    pub run_id: RunId,
    /// The write that failed.
    pub failed: timeline::Unwritable,
}

/// Why a run stopped when its timeline could not be written.
pub const RECORD_LOST: &str = "the timeline could not be written";

/// Writes events and tells the observer; remembers the first write failure
/// and signals it, so the scheduler stops the run: work the record cannot
/// show is exactly what the record exists to prevent.
pub(crate) struct Recorder {
    writer: Mutex<timeline::Writer>,
    /// The timeline's path, for an error when the writer itself is gone.
    path: PathBuf,
    observer: Arc<dyn Observer>,
    failure: Mutex<Option<timeline::Unwritable>>,
    /// How much more step output the run stores.
    budget: budget::Budget,
    /// Becomes `true` at the first failed write.
    broken: watch::Sender<bool>,
    redactor: Redactor,
}

impl Recorder {
    /// Whether a write has failed: no step may start after that.
    pub(crate) fn is_broken(&self) -> bool {
        *self.broken.borrow()
    }

    /// The chain head now, as people see it.
    pub(crate) fn head(&self) -> String {
        self.writer
            .lock()
            .map(|w| timeline::chain::display(w.head()))
            .unwrap_or_default()
    }

    pub(crate) fn emit(&self, payload: impl Into<timeline::Payload>) {
        let result = match self.writer.lock() {
            Ok(mut w) => w.append(payload),
            Err(_) => Err(anyhow::anyhow!("timeline writer poisoned")),
        };
        match result {
            Ok(event) => self.observer.on_event(&event),
            Err(e) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert_with(|| {
                        e.downcast_ref::<timeline::Unwritable>()
                            .cloned()
                            .unwrap_or_else(|| timeline::Unwritable {
                                what: "timeline",
                                path: self.path.clone(),
                                reason: format!("{e:#}"),
                                errno: None,
                            })
                    });
                }
                self.broken.send_replace(true);
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
    // A resumed run keeps its id and first start, so templates see the same `run`.
    let (run_id, started_at) = match &opts.resume {
        Some(r) => (r.run_id.clone(), r.started_at.clone()),
        None => {
            let now = opts.clock.now();
            (new_run_id(now), timeline::stamp(now))
        }
    };
    let started = Instant::now();
    let meta = RunMeta {
        id: run_id.clone(),
        started_at,
        drill: opts.drill,
        dry_run: false,
    };
    let drill_inputs = if opts.drill {
        playbook.drill.as_ref().map(|d| &d.inputs)
    } else {
        None
    };
    let inputs = context::resolve_inputs(playbook, incident, &meta, &opts.inputs, drill_inputs)?;
    let _lock = crate::lock::acquire(&opts.state_dir, &incident.id, &playbook.name, &run_id)?;

    let credentials = incident.credentials();
    let key_secret = opts.timeline_key.as_ref().map(|k| k.secret());
    let redactor = Redactor::new(opts.secrets.values().chain(&credentials).chain(key_secret));
    let path = run_dir(&opts.state_dir, &run_id).join(timeline::FILE_NAME);
    let opening: timeline::Payload = match &opts.resume {
        // Appending after a torn line would fuse the first new event into it.
        Some(r) => {
            let torn_tail_bytes = timeline::remove_torn_tail(&path)?;
            resume::event(r, playbook, &opts.actor, torn_tail_bytes).into()
        }
        None => timeline::RunStarted {
            playbook: playbook.name.clone(),
            title: playbook.title.clone(),
            owner: playbook.owner.clone(),
            provenance: playbook.provenance.clone(),
            incident: incident.to_template_value(),
            inputs: inputs.clone(),
            drill: opts.drill,
            concurrency: opts.concurrency,
            actor: opts.actor.clone(),
            steps: playbook.steps.iter().map(|s| s.id.clone()).collect(),
            report: playbook
                .steps
                .iter()
                .filter(|s| s.report)
                .map(|s| s.id.clone())
                .collect(),
        }
        .into(),
    };
    let writer = timeline::Writer::open_keyed(
        &path,
        &run_id,
        &incident.id,
        redactor.clone(),
        opts.timeline_key.clone(),
    )?
    .with_clock(opts.clock);
    let keyed = writer.keyed();
    let recorder = Arc::new(Recorder {
        writer: Mutex::new(writer),
        path: path.clone(),
        observer: Arc::new(RedactingObserver {
            inner: observer,
            redactor: redactor.clone(),
        }),
        failure: Mutex::new(None),
        budget: budget::Budget::default(),
        broken: watch::channel(false).0,
        redactor: redactor.clone(),
    });
    let head = recorder.clone();
    let base = Arc::new(ContextBase {
        incident: incident.to_template_value(),
        inputs,
        run: meta.clone(),
        playbook: context::playbook_value(playbook),
        secrets: opts.secrets.clone(),
        clock: opts.clock,
        redactor: redactor.clone(),
        fixed: std::sync::OnceLock::new(),
        timeline_head: Some(Arc::new(move || head.head())),
    });
    recorder.emit(opening);
    if let Some(w) = &opts.match_warning {
        recorder.emit(timeline::Warning { message: w.clone() });
    }

    let approvals = confirmer.waits().then(|| {
        Arc::new(approval::Approvals {
            state_dir: opts.state_dir.clone(),
            playbook: playbook.name.clone(),
            notify: playbook.approvals.clone(),
        })
    });
    let sched = Scheduler {
        playbook,
        base,
        recorder: recorder.clone(),
        confirmer,
        approvals,
        opts: &opts,
        clients: Arc::new(http::Clients::new(redactor.clone())),
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
        .any(|(r, s)| r.status.is_failure() && !s.continue_on_error);
    let status = if cancelled_by.is_some() {
        RunStatus::Cancelled
    } else if failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    if let Some(reason) = &cancelled_by {
        recorder.emit(timeline::RunCancelled {
            signal: reason.clone(),
        });
    }
    let duration = started.elapsed();
    recorder.emit(timeline::RunFinished {
        status,
        duration_ms: duration.as_millis() as u64,
    });
    if let Ok(w) = recorder.writer.lock() {
        w.sync();
    }
    if let Some(failed) = recorder.failure.lock().ok().and_then(|f| f.clone()) {
        return Err(RecordLost { run_id, failed }.into());
    }
    let timeline_hash = recorder.head();
    Ok(RunResult {
        run_id,
        status,
        steps: reports,
        timeline: path,
        timeline_hash,
        keyed,
        duration,
        cancelled_by,
    })
}

/// Reads a run's timeline, for commands that show it. A run id is one path
/// component: `../elsewhere` must not reach (and append to) a file outside
/// the state directory.
pub fn timeline_path(state_dir: &Path, run_id: &str) -> anyhow::Result<PathBuf> {
    let one_component = matches!(
        Path::new(run_id).components().collect::<Vec<_>>().as_slice(),
        [std::path::Component::Normal(c)] if *c == std::ffi::OsStr::new(run_id)
    );
    let p = run_dir(state_dir, run_id).join(timeline::FILE_NAME);
    if !one_component || !p.is_file() {
        anyhow::bail!(
            "no run `{run_id}` in `{}`; `irctl runs` lists them",
            state_dir.display()
        );
    }
    Ok(p)
}

#[allow(unused)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<StepTask>();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl Observer for Quiet {
        fn on_event(&self, _: &Event) {}
    }
    impl Confirmer for Quiet {
        fn confirm(&self, _: &str, _: &str) -> Option<bool> {
            None
        }
    }

    #[tokio::test]
    async fn a_fixed_clock_stamps_the_run_id_and_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.yaml");
        std::fs::write(
            &file,
            "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\nsteps:\n  - id: look\n    shell: \"true\"\n",
        )
        .unwrap();
        let set = crate::playbook::load::load_paths(&[file]).unwrap();
        let playbook = set.get("t").unwrap();
        let incident = crate::incident::from_flags(
            &[("app".into(), "t".into())],
            None,
            None,
            crate::clock::Clock::System,
        );
        let at = chrono::DateTime::parse_from_rfc3339("2001-02-03T04:05:06Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let opts = RunOptions {
            state_dir: dir.path().join("state"),
            concurrency: 1,
            yes: false,
            verbose: false,
            drill: false,
            executor: None,
            inputs: Vec::new(),
            secrets: BTreeMap::new(),
            match_warning: None,
            actor: "test".into(),
            deadline: None,
            resume: None,
            clock: Clock::Fixed(at),
            timeline_key: None,
        };
        let (_tx, cancel) = watch::channel(None);
        let result = run(
            playbook,
            &incident,
            opts,
            Arc::new(Quiet),
            Arc::new(Quiet),
            cancel,
        )
        .await
        .unwrap();
        assert_eq!(result.status, RunStatus::Succeeded);
        assert!(
            result.run_id.starts_with("20010203T040506Z-"),
            "{}",
            result.run_id
        );
        let events = timeline::read(&result.timeline).unwrap().events;
        assert!(events.len() >= 4, "{events:?}");
        for e in &events {
            assert_eq!(e.ts, "2001-02-03T04:05:06.000Z", "{e:?}");
        }
    }
}
