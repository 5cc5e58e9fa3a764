//! One step's execution: confirmation, rendering, attempts with retries
//! and backoff, and its timeline events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use super::*;

pub(super) struct StepTask {
    pub(super) index: usize,
    pub(super) playbook_step: crate::playbook::Step,
    pub(super) base: Arc<ContextBase>,
    pub(super) outputs: serde_json::Map<String, serde_json::Value>,
    pub(super) recorder: Arc<Recorder>,
    pub(super) confirmer: Arc<dyn Confirmer>,
    pub(super) confirm_lock: Arc<tokio::sync::Mutex<()>>,
    pub(super) clients: Arc<http::Clients>,
    pub(super) cancel: watch::Receiver<Option<String>>,
    pub(super) yes: bool,
    pub(super) drill: bool,
    pub(super) executor: Option<Arc<dyn Executor>>,
    pub(super) drill_notify: Option<crate::playbook::model::RawDrillNotify>,
    pub(super) verbose: bool,
    pub(super) actor: String,
    pub(super) semaphore: Arc<Semaphore>,
    /// Set when a question nobody can answer here waits for `irctl approve`.
    pub(super) approvals: Option<Arc<super::approval::Approvals>>,
}

impl StepTask {
    pub(super) async fn run(self) -> (usize, StepReport, StepOutput) {
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
        // Ending before any attempt (a template error, a declined or
        // unanswerable confirmation) records and reports the same way.
        let fail_before_attempt = |msg: String| {
            self.recorder.emit(timeline::StepFinished {
                step: step.id.clone(),
                status: StepStatus::Failed,
                attempts: 0,
                duration_ms: 0,
                output: None,
                error: Some(msg.clone()),
                continue_on_error: None,
            });
            finish(
                StepStatus::Failed,
                0,
                Some(msg),
                StepOutput::empty(StepStatus::Failed),
            )
        };

        let prepared =
            match render::prepare(step, &self.base, &self.outputs, self.drill).and_then(|p| {
                match &self.drill_notify {
                    Some(o) => render::reroute_for_drill(p, o, &self.base, &self.outputs),
                    None => Ok(p),
                }
            }) {
                Ok(p) => p,
                Err(e) => {
                    return fail_before_attempt(format!(
                        "template error in step `{}`: {e}",
                        step.id
                    ));
                }
            };

        // A simulated step does nothing, so there is nothing to approve: an
        // unattended drill must not fail closed on remediation it never runs.
        if self.drill && step.simulate_in_drill {
            self.recorder.emit(timeline::StepSimulated {
                step: step.id.clone(),
                action: prepared.describe(),
            });
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
                Some(Answered::by(&self.actor, true, "--yes"))
            } else {
                let asked = {
                    let _guard = self.confirm_lock.lock().await;
                    let confirmer = self.confirmer.clone();
                    // A person sees the question, so it gets the redacted form.
                    let (s, q) = (step.id.clone(), self.recorder.redactor.redact(question));
                    tokio::task::spawn_blocking(move || confirmer.confirm(&s, &q))
                        .await
                        .ok()
                        .flatten()
                };
                match (asked, &self.approvals) {
                    (Some(a), _) => Some(Answered::by(&self.actor, a, "tty")),
                    (None, Some(approvals)) => {
                        match self.await_approval(approvals, question).await {
                            Err(e) => return fail_before_attempt(e),
                            Ok(super::approval::Waited::Answered(a)) => Some(Answered {
                                approved: a.approved,
                                by: a.by,
                                via: a.via,
                                reason: a.reason,
                            }),
                            Ok(super::approval::Waited::Resolved(at)) => {
                                let reason = format!(
                                    "approval cancelled: the incident resolved at {at} while the step waited"
                                );
                                self.recorder.emit(timeline::StepSkipped {
                                    step: step.id.clone(),
                                    status: StepStatus::Skipped,
                                    reason: reason.clone(),
                                });
                                let out = StepOutput::empty(StepStatus::Skipped);
                                return finish(StepStatus::Skipped, 0, Some(reason), out);
                            }
                            Ok(super::approval::Waited::Cancelled(why)) => {
                                let reason =
                                    format!("run cancelled ({why}) while waiting for approval");
                                self.recorder.emit(timeline::StepSkipped {
                                    step: step.id.clone(),
                                    status: StepStatus::Cancelled,
                                    reason: reason.clone(),
                                });
                                let out = StepOutput::empty(StepStatus::Cancelled);
                                return finish(StepStatus::Cancelled, 0, Some(reason), out);
                            }
                        }
                    }
                    (None, None) => None,
                }
            };
            match answer {
                Some(answered) => {
                    self.recorder.emit(timeline::Confirmation {
                        step: step.id.clone(),
                        question: question.clone(),
                        answer: if answered.approved { "yes" } else { "no" }.into(),
                        by: answered.by,
                        via: answered.via.clone(),
                        reason: answered.reason,
                    });
                    if !answered.approved {
                        let why = if answered.via.starts_with("no answer within") {
                            format!("confirmation declined: {}", answered.via)
                        } else {
                            "confirmation declined".to_string()
                        };
                        return fail_before_attempt(why);
                    }
                }
                None => {
                    return fail_before_attempt(
                        "confirmation required: no terminal to ask and `--yes` not given"
                            .to_string(),
                    );
                }
            }
        }

        let policy = step.retry;
        let mut attempt_no = 0u32;
        loop {
            attempt_no += 1;
            self.recorder.emit(timeline::StepStarted {
                step: step.id.clone(),
                attempt: attempt_no,
                kind: match step.kind() {
                    crate::playbook::ActionKind::Shell => "shell",
                    crate::playbook::ActionKind::Http => "http",
                    crate::playbook::ActionKind::Notify => "notify",
                }
                .into(),
                action: prepared.describe(),
            });
            // A start the record does not show must not happen.
            if self.recorder.is_broken() {
                let msg = format!("not started: {RECORD_LOST}");
                let out = StepOutput::empty(StepStatus::Cancelled);
                return finish(StepStatus::Cancelled, attempt_no - 1, Some(msg), out);
            }
            let observer: Option<Arc<dyn Observer>> = if self.verbose {
                Some(self.recorder.observer.clone())
            } else {
                None
            };
            let response = match &self.executor {
                Some(executor) => executor.execute(step, attempt_no, &prepared.action),
                None => {
                    render::execute(
                        &prepared.action,
                        step,
                        &format!("{}/{}/{attempt_no}", self.base.run.id, step.id),
                        &self.clients,
                        self.cancel.clone(),
                        observer,
                        &self.recorder.redactor,
                    )
                    .await
                }
            };
            let attempt = judge::judge(&prepared.action, response, &self.recorder.redactor);
            render::announce(&self.recorder, step, &prepared.action, &attempt);
            let cancelled = self.cancel.borrow().is_some();
            let more = attempt_no < policy.attempts
                && attempt.status != StepStatus::Succeeded
                && attempt.retryable
                && !cancelled;
            if more {
                let delay = backoff(policy, attempt_no, attempt.retry_after, step.timeout);
                self.recorder.emit(timeline::StepRetrying {
                    step: step.id.clone(),
                    attempt: attempt_no,
                    status: attempt.status,
                    error: attempt.error.clone(),
                    exit_code: attempt.output.exit_code,
                    http_status: attempt.output.http_status,
                    delay_ms: delay.as_millis() as u64,
                });
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
                    self.recorder.emit(timeline::StepFinished {
                        step: step.id.clone(),
                        status: StepStatus::Cancelled,
                        attempts: attempt_no,
                        duration_ms: started.elapsed().as_millis() as u64,
                        output: None,
                        error: Some(msg.clone()),
                        continue_on_error: None,
                    });
                    return finish(StepStatus::Cancelled, attempt_no, Some(msg), attempt.output);
                }
                continue;
            }
            let mut attempt = attempt;
            self.recorder
                .budget
                .charge(&mut attempt.output, &self.recorder.redactor);
            self.recorder.emit(timeline::StepFinished {
                step: step.id.clone(),
                status: attempt.status,
                attempts: attempt_no,
                duration_ms: started.elapsed().as_millis() as u64,
                output: Some(timeline::Captured {
                    exit_code: attempt.output.exit_code,
                    http_status: attempt.output.http_status,
                    stdout: attempt.output.stdout.clone(),
                    stderr: attempt.output.stderr.clone(),
                    body: Some(attempt.output.body.clone()).filter(|b| !b.is_empty()),
                }),
                error: attempt.error.clone(),
                continue_on_error: Some(
                    step.continue_on_error && attempt.status != StepStatus::Succeeded,
                ),
            });
            return finish(
                attempt.status,
                attempt_no,
                attempt.error.clone(),
                attempt.output,
            );
        }
    }
}

/// Who answered a `confirm`, and how.
struct Answered {
    approved: bool,
    by: String,
    via: String,
    reason: Option<String>,
}

impl Answered {
    fn by(actor: &str, approved: bool, via: &str) -> Answered {
        Answered {
            approved,
            by: actor.to_string(),
            via: via.to_string(),
            reason: None,
        }
    }
}

/// Exponential backoff with jitter, capped at `max_backoff`. A server's
/// `Retry-After` wins when longer, up to the playbook's bounds: never past
/// `max_backoff`, nor past the step's `timeout` (a server cannot park a
/// step for an hour that the playbook gives ten seconds).
pub(super) fn backoff(
    policy: crate::playbook::RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    timeout: Duration,
) -> Duration {
    let exp = policy
        .backoff
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
    let capped = exp.min(policy.max_backoff);
    // Up to 20% jitter down, so retries from many runs do not synchronise.
    let unit = f64::from(getrandom::u32().unwrap_or(0)) / f64::from(u32::MAX);
    let jitter = capped.mul_f64(unit * 0.2);
    let delay = capped.saturating_sub(jitter);
    match retry_after {
        Some(ra) => ra.min(policy.max_backoff).min(timeout).max(delay),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::RetryPolicy;

    fn policy(backoff_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(max_ms),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    /// Jitter takes off up to 20%, never adds.
    fn within(d: Duration, full_ms: u64) -> bool {
        let full = Duration::from_millis(full_ms);
        d <= full && d >= full.mul_f64(0.8)
    }

    #[test]
    fn backoff_doubles_per_attempt_with_jitter_below() {
        let p = policy(1000, 60_000);
        for (attempt, full) in [(1, 1000), (2, 2000), (3, 4000), (6, 32_000)] {
            for _ in 0..50 {
                let d = backoff(p, attempt, None, MINUTE);
                assert!(within(d, full), "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let p = policy(1000, 60_000);
        for attempt in [7, 17, 40, u32::MAX] {
            let d = backoff(p, attempt, None, MINUTE);
            assert!(within(d, 60_000), "attempt {attempt}: {d:?}");
        }
        let huge = policy(u64::MAX / 4, u64::MAX / 2);
        assert!(backoff(huge, u32::MAX, None, MINUTE) <= huge.max_backoff);
        assert_eq!(backoff(policy(0, 60_000), 3, None, MINUTE), Duration::ZERO);
    }

    #[test]
    fn retry_after_wins_when_longer_than_the_backoff() {
        let p = policy(1000, 60_000);
        assert_eq!(
            backoff(p, 1, Some(Duration::from_secs(10)), MINUTE),
            Duration::from_secs(10)
        );
        let d = backoff(p, 3, Some(Duration::from_millis(100)), MINUTE);
        assert!(within(d, 4000), "{d:?}");
    }

    #[test]
    fn retry_after_never_exceeds_max_backoff_nor_the_timeout() {
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            backoff(policy(1000, 10_000), 1, hour, MINUTE),
            Duration::from_secs(10)
        );
        assert_eq!(backoff(policy(1000, 600_000), 1, hour, MINUTE), MINUTE);
        assert_eq!(
            backoff(policy(100, 1000), 1, Some(Duration::from_secs(240)), MINUTE),
            Duration::from_secs(1)
        );
    }
}
