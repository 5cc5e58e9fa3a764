//! The scheduler: which steps are ready, which are skipped and why, and
//! spawning the rest under the concurrency limit and the run's deadline.
//!
//! Triggers look at a step's ancestors, the way CI users know them from
//! GitHub Actions and GitLab: `on_success` runs only when nothing upstream
//! failed, `on_failure` runs when something upstream failed (or was
//! cancelled), `always` runs regardless. Each finished step carries a
//! [`Fate`]: its status and the nearest failure in itself or its ancestors,
//! so deciding a step is a look at its direct needs only. Readiness is kept
//! as a count of unfinished needs per step and a queue of ready steps, so a
//! run costs time linear in its steps and edges.
//!
//! The trigger rules and [`Fate`] are `trigger.rs`; the readiness count is
//! `board.rs`; spawning, cancelling and the deadline are here.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::*;

mod board;
mod trigger;

use board::Board;
pub(super) use trigger::Fate;
use trigger::trigger_skip;

pub(super) struct Scheduler<'a> {
    pub(super) playbook: &'a Playbook,
    pub(super) base: Arc<ContextBase>,
    pub(super) recorder: Arc<Recorder>,
    pub(super) confirmer: Arc<dyn Confirmer>,
    pub(super) approvals: Option<Arc<super::approval::Approvals>>,
    pub(super) opts: &'a RunOptions,
    pub(super) clients: Arc<http::Clients>,
    pub(super) confirm_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Scheduler<'_> {
    pub(super) async fn drive(
        &self,
        mut cancel: watch::Receiver<Option<String>>,
        run_timeout: Option<Duration>,
    ) -> (Option<String>, Vec<StepReport>) {
        let steps = &self.playbook.steps;
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let mut fates = vec![None; steps.len()];
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
            resume::seed(r, steps, &mut fates, &mut reports, &mut outputs);
        }
        let mut board = Board::new(steps, fates);
        let semaphore = Arc::new(Semaphore::new(self.opts.concurrency.max(1)));
        let mut tasks: JoinSet<(usize, StepReport, StepOutput)> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
        // Internal cancel channel: the outer signal or the run timeout feeds
        // it. Steps started after a deadline (escalations) get a fresh one,
        // so only a signal stops them.
        let (mut stop_tx, mut stop_rx) = watch::channel::<Option<String>>(None);
        let deadline = run_timeout.map(|d| tokio::time::Instant::now() + d);
        // A deadline cancels what runs and what would run on success, but
        // `on_failure` and `always` steps still start; a signal stops everything.
        let mut deadline_hit: Option<String> = None;
        let mut signalled: Option<String> = None;
        let mut record_lost = self.recorder.broken.subscribe();
        // A drill's notification overrides, the same for every step.
        let drill_notify = if self.opts.drill {
            self.playbook.drill.as_ref().and_then(|d| d.notify.as_ref())
        } else {
            None
        };

        loop {
            // A write that failed before this point (even `run_started`'s)
            // stops the run before anything else starts.
            if signalled.is_none() && self.recorder.is_broken() {
                signalled = Some(RECORD_LOST.to_string());
                let _ = stop_tx.send(signalled.clone());
            }
            if !board.ready.is_empty() {
                self.learn_resolution();
            }
            // Start or skip every ready step; skipping can make more steps ready.
            while let Some(Reverse(i)) = board.ready.pop() {
                let step = &steps[i];
                let stopped_by = signalled.as_ref().or(deadline_hit
                    .as_ref()
                    .filter(|_| step.trigger == Trigger::OnSuccess));
                let skip = if let Some(reason) = stopped_by {
                    Some((
                        StepStatus::Cancelled,
                        format!("run cancelled ({reason}) before it started"),
                    ))
                } else if let Some(reason) =
                    trigger_skip(step.trigger, &step.needs, &board.fates, &ids)
                {
                    Some((StepStatus::Skipped, reason))
                } else if let Some(when) = &step.when {
                    let ctx = self.base.value(
                        &visible_outputs(&outputs, step, steps),
                        crate::template::Sink::Text,
                    );
                    match crate::template::eval_bool(when, &ctx) {
                        Ok(true) => None,
                        Ok(false) => Some((
                            StepStatus::Skipped,
                            format!("when was false: {}", when.trim()),
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
                        self.recorder.emit(timeline::StepFinished {
                            step: step.id.clone(),
                            status,
                            attempts: 0,
                            duration_ms: 0,
                            output: None,
                            error: Some(reason.clone()),
                            continue_on_error: None,
                        });
                    } else {
                        self.recorder.emit(timeline::StepSkipped {
                            step: step.id.clone(),
                            status,
                            reason: reason.clone(),
                        });
                    }
                    reports[i].status = status;
                    reports[i].reason = Some(reason);
                    outputs.insert(
                        step.id.to_string(),
                        serde_json::to_value(StepOutput::empty(status)).unwrap_or_default(),
                    );
                    board.settle(steps, i, status);
                    continue;
                }
                let task = StepTask {
                    index: i,
                    playbook_step: step.clone(),
                    base: self.base.clone(),
                    outputs: if drill_notify.is_some() {
                        // Drill overrides are templates outside the step.
                        outputs.clone()
                    } else {
                        visible_outputs(&outputs, step, steps)
                    },
                    recorder: self.recorder.clone(),
                    confirmer: self.confirmer.clone(),
                    confirm_lock: self.confirm_lock.clone(),
                    clients: self.clients.clone(),
                    cancel: stop_rx.clone(),
                    yes: self.opts.yes,
                    drill: self.opts.drill,
                    executor: self.opts.executor.clone(),
                    drill_notify: drill_notify.cloned(),
                    verbose: self.opts.verbose,
                    actor: self.opts.actor.clone(),
                    semaphore: semaphore.clone(),
                    approvals: self.approvals.clone(),
                };
                running.insert(tasks.spawn(task.run()).id(), i);
            }
            if running.is_empty() {
                break;
            }
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
            let waiting_for_deadline =
                deadline.is_some() && deadline_hit.is_none() && signalled.is_none();
            tokio::select! {
                joined = tasks.join_next_with_id() => {
                    let Some(joined) = joined else { break };
                    match joined {
                        Ok((id, (i, report, output))) => {
                            running.remove(&id);
                            outputs.insert(steps[i].id.to_string(), serde_json::to_value(&output).unwrap_or_default());
                            let status = report.status;
                            reports[i] = report;
                            board.settle(steps, i, status);
                        }
                        Err(e) => {
                            // A panicking task must not take the run down with it unrecorded.
                            self.recorder.emit(timeline::EngineError { error: e.to_string() });
                            if let Some(i) = running.remove(&e.id()) {
                                reports[i].status = StepStatus::Failed;
                                reports[i].reason = Some("internal error".into());
                                board.settle(steps, i, StepStatus::Failed);
                            }
                        }
                    }
                }
                // A timeline that cannot be written stops the run like a signal.
                _ = record_lost.wait_for(|broken| *broken), if signalled.is_none() => {
                    signalled = Some(RECORD_LOST.to_string());
                    let _ = stop_tx.send(signalled.clone());
                }
                reason = shell::wait_cancel(&mut cancel), if signalled.is_none() => {
                    let reason = self.cancel_reason(reason);
                    signalled = Some(reason.clone());
                    let _ = stop_tx.send(Some(reason));
                }
                _ = tokio::time::sleep_until(sleep_until), if waiting_for_deadline => {
                    let what = if self.opts.drill && self.opts.deadline == run_timeout { "drill max_duration" } else { "run timeout" };
                    let reason = format!("{what} of {} reached", crate::duration::format(run_timeout.unwrap_or_default()));
                    deadline_hit = Some(reason.clone());
                    let _ = stop_tx.send(Some(reason));
                    (stop_tx, stop_rx) = watch::channel(None);
                }
            }
        }
        (deadline_hit.or(signalled), reports)
    }
}

impl Scheduler<'_> {
    /// Looks for a resolution of the incident that arrived while the run is
    /// in flight (see [`crate::lifecycle::resolution`]): once found, steps
    /// not yet started see `incident.resolved`, and the timeline says so.
    fn learn_resolution(&self) {
        if self.opts.drill || self.base.is_resolved() {
            return;
        }
        if let Some(r) = crate::lifecycle::resolution(&self.opts.state_dir, &self.base.run.id)
            && self.base.resolve(&r.at)
        {
            self.recorder.emit(timeline::Warning {
                message: format!(
                    "the incident resolved at {} (recorded by {} from {}) while this run was in flight; steps not yet started see `incident.resolved`",
                    r.at, r.by, r.source
                ),
            });
        }
    }

    /// A SIGTERM sent because the incident resolved (`cancel_on_resolve`)
    /// is recorded as that.
    fn cancel_reason(&self, signal: String) -> String {
        if signal != "SIGTERM" || !self.playbook.cancel_on_resolve {
            return signal;
        }
        match crate::lifecycle::resolution(&self.opts.state_dir, &self.base.run.id) {
            Some(r) => format!(
                "{RESOLVED_CANCEL} at {} (cancel_on_resolve; SIGTERM from {})",
                r.at, r.by
            ),
            None => signal,
        }
    }
}

/// The outputs `step` may read: the ones its templates name, or all of them
/// when a template reads `steps` as a whole. Handing every step every earlier
/// output made a long run quadratic in time and in memory (outputs are up to
/// a mebibyte each).
pub(super) fn visible_outputs(
    outputs: &serde_json::Map<String, serde_json::Value>,
    step: &crate::playbook::Step,
    steps: &[crate::playbook::Step],
) -> serde_json::Map<String, serde_json::Value> {
    match &step.reads {
        None => outputs.clone(),
        Some(reads) => reads
            .iter()
            .filter_map(|&i| {
                let id = &steps.get(i)?.id;
                Some((id.to_string(), outputs.get(id.as_str())?.clone()))
            })
            .collect(),
    }
}
