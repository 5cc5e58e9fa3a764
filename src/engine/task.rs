//! One step's execution: confirmation, rendering, attempts with retries
//! and backoff, and its timeline events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
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
            self.recorder.emit(
                "step_finished",
                json!({ "step": step.id, "status": "failed", "attempts": 0, "duration_ms": 0, "error": msg }),
            );
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
                Err(e) => return fail_before_attempt(format!("template error: {e}")),
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
                        return fail_before_attempt("confirmation declined".to_string());
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
pub(super) fn backoff(
    policy: crate::playbook::RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
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
        Some(ra) => ra
            .min(policy.max_backoff.max(ra.min(Duration::from_secs(300))))
            .max(delay),
        None => delay,
    }
}
