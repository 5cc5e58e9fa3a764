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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::*;

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

/// What a finished step means to the triggers of the steps after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fate {
    /// How it ended.
    pub(super) status: StepStatus,
    /// The nearest failure among the step and its ancestors that
    /// `continue_on_error` does not cover (a step index).
    pub(super) failed: Option<usize>,
    /// The nearest failure among the step and its ancestors that
    /// `continue_on_error` covers (a step index).
    pub(super) tolerated: Option<usize>,
}

impl Fate {
    /// The fate of step `index`, which ended with `status`, given its needs' fates.
    pub(super) fn of(
        index: usize,
        status: StepStatus,
        continue_on_error: bool,
        needs: &[usize],
        fates: &[Option<Fate>],
    ) -> Fate {
        let own = status.is_failure().then_some(index);
        let inherited = |pick: fn(&Fate) -> Option<usize>| {
            needs
                .iter()
                .find_map(|&j| fates.get(j).copied().flatten().as_ref().and_then(pick))
        };
        let (failed, tolerated) = if continue_on_error {
            (None, own)
        } else {
            (own, None)
        };
        Fate {
            status,
            failed: failed.or_else(|| inherited(|f| f.failed)),
            tolerated: tolerated.or_else(|| inherited(|f| f.tolerated)),
        }
    }
}

/// How a failed status reads after a step id.
fn failed_words(status: StepStatus) -> &'static str {
    match status {
        StepStatus::TimedOut => "timed out",
        StepStatus::Cancelled => "was cancelled",
        _ => "failed",
    }
}

/// Why a step with `trigger` and `needs` (all finished, their fates in
/// `fates`) should not run, if it should not; `ids` names steps by index.
///
/// A failure under `continue_on_error` is tolerated: it does not hold back
/// `on_success` steps and does not spread to descendants; only an
/// `on_failure` step that names it in `needs` reacts to it. A step skipped
/// by its `when` (or by a trigger that did not fire) is not a failure: it
/// does not set off `on_failure`, and `on_success` steps that need it are
/// skipped too, since there is nothing to build on.
pub(super) fn trigger_skip(
    trigger: Trigger,
    needs: &[usize],
    fates: &[Option<Fate>],
    ids: &[&str],
) -> Option<String> {
    let fate = |j: usize| fates.get(j).copied().flatten();
    let id = |j: usize| ids.get(j).copied().unwrap_or("?");
    match trigger {
        Trigger::Always => None,
        Trigger::OnSuccess => needs.iter().find_map(|&j| {
            // The first need that is not fine says why, and where a failure came from.
            let f = fate(j)?;
            let cause = |up: usize| {
                let status = fate(up).map_or(StepStatus::Failed, |u| u.status);
                format!("{} {}", id(up), failed_words(status))
            };
            match f.failed {
                Some(up) if up == j => Some(format!("need {}", cause(j))),
                Some(up) if f.status == StepStatus::Skipped => {
                    Some(format!("need {} was skipped ({})", id(j), cause(up)))
                }
                Some(up) => Some(format!("{} before need {}", cause(up), id(j))),
                None if f.status == StepStatus::Skipped => {
                    Some(format!("need {} was skipped", id(j)))
                }
                None => None,
            }
        }),
        Trigger::OnFailure => {
            // With no untolerated failure upstream, a failing need is a tolerated one.
            let tolerated_need = needs
                .iter()
                .any(|&j| fate(j).is_some_and(|f| f.status.is_failure()));
            let failed = needs
                .iter()
                .any(|&j| fate(j).is_some_and(|f| f.failed.is_some()));
            if failed || tolerated_need {
                None
            } else if needs.is_empty() {
                Some("trigger on_failure without needs".to_string())
            } else if let Some(t) = needs.iter().find_map(|&j| fate(j)?.tolerated) {
                Some(format!(
                    "trigger on_failure: nothing before it failed except {}, which has continue_on_error",
                    id(t)
                ))
            } else {
                Some("trigger on_failure: nothing before it failed".to_string())
            }
        }
    }
}

/// Which steps are finished, which wait on how many needs, which are ready.
struct Board {
    fates: Vec<Option<Fate>>,
    remaining: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: BinaryHeap<Reverse<usize>>,
}

impl Board {
    /// The board for `steps`, some of them already finished (`fates`, a resume).
    fn new(steps: &[crate::playbook::Step], fates: Vec<Option<Fate>>) -> Board {
        let mut dependents = vec![Vec::new(); steps.len()];
        let mut remaining = vec![0; steps.len()];
        for (i, s) in steps.iter().enumerate() {
            for &j in &s.needs {
                if let Some(d) = dependents.get_mut(j) {
                    d.push(i);
                    if fates[j].is_none() {
                        remaining[i] += 1;
                    }
                }
            }
        }
        // Lowest index first keeps the timeline in file order where the DAG allows.
        let ready = (0..steps.len())
            .filter(|&i| fates[i].is_none() && remaining[i] == 0)
            .map(Reverse)
            .collect();
        Board {
            fates,
            remaining,
            dependents,
            ready,
        }
    }

    /// Records that step `i` ended with `status`, readying the steps that waited only on it.
    fn settle(&mut self, steps: &[crate::playbook::Step], i: usize, status: StepStatus) {
        let step = &steps[i];
        self.fates[i] = Some(Fate::of(
            i,
            status,
            step.continue_on_error,
            &step.needs,
            &self.fates,
        ));
        for &d in &self.dependents[i] {
            self.remaining[d] -= 1;
            if self.remaining[d] == 0 && self.fates[d].is_none() {
                self.ready.push(Reverse(d));
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    use StepStatus::{Cancelled, Failed, Simulated, Skipped, Succeeded, TimedOut};

    /// A finished DAG: each entry is (status, continue_on_error, needs), in order.
    struct Dag {
        fates: Vec<Option<Fate>>,
        ids: Vec<String>,
    }

    impl Dag {
        fn new(steps: &[(&str, StepStatus, bool, &[usize])]) -> Dag {
            let mut fates = Vec::new();
            for (i, (_, status, tolerated, needs)) in steps.iter().enumerate() {
                let fate = Fate::of(i, *status, *tolerated, needs, &fates);
                fates.push(Some(fate));
            }
            Dag {
                fates,
                ids: steps.iter().map(|(id, ..)| id.to_string()).collect(),
            }
        }

        fn skip(&self, trigger: Trigger, needs: &[usize]) -> Option<String> {
            let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
            trigger_skip(trigger, needs, &self.fates, &ids)
        }
    }

    const EVERY_STATUS: [StepStatus; 6] =
        [Succeeded, Failed, TimedOut, Cancelled, Skipped, Simulated];

    #[test]
    fn always_runs_whatever_happened() {
        let none = Dag::new(&[]);
        assert_eq!(none.skip(Trigger::Always, &[]), None);
        for st in EVERY_STATUS {
            for tolerated in [false, true] {
                let dag = Dag::new(&[("a", st, tolerated, &[]), ("b", Skipped, false, &[0])]);
                assert_eq!(dag.skip(Trigger::Always, &[0]), None);
                assert_eq!(dag.skip(Trigger::Always, &[1]), None);
            }
        }
    }

    #[test]
    fn on_success_runs_after_successes_simulations_and_tolerated_failures() {
        assert_eq!(Dag::new(&[]).skip(Trigger::OnSuccess, &[]), None);
        let dag = Dag::new(&[
            ("a", Succeeded, false, &[]),
            ("b", Simulated, false, &[]),
            ("c", Failed, true, &[]),
            ("d", TimedOut, true, &[]),
            ("e", Cancelled, true, &[]),
            // A tolerated failure does not spread to descendants either.
            ("f", Succeeded, false, &[2, 3, 4]),
        ]);
        assert_eq!(dag.skip(Trigger::OnSuccess, &[0, 1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn on_success_names_the_failure_upstream() {
        let cases = [
            (Failed, "need b failed"),
            (TimedOut, "need b timed out"),
            (Cancelled, "need b was cancelled"),
        ];
        for (st, reason) in cases {
            let dag = Dag::new(&[
                ("a", Succeeded, false, &[]),
                ("b", st, false, &[]),
                ("c", Failed, false, &[]),
            ]);
            assert_eq!(
                dag.skip(Trigger::OnSuccess, &[0, 1, 2]).as_deref(),
                Some(reason)
            );
        }
    }

    #[test]
    fn on_success_is_skipped_when_any_ancestor_failed() {
        // diagnose fails → remediate is skipped because of it → the step
        // after remediate names the real cause, not its direct need.
        let dag = Dag::new(&[
            ("diagnose", Failed, false, &[]),
            ("remediate", Skipped, false, &[0]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[1]).as_deref(),
            Some("need remediate was skipped (diagnose failed)")
        );
        // Even after an on_failure step ran and succeeded in between.
        let dag = Dag::new(&[
            ("deploy", Failed, false, &[]),
            ("rollback", Succeeded, false, &[0]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[1]).as_deref(),
            Some("deploy failed before need rollback")
        );
    }

    #[test]
    fn a_skipped_need_holds_back_on_success_but_is_no_failure() {
        // Skipped by `when` (or by an on_failure that did not fire).
        let dag = Dag::new(&[
            ("a", Succeeded, false, &[]),
            ("b", Skipped, false, &[0]),
            // An `always` step after it runs, and clears the way.
            ("c", Succeeded, false, &[1]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[0, 1]).as_deref(),
            Some("need b was skipped")
        );
        assert_eq!(dag.skip(Trigger::OnSuccess, &[2]), None);
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[1]).as_deref(),
            Some("trigger on_failure: nothing before it failed")
        );
        // Tolerating failures does not cover a skip.
        let dag = Dag::new(&[("a", Skipped, true, &[])]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[0]).as_deref(),
            Some("need a was skipped")
        );
    }

    #[test]
    fn on_failure_runs_when_any_need_failed_timed_out_or_was_cancelled() {
        for st in [Failed, TimedOut, Cancelled] {
            for tolerated in [false, true] {
                let dag = Dag::new(&[("a", Succeeded, false, &[]), ("b", st, tolerated, &[])]);
                assert_eq!(dag.skip(Trigger::OnFailure, &[0, 1]), None);
            }
        }
    }

    #[test]
    fn on_failure_runs_when_any_ancestor_failed_or_was_skipped_by_a_failure() {
        for st in [Failed, TimedOut, Cancelled] {
            // diagnose → remediate (skipped by the failure) → page_ops.
            let dag = Dag::new(&[
                ("diagnose", st, false, &[]),
                ("remediate", Skipped, false, &[0]),
            ]);
            assert_eq!(dag.skip(Trigger::OnFailure, &[1]), None);
            // diagnose → remediate (on_failure, ran) → page_ops.
            let dag = Dag::new(&[
                ("diagnose", st, false, &[]),
                ("remediate", Succeeded, false, &[0]),
            ]);
            assert_eq!(dag.skip(Trigger::OnFailure, &[1]), None);
        }
    }

    #[test]
    fn on_failure_is_skipped_when_nothing_failed() {
        let dag = Dag::new(&[
            ("a", Succeeded, false, &[]),
            ("b", Skipped, false, &[]),
            ("c", Simulated, false, &[]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[0, 1, 2]).as_deref(),
            Some("trigger on_failure: nothing before it failed")
        );
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[]).as_deref(),
            Some("trigger on_failure without needs")
        );
    }

    #[test]
    fn a_tolerated_failure_sets_off_only_the_on_failure_steps_that_need_it() {
        let dag = Dag::new(&[
            ("probe", Failed, true, &[]),
            ("summary", Succeeded, false, &[0]),
        ]);
        assert_eq!(dag.skip(Trigger::OnFailure, &[0]), None);
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[1]).as_deref(),
            Some(
                "trigger on_failure: nothing before it failed except probe, which has continue_on_error"
            )
        );
    }

    #[test]
    fn the_nearest_untolerated_failure_is_named() {
        let dag = Dag::new(&[
            ("a", Failed, true, &[]),
            ("b", Failed, false, &[0]),
            ("c", Skipped, false, &[1]),
        ]);
        let fate = dag.fates[2].unwrap();
        assert_eq!((fate.failed, fate.tolerated), (Some(1), Some(0)));
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[2]).as_deref(),
            Some("need c was skipped (b failed)")
        );
    }
}
