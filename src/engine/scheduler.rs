//! The scheduler: which steps are ready, which are skipped and why, and
//! spawning the rest under the concurrency limit and the run's deadline.

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
    pub(super) opts: &'a RunOptions,
    pub(super) clients: Arc<http::Clients>,
    pub(super) confirm_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Why a ready step should not run, if it should not.
pub(super) fn trigger_skip(
    trigger: Trigger,
    needs: &[(StepId, StepStatus, bool)],
) -> Option<String> {
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
    pub(super) async fn drive(
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
            resume::seed(r, steps, &mut state, &mut reports, &mut outputs);
        }
        let semaphore = Arc::new(Semaphore::new(self.opts.concurrency.max(1)));
        let mut tasks: JoinSet<(usize, StepReport, StepOutput)> = JoinSet::new();
        let mut running = 0usize;
        // Internal cancel channel: the outer signal or the run timeout feeds it.
        let (stop_tx, stop_rx) = watch::channel::<Option<String>>(None);
        let deadline = run_timeout.map(|d| tokio::time::Instant::now() + d);
        let mut cancelled_by: Option<String> = None;
        // A drill's notification overrides, the same for every step.
        let drill_notify = if self.opts.drill {
            self.playbook.drill.as_ref().and_then(|d| d.notify.as_ref())
        } else {
            None
        };

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
                                steps[j].continue_on_error,
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
                    } else if let Some(reason) = trigger_skip(step.trigger, &need_states) {
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
                        state[i] = State::Done(status);
                        reports[i].status = status;
                        reports[i].reason = Some(reason);
                        outputs.insert(
                            step.id.to_string(),
                            serde_json::to_value(StepOutput::empty(status)).unwrap_or_default(),
                        );
                        continue;
                    }
                    state[i] = State::Running;
                    running += 1;
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
                            outputs.insert(steps[i].id.to_string(), serde_json::to_value(&output).unwrap_or_default());
                            reports[i] = report;
                        }
                        Err(e) => {
                            // A panicking task must not take the run down with it unrecorded.
                            self.recorder.emit(timeline::EngineError { error: e.to_string() });
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

    fn needs(list: &[(&str, StepStatus, bool)]) -> Vec<(StepId, StepStatus, bool)> {
        list.iter()
            .map(|(id, st, tolerated)| (StepId::from(*id), *st, *tolerated))
            .collect()
    }

    const EVERY_STATUS: [StepStatus; 6] = [
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::TimedOut,
        StepStatus::Cancelled,
        StepStatus::Skipped,
        StepStatus::Simulated,
    ];

    #[test]
    fn always_runs_whatever_happened() {
        assert_eq!(trigger_skip(Trigger::Always, &[]), None);
        for st in EVERY_STATUS {
            assert_eq!(
                trigger_skip(Trigger::Always, &needs(&[("a", st, false)])),
                None
            );
        }
    }

    #[test]
    fn on_success_runs_after_successes_simulations_and_tolerated_failures() {
        assert_eq!(trigger_skip(Trigger::OnSuccess, &[]), None);
        let fine = needs(&[
            ("a", StepStatus::Succeeded, false),
            ("b", StepStatus::Simulated, false),
            ("c", StepStatus::Failed, true),
            ("d", StepStatus::TimedOut, true),
            ("e", StepStatus::Cancelled, true),
        ]);
        assert_eq!(trigger_skip(Trigger::OnSuccess, &fine), None);
    }

    #[test]
    fn on_success_names_the_first_need_that_did_not_succeed() {
        let cases = [
            (StepStatus::Failed, "need b failed"),
            (StepStatus::TimedOut, "need b timed out"),
            (StepStatus::Cancelled, "need b was cancelled"),
            (StepStatus::Skipped, "need b was skipped"),
        ];
        for (st, reason) in cases {
            let list = needs(&[
                ("a", StepStatus::Succeeded, false),
                ("b", st, false),
                ("c", StepStatus::Failed, false),
            ]);
            assert_eq!(
                trigger_skip(Trigger::OnSuccess, &list).as_deref(),
                Some(reason)
            );
        }
        // A skipped need is not a failure, so tolerating failures does not cover it.
        let skipped = needs(&[("a", StepStatus::Skipped, true)]);
        assert_eq!(
            trigger_skip(Trigger::OnSuccess, &skipped).as_deref(),
            Some("need a was skipped")
        );
    }

    #[test]
    fn on_failure_runs_when_any_need_failed_timed_out_or_was_cancelled() {
        for st in [
            StepStatus::Failed,
            StepStatus::TimedOut,
            StepStatus::Cancelled,
        ] {
            for tolerated in [false, true] {
                let list = needs(&[("a", StepStatus::Succeeded, false), ("b", st, tolerated)]);
                assert_eq!(trigger_skip(Trigger::OnFailure, &list), None);
            }
        }
    }

    #[test]
    fn on_failure_is_skipped_when_nothing_failed() {
        let list = needs(&[
            ("a", StepStatus::Succeeded, false),
            ("b", StepStatus::Skipped, false),
            ("c", StepStatus::Simulated, false),
        ]);
        assert_eq!(
            trigger_skip(Trigger::OnFailure, &list).as_deref(),
            Some("trigger on_failure: a, b, c succeeded")
        );
        assert_eq!(
            trigger_skip(Trigger::OnFailure, &[]).as_deref(),
            Some("trigger on_failure without needs")
        );
    }
}
