//! The engine's side of an unattended `confirm` ([`crate::approval`] holds
//! the files): post the request, record `approval_requested` with the exact
//! commands, send the playbook's `approvals.notify`, then wait — at a
//! bounded poll, never busy — for the answer, the step's `confirm_timeout`
//! (declined), the incident's resolution (cancelled), or the run's cancel.
//! A Slack request also carries Approve and Deny buttons ([`super::blocks`]),
//! which `irctl serve` turns into the same answer `irctl approve` gives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::action::Action;
use super::blocks;
use super::notify::{Notification, Service};
use super::*;
use crate::approval::{self, Answer, message};
use crate::playbook::model::RawNotify;
use crate::template::Sink;

/// What an unattended run knows about approvals.
pub(super) struct Approvals {
    /// Where the request and answer files go.
    pub(super) state_dir: PathBuf,
    /// The playbook's name, for the message.
    pub(super) playbook: String,
    /// `approvals.notify`.
    pub(super) notify: Option<RawNotify>,
}

/// How waiting for an answer ended.
pub(super) enum Waited {
    /// Someone answered, or the timeout declined (`by` is `irctl`).
    Answered(Answer),
    /// The incident resolved while the step waited; nobody needs the answer.
    Resolved(String),
    /// The run was cancelled.
    Cancelled(String),
}

impl StepTask {
    /// Asks for an approval of this step with `question` and waits for it;
    /// `Err` when the request cannot even be posted.
    pub(super) async fn await_approval(
        &self,
        approvals: &Approvals,
        question: &str,
    ) -> Result<Waited, String> {
        let step = &self.playbook_step;
        let run = self.base.run.id.as_str();
        let timeout = step.confirm_timeout;
        let question = self.recorder.redactor.redact(question);
        let deadline_at = self.base.clock.now()
            + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let request = approval::Request {
            nonce: approval::nonce(),
            step: step.id.to_string(),
            question: question.clone(),
            deadline: timeline::stamp(deadline_at),
            pid: std::process::id(),
            start: crate::process::own_start(),
        };
        approval::post(&approvals.state_dir, run, &request)
            .map_err(|e| format!("cannot ask for approval: {e:#}"))?;
        let (approve, deny) = approval::commands(&approvals.state_dir, run, &step.id);
        self.recorder.emit(timeline::ApprovalRequested {
            step: step.id.clone(),
            question: question.clone(),
            timeout_ms: timeout.as_millis() as u64,
            deadline: request.deadline.clone(),
            approve: approve.clone(),
            deny: deny.clone(),
        });
        if let Some(notify) = &approvals.notify {
            let ask = message::Ask {
                playbook: &approvals.playbook,
                run,
                step: &step.id,
                nonce: &request.nonce,
                question: &question,
                timeout,
                approve: &approve,
                deny: &deny,
            };
            self.send_request(notify, &ask).await;
        }
        let waited = self
            .wait_for_answer(approvals, &request.nonce, timeout)
            .await;
        approval::withdraw(&approvals.state_dir, run, &step.id);
        Ok(waited)
    }

    async fn wait_for_answer(
        &self,
        approvals: &Approvals,
        nonce: &str,
        timeout: Duration,
    ) -> Waited {
        let state = &approvals.state_dir;
        let run = self.base.run.id.as_str();
        let step = self.playbook_step.id.as_str();
        let deadline = Instant::now() + timeout;
        let mut cancel = self.cancel.clone();
        // The run itself answers at the deadline or on a resolution, under
        // the same one-answer rule: a person who answered first wins.
        let settle = |approved: bool, via: String| -> Waited {
            let own = Answer {
                approved,
                by: "irctl".into(),
                via,
                reason: None,
                at: timeline::stamp(self.base.clock.now()),
            };
            match approval::publish(state, run, step, nonce, &own) {
                Ok(Some(first)) => Waited::Answered(first),
                _ => Waited::Answered(own),
            }
        };
        loop {
            if let Some(answer) = approval::answer_of(state, run, step, nonce) {
                return Waited::Answered(answer);
            }
            if let Some(r) = crate::lifecycle::resolution(state, run) {
                let via = format!("cancelled: incident resolved at {}", r.at);
                return match settle(false, via) {
                    Waited::Answered(a) if a.by == "irctl" => Waited::Resolved(r.at),
                    other => other,
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let via = format!("no answer within {}", crate::duration::format(timeout));
                return settle(false, via);
            }
            tokio::select! {
                _ = tokio::time::sleep(left.min(approval::POLL)) => {}
                reason = shell::wait_cancel(&mut cancel) => return Waited::Cancelled(reason),
            }
        }
    }

    /// Sends the approval request to `approvals.notify`, recorded as the
    /// step's notification, or as a warning when it cannot be delivered:
    /// the request stands either way (the timeline has the commands).
    async fn send_request(&self, notify: &RawNotify, ask: &message::Ask<'_>) {
        let step = &self.playbook_step;
        let as_step = crate::playbook::Step {
            action: crate::playbook::StepAction::Notify(Box::new(notify.clone())),
            confirm: None,
            retry: crate::playbook::RetryPolicy::default(),
            ..step.clone()
        };
        let empty = serde_json::Map::new();
        let prepared = render::prepare(&as_step, &self.base, &empty, self.drill)
            .map_err(|e| e.to_string())
            .and_then(|p| self.attach(p.action, ask));
        let action = match prepared {
            Ok(action) => action,
            Err(e) => {
                self.recorder.emit(timeline::Warning {
                    message: format!("approval request for step `{}` not sent: {e}", step.id),
                });
                return;
            }
        };
        let response = render::execute(
            &action,
            &as_step,
            &format!("{}/{}/approval", self.base.run.id, step.id),
            &self.clients,
            self.cancel.clone(),
            None,
            &self.recorder.redactor,
        )
        .await;
        let attempt = judge::judge(&action, response, &self.recorder.redactor);
        if attempt.status == StepStatus::Succeeded {
            render::announce(&self.recorder, &as_step, &action, &attempt);
        } else {
            self.recorder.emit(timeline::Warning {
                message: format!(
                    "approval request for step `{}` not delivered: {}",
                    step.id,
                    attempt.error.unwrap_or_else(|| "failed".into())
                ),
            });
        }
    }

    /// `action` (a rendered notification) with the request's words added to
    /// the text people read, escaped for the service's markup.
    fn attach(&self, mut action: Action, ask: &message::Ask<'_>) -> Result<Action, String> {
        let join = |head: &str, sink: Sink| self.joined(head, ask, sink);
        match &mut action {
            Action::Notify(Notification::Console(text)) => *text = join(text, Sink::Text),
            Action::Notify(Notification::Post(post)) => self.attach_post(post, ask)?,
            Action::Notify(Notification::Team(team)) => {
                for post in &mut team.posts {
                    self.attach_post(post, ask)?;
                }
            }
            Action::Process(_) | Action::Http(_) => {
                return Err("`approvals.notify` is not a notification".into());
            }
        }
        Ok(action)
    }

    /// `head` (the playbook's own text) followed by the request's words for
    /// `sink`, redacted.
    fn joined(&self, head: &str, ask: &message::Ask<'_>, sink: Sink) -> String {
        let lines = self.recorder.redactor.redact(&message::text(ask, sink));
        if head.trim().is_empty() {
            lines
        } else {
            format!("{head}\n\n{lines}")
        }
    }

    /// One post of the request, with its words added for its service.
    fn attach_post(&self, post: &mut notify::Post, ask: &message::Ask<'_>) -> Result<(), String> {
        let redact = |s: String| self.recorder.redactor.redact(&s);
        let join = |head: &str, sink: Sink| self.joined(head, ask, sink);
        let Some(http::Body::Json(body)) = &mut post.request.body else {
            return Err("the notification has no JSON body".into());
        };
        match post.service {
            Service::Slack => {
                let lines = redact(message::text(ask, Sink::Slack));
                let text = join(body["text"].as_str().unwrap_or_default(), Sink::Slack);
                body["text"] = text.clone().into();
                let step = blocks::StepRef {
                    run: ask.run.to_string(),
                    step: ask.step.to_string(),
                    nonce: ask.nonce.to_string(),
                };
                blocks::add_buttons(
                    body,
                    &text,
                    Some(&lines),
                    &[
                        blocks::Button::Approve(step.clone()),
                        blocks::Button::Deny(step),
                    ],
                );
                post.text = Some(text);
            }
            Service::Teams => {
                let lines = redact(message::text(ask, Sink::Teams));
                if let Some(blocks) = body
                    .pointer_mut("/attachments/0/content/body")
                    .and_then(|b| b.as_array_mut())
                {
                    blocks.push(serde_json::json!({
                        "type": "TextBlock", "text": lines, "wrap": true
                    }));
                }
                post.text = Some(join(post.text.as_deref().unwrap_or_default(), Sink::Teams));
            }
            Service::Pagerduty => {
                let fields = self.recorder.redactor.redact_json(&message::fields(ask));
                if let Some(payload) = body.get_mut("payload").and_then(|p| p.as_object_mut()) {
                    let summary = payload
                        .get("summary")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string();
                    let text = join(&summary, Sink::Text);
                    payload.insert("summary".into(), text.clone().into());
                    let details = payload
                        .entry("custom_details")
                        .or_insert_with(|| serde_json::json!({}));
                    if let Some(d) = details.as_object_mut() {
                        d.insert("approval".into(), fields);
                    }
                    post.text = Some(text);
                }
            }
            Service::Webhook => {
                let fields = self.recorder.redactor.redact_json(&message::fields(ask));
                match body {
                    serde_json::Value::Object(m) => {
                        m.insert("approval".into(), fields);
                    }
                    other => {
                        *other = serde_json::json!({ "body": other.clone(), "approval": fields });
                    }
                }
                self.resign(post, body_text(&post.request.body))?;
            }
        }
        Ok(())
    }

    /// Signs a webhook's body again after the request was added to it, with
    /// the playbook's `hmac_secret`, so the signature covers what is sent.
    fn resign(&self, post: &mut notify::Post, body: String) -> Result<(), String> {
        let Some(secret) = self.approvals_hmac_secret() else {
            return Ok(());
        };
        let ctx = self.base.value(&serde_json::Map::new(), Sink::Text);
        let key = crate::template::render(&secret, Sink::Text, &ctx).map_err(|e| e.to_string())?;
        let signature = notify::webhook_signature(&key, body.as_bytes())?;
        for (k, v) in &mut post.request.headers {
            if k.eq_ignore_ascii_case(notify::SIGNATURE_HEADER) {
                *v = signature.clone();
            }
        }
        Ok(())
    }

    fn approvals_hmac_secret(&self) -> Option<String> {
        let approvals: &Arc<Approvals> = self.approvals.as_ref()?;
        let webhook = approvals.notify.as_ref()?.webhook.as_ref()?;
        webhook.hmac_secret.as_ref().map(|s| s.value.clone())
    }
}

/// The text a JSON body is sent as.
fn body_text(body: &Option<http::Body>) -> String {
    body.as_ref().map(ToString::to_string).unwrap_or_default()
}
