//! Turning a step into a concrete action (rendering every template for its
//! sink) and executing it.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use super::context::{ContextBase, StepOutput, StepStatus, secret_env_name};
use super::notify::{self, Prepared, Renderer};
use super::{Attempt, Observer, Recorder, http, shell};
use crate::playbook::Step;
use crate::template::{self, RenderError, Sink};

/// A step with every template rendered.
pub(crate) struct PreparedStep {
    pub(crate) action: Action,
    pub(crate) confirm: Option<String>,
}

pub(crate) enum Action {
    Process {
        inv: shell::Invocation,
        shown: serde_json::Value,
    },
    Http(http::Request),
    Notify(Prepared),
}

impl PreparedStep {
    /// The rendered action for the timeline (the recorder redacts secrets).
    pub(crate) fn describe(&self) -> serde_json::Value {
        match &self.action {
            Action::Process { shown, inv } => {
                let mut v = shown.clone();
                if let Some(cwd) = &inv.cwd {
                    v["cwd"] = cwd.clone().into();
                }
                v
            }
            Action::Http(req) => serde_json::to_value(req).unwrap_or_default(),
            Action::Notify(Prepared::Console(text)) => json!({ "notify": "console", "text": text }),
            Action::Notify(Prepared::Http(service, req)) => {
                let mut v = serde_json::to_value(req).unwrap_or_default();
                v["notify"] = service.as_str().into();
                v
            }
        }
    }
}

struct StepRenderer<'a> {
    base: &'a ContextBase,
    outputs: &'a serde_json::Map<String, serde_json::Value>,
}

impl StepRenderer<'_> {
    fn render(&self, source: &str, sink: Sink) -> Result<String, RenderError> {
        template::render(source, sink, &self.base.value(self.outputs, sink))
    }
}

impl Renderer for StepRenderer<'_> {
    fn text(&self, source: &str) -> Result<String, RenderError> {
        self.render(source, Sink::Text)
    }
    fn url(&self, source: &str) -> Result<String, RenderError> {
        self.render(source, Sink::Url)
    }
    fn json(&self, value: &serde_json::Value) -> Result<serde_json::Value, RenderError> {
        template::render_json(value, &self.base.value(self.outputs, Sink::Text))
    }
}

/// Renders the step's action and confirmation question.
pub(crate) fn prepare(
    step: &Step,
    base: &ContextBase,
    outputs: &serde_json::Map<String, serde_json::Value>,
    drill: bool,
) -> Result<PreparedStep, RenderError> {
    let r = StepRenderer { base, outputs };
    let raw = &step.raw;
    let confirm = raw.confirm.as_ref().map(|q| r.text(q)).transpose()?;
    let action = if raw.shell.is_some() || raw.command.is_some() {
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in &raw.env {
            env.push((k.clone(), r.text(v)?));
        }
        // Secrets reach processes through the environment, never argv.
        for (name, secret) in &base.secrets {
            env.push((secret_env_name(name), secret.expose().to_string()));
        }
        env.push(("IRCTL_RUN_ID".into(), base.run.id.clone()));
        env.push(("IRCTL_STEP_ID".into(), step.id.clone()));
        env.push(("IRCTL_DRILL".into(), if drill { "1" } else { "0" }.into()));
        let cwd = raw.cwd.as_ref().map(|c| r.text(c)).transpose()?;
        let (argv, shown) = if let Some(script) = &raw.shell {
            let script = r.render(script, Sink::Shell)?;
            let shown = json!({ "shell": script });
            // The system shell by absolute path: no PATH search per step
            // (eight failed execs on a typical PATH), and a `sh` planted
            // earlier in PATH cannot stand in for it.
            (vec!["/bin/sh".to_string(), "-c".to_string(), script], shown)
        } else {
            let argv = raw
                .command
                .iter()
                .flatten()
                .map(|a| r.text(a))
                .collect::<Result<Vec<_>, _>>()?;
            let shown = json!({ "command": argv });
            (argv, shown)
        };
        Action::Process {
            inv: shell::Invocation { argv, env, cwd },
            shown,
        }
    } else if let Some(h) = &raw.http {
        let mut url = r.url(&h.url)?;
        if !h.query.is_empty() {
            let mut parsed = url::Url::parse(&url)
                .map_err(|e| RenderError(format!("invalid URL `{url}`: {e}")))?;
            {
                let mut pairs = parsed.query_pairs_mut();
                for (k, v) in &h.query {
                    pairs.append_pair(k, &r.text(v)?);
                }
            }
            url = parsed.to_string();
        }
        let mut headers = Vec::new();
        for (k, v) in &h.headers {
            headers.push((k.clone(), r.text(v)?));
        }
        let body = if let Some(j) = &h.json {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".into(), "application/json".into()));
            }
            Some(r.json(j)?.to_string())
        } else {
            h.body.as_ref().map(|b| r.text(b)).transpose()?
        };
        Action::Http(http::Request {
            method: h
                .method
                .as_ref()
                .map(|m| m.value.to_ascii_uppercase())
                .unwrap_or_else(|| "GET".into()),
            url,
            headers,
            body,
            expect: h.expect.clone().unwrap_or_default(),
            insecure: h.insecure,
            max_redirects: h.max_redirects.unwrap_or(5),
        })
    } else if let Some(n) = &raw.notify {
        Action::Notify(notify::prepare(n, &r, drill)?)
    } else {
        return Err(RenderError("step has no action".into()));
    };
    Ok(PreparedStep { action, confirm })
}

/// Executes a prepared step once.
pub(crate) async fn execute(
    prepared: &PreparedStep,
    step: &Step,
    clients: &http::Clients,
    cancel: watch::Receiver<Option<String>>,
    observer: Option<Arc<dyn Observer>>,
    recorder: &Recorder,
) -> Attempt {
    match &prepared.action {
        Action::Process { inv, .. } => {
            shell::run(&step.id, inv, step.timeout, cancel, observer).await
        }
        Action::Http(req) => http::send(clients, req, step.timeout, cancel).await,
        Action::Notify(Prepared::Console(text)) => {
            recorder.emit(crate::timeline::Notification {
                step: step.id.clone(),
                target: "console".into(),
                text: Some(text.clone()),
                http_status: None,
            });
            let mut out = StepOutput::empty(StepStatus::Succeeded);
            out.stdout = text.clone();
            Attempt::ok(out)
        }
        Action::Notify(Prepared::Http(service, req)) => {
            let mut attempt = http::send(clients, req, step.timeout, cancel).await;
            if attempt.status == StepStatus::Failed {
                if let Some(msg) = notify::explain_failure(
                    *service,
                    attempt.output.http_status,
                    &attempt.output.body,
                    &attempt.output.json,
                ) {
                    attempt.error = Some(msg);
                }
            } else if attempt.status == StepStatus::Succeeded {
                recorder.emit(crate::timeline::Notification {
                    step: step.id.clone(),
                    target: service.as_str().into(),
                    text: None,
                    http_status: attempt.output.http_status,
                });
            }
            attempt
        }
    }
}

/// Sends a drill's notification to the `drill.notify` override for its
/// service, so a drill can page a test channel instead of the real on-call.
/// The rendered request keeps its `[DRILL]` text; only the destination changes.
pub(crate) fn reroute_for_drill(
    mut prepared: PreparedStep,
    overrides: &crate::playbook::model::RawDrillNotify,
    base: &ContextBase,
    outputs: &serde_json::Map<String, serde_json::Value>,
) -> Result<PreparedStep, RenderError> {
    use notify::Service;
    let r = StepRenderer { base, outputs };
    if let Action::Notify(Prepared::Http(service, req)) = &mut prepared.action {
        match service {
            Service::Slack | Service::Teams | Service::Webhook => {
                let target = match service {
                    Service::Slack => &overrides.slack,
                    Service::Teams => &overrides.teams,
                    _ => &overrides.webhook,
                };
                if let Some(url) = target {
                    req.url = r.url(url)?;
                }
            }
            Service::Pagerduty => {
                if let Some(key) = &overrides.pagerduty {
                    let key = r.text(key)?;
                    let mut body: serde_json::Value = req
                        .body
                        .as_deref()
                        .and_then(|b| serde_json::from_str(b).ok())
                        .unwrap_or_else(|| json!({}));
                    body["routing_key"] = key.into();
                    req.body = Some(body.to_string());
                }
            }
        }
    }
    Ok(prepared)
}
