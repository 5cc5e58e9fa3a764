//! Turning a step into a concrete action (rendering every template for its
//! sink) and executing it.

use std::cell::OnceCell;
use std::sync::Arc;

use tokio::sync::watch;

use super::action::Action;
use super::context::{ContextBase, StepStatus, secret_env_name};
use super::notify::{self, Notification, Post, Renderer};
use super::response::Response;
use super::shell::{Invocation, Program};
use super::{Attempt, Observer, Recorder, http, shell};
use crate::playbook::model::{RawDrillNotify, RawHttp};
use crate::playbook::{self, Step, StepAction};
use crate::template::{self, RenderError, Sink};

/// A step with every template rendered.
pub(crate) struct PreparedStep {
    pub(crate) action: Action,
    pub(crate) confirm: Option<String>,
}

impl PreparedStep {
    /// The rendered action for the timeline (the recorder redacts secrets).
    pub(crate) fn describe(&self) -> serde_json::Value {
        serde_json::to_value(&self.action).unwrap_or_default()
    }
}

struct StepRenderer<'a> {
    base: &'a ContextBase,
    outputs: &'a serde_json::Map<String, serde_json::Value>,
    /// The context for shell scripts and the one for everything else,
    /// built on first use: most fields of most steps are plain text.
    shell_context: OnceCell<minijinja::Value>,
    context: OnceCell<minijinja::Value>,
    /// `team`, for a message to one team of several.
    team: Option<minijinja::Value>,
}

impl<'a> StepRenderer<'a> {
    fn new(base: &'a ContextBase, outputs: &'a serde_json::Map<String, serde_json::Value>) -> Self {
        StepRenderer {
            base,
            outputs,
            shell_context: OnceCell::new(),
            context: OnceCell::new(),
            team: None,
        }
    }

    /// The step's context for `sink`, with `team` when there is one.
    fn build(&self, sink: Sink) -> minijinja::Value {
        let base = self.base.value(self.outputs, sink);
        match &self.team {
            Some(team) => {
                minijinja::value::merge_maps([minijinja::context! { team => team.clone() }, base])
            }
            None => base,
        }
    }

    fn context(&self, sink: Sink) -> &minijinja::Value {
        // Only a shell script sees secrets differently (as references), so
        // every other sink shares one context.
        let cell = if sink == Sink::Shell {
            &self.shell_context
        } else {
            &self.context
        };
        cell.get_or_init(|| self.build(sink))
    }

    fn render(&self, source: &str, sink: Sink) -> Result<String, RenderError> {
        if !template::is_templated(source) {
            return Ok(source.to_string());
        }
        template::render(source, sink, self.context(sink))
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
        template::render_json(value, self.context(Sink::Text))
    }
    fn markup(&self, source: &str, sink: Sink) -> Result<String, RenderError> {
        self.render(source, sink)
    }
    fn markup_json(
        &self,
        value: &serde_json::Value,
        sink: Sink,
    ) -> Result<serde_json::Value, RenderError> {
        template::render_json_for(value, sink, &self.build(sink))
    }
    fn for_team(&self, team: &serde_json::Value) -> Option<Box<dyn Renderer + '_>> {
        let mut r = StepRenderer::new(self.base, self.outputs);
        r.team = Some(template::value(team));
        Some(Box::new(r))
    }
    fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        self.base.redactor.redact_json(value)
    }
    fn timeline_hash(&self) -> Option<String> {
        self.base
            .timeline_head
            .is_some()
            .then(|| self.base.timeline_hash())
    }
}

/// Renders the step's action and confirmation question.
pub(crate) fn prepare(
    step: &Step,
    base: &ContextBase,
    outputs: &serde_json::Map<String, serde_json::Value>,
    drill: bool,
) -> Result<PreparedStep, RenderError> {
    let r = StepRenderer::new(base, outputs);
    let confirm = step.confirm.as_deref().map(|q| r.text(q)).transpose()?;
    let action = match &step.action {
        StepAction::Process(process) => {
            let mut env: Vec<(String, String)> = Vec::new();
            for (k, v) in &process.env {
                env.push((k.clone(), r.text(v)?));
            }
            // Secrets reach processes through the environment, never argv.
            for (name, secret) in &base.secrets {
                env.push((secret_env_name(name), secret.expose().to_string()));
            }
            env.push(("IRCTL_RUN_ID".into(), base.run.id.to_string()));
            env.push(("IRCTL_STEP_ID".into(), step.id.to_string()));
            env.push(("IRCTL_DRILL".into(), if drill { "1" } else { "0" }.into()));
            let cwd = match process.cwd.as_deref() {
                Some(c) => Some(template::path::confine(c, &r.text(c)?).map_err(RenderError)?),
                None => None,
            };
            let program = match &process.program {
                playbook::Program::Shell(script) => Program::Shell(r.render(script, Sink::Shell)?),
                playbook::Program::Command(sources) => {
                    let argv = sources
                        .iter()
                        .map(|a| r.text(a))
                        .collect::<Result<Vec<_>, _>>()?;
                    template::check_argv(sources, &argv).map_err(RenderError)?;
                    Program::Command(argv)
                }
            };
            Action::Process(Invocation {
                program,
                env,
                cwd,
                interpreter: process.interpreter.clone(),
            })
        }
        StepAction::Http(h) => Action::Http(request(h, &r)?),
        StepAction::Notify(n) => Action::Notify(notify::prepare(n, &r, drill, base.clock)?),
    };
    Ok(PreparedStep { action, confirm })
}

/// Renders an `http:` step's request.
fn request(h: &RawHttp, r: &StepRenderer<'_>) -> Result<http::Request, RenderError> {
    let mut url = r.url(&h.url)?;
    let allowed = h.allowed_hosts.iter().map(|a| a.value.as_str());
    template::url::check_destination(&h.url, &url, allowed).map_err(RenderError)?;
    if template::single_expression(&h.url).is_none() {
        template::url::check_path(&url).map_err(RenderError)?;
    }
    if !h.query.is_empty() {
        let mut parsed =
            url::Url::parse(&url).map_err(|e| RenderError(format!("invalid URL `{url}`: {e}")))?;
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
        Some(http::Body::Json(r.json(j)?))
    } else {
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        let sink = if RawHttp::sends_json(content_type, h.body.as_ref().map(|b| b.value.as_str())) {
            Sink::JsonText
        } else {
            Sink::Text
        };
        h.body
            .as_ref()
            .map(|b| r.render(b, sink))
            .transpose()?
            .map(http::Body::Text)
    };
    Ok(http::Request {
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
}

/// Carries out a rendered action once and reports what happened; `tag`
/// (`<run>/<step>/<attempt>`) marks the processes it starts.
pub(crate) async fn execute(
    action: &Action,
    step: &Step,
    tag: &str,
    clients: &http::Clients,
    cancel: watch::Receiver<Option<String>>,
    observer: Option<Arc<dyn Observer>>,
    redactor: &crate::secret::Redactor,
) -> Response {
    match action {
        Action::Process(inv) => {
            shell::run(&step.id, tag, inv, step.timeout, cancel, observer, redactor).await
        }
        Action::Http(req) => http::send(clients, req, step.timeout, cancel).await,
        Action::Notify(Notification::Console(_)) => Response::Shown,
        Action::Notify(Notification::Post(post)) => {
            http::send(clients, &post.request, step.timeout, cancel).await
        }
        Action::Notify(Notification::Team(t)) => {
            let started = std::time::Instant::now();
            let deliveries = super::team::deliver(
                &t.posts,
                clients,
                step.timeout,
                step.retry,
                cancel,
                redactor,
            )
            .await;
            super::team::response(&deliveries, started)
        }
    }
}

/// Records a delivered notification.
pub(crate) fn announce(recorder: &Recorder, step: &Step, action: &Action, attempt: &Attempt) {
    if attempt.status != StepStatus::Succeeded {
        return;
    }
    match action {
        Action::Notify(Notification::Console(text)) => {
            recorder.emit(crate::timeline::Notification {
                step: step.id.clone(),
                target: "console".into(),
                text: Some(text.clone()),
                http_status: None,
            });
        }
        Action::Notify(Notification::Post(post)) => {
            recorder.emit(crate::timeline::Notification {
                step: step.id.clone(),
                target: post.service.as_str().into(),
                text: None,
                http_status: attempt.output.http_status,
            });
        }
        Action::Notify(Notification::Team(t)) => {
            for post in &t.posts {
                recorder.emit(crate::timeline::Notification {
                    step: step.id.clone(),
                    target: post.service.as_str().into(),
                    text: None,
                    http_status: None,
                });
            }
        }
        Action::Process(_) | Action::Http(_) => {}
    }
}

/// Sends a drill's notification to the `drill.notify` override for its
/// service, so a drill can page a test channel instead of the real on-call.
/// The rendered request keeps its `[DRILL]` text; only the destination changes.
pub(crate) fn reroute_for_drill(
    mut prepared: PreparedStep,
    overrides: &RawDrillNotify,
    base: &ContextBase,
    outputs: &serde_json::Map<String, serde_json::Value>,
) -> Result<PreparedStep, RenderError> {
    let r = StepRenderer::new(base, outputs);
    match &mut prepared.action {
        Action::Notify(Notification::Post(post)) => reroute_post(post, overrides, &r)?,
        Action::Notify(Notification::Team(t)) => {
            for post in &mut t.posts {
                reroute_post(post, overrides, &r)?;
            }
        }
        _ => {}
    }
    Ok(prepared)
}

/// Sends one post of a drill to the `drill.notify` override for its service.
fn reroute_post(
    post: &mut Post,
    overrides: &RawDrillNotify,
    r: &StepRenderer<'_>,
) -> Result<(), RenderError> {
    use notify::Service;
    let req = &mut post.request;
    match post.service {
        Service::Slack | Service::Teams | Service::Webhook => {
            let target = match post.service {
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
                if let Some(http::Body::Json(body)) = &mut req.body {
                    body["routing_key"] = key.into();
                }
            }
        }
    }
    Ok(())
}
