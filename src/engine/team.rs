//! Sending one message to every channel of a team (`teams.yaml`).
//!
//! A team message is not a new payload: each channel gets the notification
//! irctl already sends to its service ([`super::notify::prepare`]), so
//! escaping for Slack and Teams markup, redaction, the timeline hash and
//! PagerDuty's event shape are the ones every `notify` step has. The URL or
//! routing key is `{{ secrets.NAME }}` for the secret the channel names.
//!
//! Two callers: a playbook's `notify: { team, text }` step, whose text is
//! the author's template rendered in the step's context, and
//! [`send`] for commands (`irctl handoff`), whose message is data —
//! untrusted from top to bottom, so it is rendered as one escaped value.
//! Each channel is tried with the step's retry policy on its own: a retry
//! never repeats a message to a channel that already took it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::action::Action;
use super::context::StepStatus;
use super::http::Clients;
use super::notify::{self, Notification, Post, Renderer};
use super::response::{Response, StepError};
use crate::clock::Clock;
use crate::playbook::RetryPolicy;
use crate::playbook::model::{
    PagerdutyAction, RawNotify, RawPagerduty, RawSlack, RawTeams, RawWebhook, Text,
};
use crate::secret::{Redactor, Secret};
use crate::teams::{Channel, ChannelKind, KEYWORDS, Recipient, Team};
use crate::template::{self, RenderError, Sink};
use crate::yaml::Spanned;

/// A message rendered for each of a team's channels.
#[derive(Clone, Debug)]
pub struct TeamPosts {
    /// The team's canonical reference.
    pub team: String,
    /// One notification per channel, in the file's order.
    pub posts: Vec<Post>,
}

impl TeamPosts {
    /// `group:default/dba (slack, pagerduty)`.
    pub fn summary(&self) -> String {
        let services: Vec<&str> = self.posts.iter().map(|p| p.service.as_str()).collect();
        format!("{} ({})", self.team, services.join(", "))
    }
}

/// What one channel did with the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The service.
    pub service: notify::Service,
    /// Its last HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why it did not take the message; `None` when it did.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
}

/// The service that sends to `kind`.
pub fn service(kind: ChannelKind) -> notify::Service {
    match kind {
        ChannelKind::Slack => notify::Service::Slack,
        ChannelKind::Teams => notify::Service::Teams,
        ChannelKind::Pagerduty => notify::Service::Pagerduty,
        ChannelKind::Webhook => notify::Service::Webhook,
    }
}

/// What to send a team: templates over the renderer's context.
pub struct Message<'a> {
    /// The text.
    pub text: &'a Text,
    /// A title: a Teams card's title, a PagerDuty summary.
    pub title: Option<&'a Text>,
    /// PagerDuty's `dedup_key`, so an event sent again is one alert.
    pub dedup_key: Option<&'a str>,
}

fn secret_ref(channel: &Channel) -> Text {
    Spanned::unspanned(format!("{{{{ secrets.{} }}}}", channel.secret))
}

/// The `notify` a channel of `team` gets for `message`.
fn channel_notify(team: &Team, channel: &Channel, message: &Message<'_>, drill: bool) -> RawNotify {
    let target = secret_ref(channel);
    let mut n = RawNotify::default();
    match channel.kind {
        ChannelKind::Slack => {
            n.slack = Some(RawSlack {
                webhook: target,
                text: message.text.clone(),
                blocks: None,
            });
        }
        ChannelKind::Teams => {
            n.teams = Some(RawTeams {
                webhook: target,
                title: message.title.cloned(),
                text: message.text.clone(),
            });
        }
        ChannelKind::Pagerduty => {
            let summary = message.title.unwrap_or(message.text).clone();
            n.pagerduty = Some(RawPagerduty {
                routing_key: target,
                action: Spanned::unspanned(PagerdutyAction::Trigger),
                dedup_key: message.dedup_key.map(|k| Spanned::unspanned(k.to_string())),
                summary: Some(summary),
                severity: None,
                source: None,
                custom_details: Some(Spanned::unspanned(serde_json::json!({
                    "team": team.reference,
                    "text": message.text.value,
                }))),
                endpoint: channel.endpoint.clone().map(Spanned::unspanned),
            });
        }
        ChannelKind::Webhook => {
            // Our own body, so a drill is said in it as on every other
            // channel (a user's own `webhook:` body is left as written).
            let text = if drill {
                format!("[DRILL] {}", message.text.value)
            } else {
                message.text.value.clone()
            };
            let mut body = serde_json::json!({ "team": team.reference, "text": text });
            if let Some(t) = message.title {
                body["title"] = t.value.clone().into();
            }
            if drill {
                body["drill"] = true.into();
            }
            n.webhook = Some(RawWebhook {
                url: target,
                json: Some(Spanned::unspanned(body)),
                headers: Default::default(),
                hmac_secret: None,
            });
        }
    }
    n
}

/// Renders `message` for each of `channels` of `team`.
pub fn prepare(
    team: &Team,
    channels: &[&Channel],
    message: &Message<'_>,
    r: &dyn Renderer,
    drill: bool,
    clock: Clock,
) -> Result<TeamPosts, RenderError> {
    let mut posts = Vec::new();
    for channel in channels {
        match notify::prepare(
            &channel_notify(team, channel, message, drill),
            r,
            drill,
            clock,
        )? {
            Notification::Post(p) => posts.push(p),
            // A channel is always a service, never the console.
            Notification::Console(_) | Notification::Team(_) => {}
        }
    }
    Ok(TeamPosts {
        team: team.reference.clone(),
        posts,
    })
}

/// Renders a `notify: { team, text }` step for every channel of its bound
/// team, or of each team [`target`] chose for `team: owner|impacted`
/// (each message seeing its own `team`).
pub fn prepare_step(
    n: &RawNotify,
    r: &dyn Renderer,
    drill: bool,
    clock: Clock,
) -> Result<TeamPosts, RenderError> {
    let written = n.team.as_ref().map(|t| t.value.trim()).unwrap_or("");
    if KEYWORDS.contains(&written) {
        let Some(text) = &n.text else {
            return Err(RenderError("`notify: { team }` needs a `text`".into()));
        };
        let message = Message {
            text,
            title: n.title.as_ref(),
            dedup_key: None,
        };
        let mut posts = Vec::new();
        let mut reached = Vec::new();
        for recipient in &n.recipients {
            let scoped = r.for_team(&recipient.context);
            let r = scoped.as_deref().unwrap_or(r);
            let channels: Vec<&Channel> = recipient.team.channels.iter().collect();
            posts.extend(prepare(&recipient.team, &channels, &message, r, drill, clock)?.posts);
            reached.push(recipient.team.reference.clone());
        }
        let team = if reached.is_empty() {
            format!("{written}: nobody reachable")
        } else {
            format!("{written}: {}", reached.join(", "))
        };
        return Ok(TeamPosts { team, posts });
    }
    let Some(team) = &n.bound else {
        return Err(RenderError(format!(
            "team `{written}` is not bound to a teams file; run `irctl validate`"
        )));
    };
    let Some(text) = &n.text else {
        return Err(RenderError("`notify: { team }` needs a `text`".into()));
    };
    let channels: Vec<&Channel> = team.channels.iter().collect();
    let message = Message {
        text,
        title: n.title.as_ref(),
        dedup_key: None,
    };
    // A team named by reference sees itself as `team` too.
    let context = serde_json::json!({
        "ref": team.reference,
        "name": team.reference.rsplit('/').next().unwrap_or_default(),
        "title": team.display_name(),
        "role": "named",
        "services": [],
    });
    let scoped = r.for_team(&context);
    prepare(
        team,
        &channels,
        &message,
        scoped.as_deref().unwrap_or(r),
        drill,
        clock,
    )
}

/// Sends each post, retrying each on its own as `retry` says.
pub async fn deliver(
    posts: &[Post],
    clients: &Clients,
    timeout: Duration,
    retry: RetryPolicy,
    cancel: watch::Receiver<Option<String>>,
    redactor: &Redactor,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    for post in posts {
        let action = Action::Notify(Notification::Post(post.clone()));
        let mut attempts = 0;
        let delivery = loop {
            attempts += 1;
            let response = super::http::send(clients, &post.request, timeout, cancel.clone()).await;
            let attempt = super::judge::judge(&action, response, redactor);
            let done = attempt.status == StepStatus::Succeeded;
            if done || !attempt.retryable || attempts >= retry.attempts.max(1) {
                break Delivery {
                    service: post.service,
                    http_status: attempt.output.http_status,
                    error: (!done).then(|| attempt.error.unwrap_or_else(|| "failed".into())),
                    attempts,
                };
            }
            let delay = super::task::backoff(retry, attempts, attempt.retry_after, timeout);
            tokio::time::sleep(delay).await;
        };
        out.push(delivery);
    }
    out
}

/// The step's response to what its channels did: shown when every one took
/// the message, else a failure naming those that did not (not retried as a
/// whole: that would repeat the message where it arrived).
pub fn response(deliveries: &[Delivery], started: Instant) -> Response {
    let failed: Vec<String> = deliveries
        .iter()
        .filter_map(|d| {
            d.error
                .as_ref()
                .map(|e| format!("{}: {e}", d.service.as_str()))
        })
        .collect();
    if failed.is_empty() {
        return Response::Shown;
    }
    Response::failed(
        StepError::Undelivered(format!(
            "{} of {} channels did not take the message: {}",
            failed.len(),
            deliveries.len(),
            failed.join("; ")
        )),
        started.elapsed(),
    )
}

/// Renders a command's message (data, never a template) with the secrets
/// its channels name.
struct DataRenderer {
    context: minijinja::Value,
    redactor: Redactor,
}

impl Renderer for DataRenderer {
    fn text(&self, source: &str) -> Result<String, RenderError> {
        template::render(source, Sink::Text, &self.context)
    }
    fn url(&self, source: &str) -> Result<String, RenderError> {
        template::render(source, Sink::Url, &self.context)
    }
    fn json(&self, value: &serde_json::Value) -> Result<serde_json::Value, RenderError> {
        template::render_json(value, &self.context)
    }
    fn markup(&self, source: &str, sink: Sink) -> Result<String, RenderError> {
        template::render(source, sink, &self.context)
    }
    fn markup_json(
        &self,
        value: &serde_json::Value,
        sink: Sink,
    ) -> Result<serde_json::Value, RenderError> {
        template::render_json_for(value, sink, &self.context)
    }
    fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        self.redactor.redact_json(value)
    }
}

/// A message from a command: plain data.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// A short title (a Teams card's title, the PagerDuty summary).
    pub title: String,
    /// The whole message.
    pub text: String,
    /// PagerDuty's `dedup_key`.
    pub dedup_key: Option<String>,
    /// Buttons a Slack channel's message carries (a hand-off's Accept).
    pub buttons: Vec<super::blocks::Button>,
}

/// Sends `message` to `channels` of `team`: every value escaped for its
/// channel's markup, every secret of `secrets` (and `redactor`) masked in
/// what is sent, each channel retried on its own; Slack channels also get
/// the message's buttons.
pub fn send(
    team: &Team,
    channels: &[&Channel],
    message: &Outgoing,
    secrets: &BTreeMap<String, Secret>,
    redactor: &Redactor,
    clock: Clock,
) -> anyhow::Result<Vec<Delivery>> {
    let values: BTreeMap<&str, &str> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    let r = DataRenderer {
        context: minijinja::context! {
            message => minijinja::context! { title => message.title.clone(), text => message.text.clone() },
            secrets => template::value(&values),
        },
        redactor: redactor.clone(),
    };
    let text = Spanned::unspanned("{{ message.text }}".to_string());
    let title = Spanned::unspanned("{{ message.title }}".to_string());
    let posts = prepare(
        team,
        channels,
        &Message {
            text: &text,
            title: Some(&title),
            dedup_key: message.dedup_key.as_deref(),
        },
        &r,
        false,
        clock,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot build the message for team `{}`: {e}",
            team.reference
        )
    })?;
    let mut posts = posts;
    for post in &mut posts.posts {
        if post.service == notify::Service::Slack
            && let Some(super::http::Body::Json(body)) = &mut post.request.body
        {
            let text = post.text.clone().unwrap_or_default();
            super::blocks::add_buttons(body, &text, None, &message.buttons);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the HTTP runtime: {e}"))?;
    let clients = Clients::new(redactor.clone());
    let (_keep, cancel) = watch::channel(None);
    let retry = RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(5),
    };
    Ok(runtime.block_on(deliver(
        &posts.posts,
        &clients,
        SEND_TIMEOUT,
        retry,
        cancel,
        redactor,
    )))
}

/// Time one request of a command's message may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// An impact notice a run is to send: recorded as `impact_notice` in the
/// incident log once the step has delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The step that sends it.
    pub step: String,
    /// The impacted team.
    pub team: String,
    /// Its impacted services.
    pub services: Vec<String>,
    /// The channels it goes to (`slack`, …).
    pub channels: Vec<String>,
    /// Channels (or the whole team) left out, and why.
    pub skipped: Vec<String>,
}

/// What [`target`] decided for one run.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    /// Teams not reachable and channels skipped, for the run's warnings.
    pub warnings: Vec<String>,
    /// The impact notices the run sends (and those it cannot: no channel).
    pub notices: Vec<Notice>,
    /// The secrets the chosen channels read, to resolve with the playbook's.
    pub secrets: Vec<String>,
}

/// Chooses the teams of `playbook`'s `team: owner` and `team: impacted`
/// steps for one incident: the owner; each team owning an impacted service
/// (once, however many of its services are impacted), not the owner itself
/// and not a team already told in this episode (`noticed`). A team's
/// channels whose secret is not set (`has_secret`) are skipped, and a team
/// not in `teams.yaml` is not notifiable: both are warnings the run
/// records, never a failure, so a clone with no secrets still runs.
pub fn target(
    playbook: &mut crate::playbook::Playbook,
    ownership: Option<&crate::catalog::Ownership>,
    noticed: &std::collections::BTreeSet<String>,
    has_secret: &dyn Fn(&str) -> bool,
) -> Targets {
    let mut out = Targets::default();
    let owner = ownership.and_then(|o| o.owner.as_ref());
    for step in playbook
        .steps
        .iter_mut()
        .chain(playbook.on_resolved.iter_mut())
    {
        let crate::playbook::StepAction::Notify(n) = &mut step.action else {
            continue;
        };
        let keyword = match n.team.as_ref().map(|t| t.value.trim()) {
            Some(k @ ("owner" | "impacted")) => k.to_string(),
            _ => continue,
        };
        let roster = n.roster.clone();
        let reach = |reference: &str, out: &mut Targets| -> (Option<Team>, Vec<String>) {
            let Some(team) = roster.as_ref().and_then(|r| r.teams.get(reference)) else {
                let why = "not in teams.yaml, so not notifiable".to_string();
                out.warnings
                    .push(format!("step `{}`: team `{reference}` is {why}", step.id));
                return (None, vec![why]);
            };
            let mut kept = team.clone();
            let mut skipped = Vec::new();
            kept.channels.retain(|c| {
                let set = has_secret(&c.secret);
                if !set {
                    skipped.push(format!("{}: secret {} not set", c.kind.as_str(), c.secret));
                }
                set
            });
            for s in &skipped {
                out.warnings.push(format!(
                    "step `{}`: team `{reference}` {s}, skipped",
                    step.id
                ));
            }
            for s in kept.secrets() {
                if !out.secrets.contains(&s) {
                    out.secrets.push(s);
                }
            }
            (Some(kept), skipped)
        };
        n.recipients.clear();
        if keyword == "owner" {
            let Some(o) = owner else {
                out.warnings.push(format!(
                    "step `{}`: the catalog names no owner for this incident, so nobody was told",
                    step.id
                ));
                continue;
            };
            let reference = o.entity_ref.to_string();
            if let (Some(team), _) = reach(&reference, &mut out) {
                let context = serde_json::json!({
                    "ref": reference,
                    "name": o.name,
                    "title": team.title.clone().unwrap_or_else(|| o.title.clone()),
                    "role": "owner",
                    "services": ownership.and_then(|x| x.service.as_ref()).map(|s| vec![s.entity_ref.to_string()]).unwrap_or_default(),
                });
                n.recipients.push(Recipient { team, context });
            }
            continue;
        }
        let owner_ref = owner.map(|o| o.entity_ref.to_string());
        let mut by_team: std::collections::BTreeMap<
            String,
            (crate::catalog::resolve::Team, Vec<String>),
        > = std::collections::BTreeMap::new();
        for i in ownership.map(|o| o.impacted.as_slice()).unwrap_or_default() {
            let Some(t) = &i.owner else { continue };
            let reference = t.entity_ref.to_string();
            if owner_ref.as_deref() == Some(reference.as_str()) || noticed.contains(&reference) {
                continue;
            }
            by_team
                .entry(reference)
                .or_insert_with(|| (t.clone(), Vec::new()))
                .1
                .push(i.entity_ref.to_string());
        }
        for (reference, (t, services)) in by_team {
            let (team, skipped) = reach(&reference, &mut out);
            out.notices.push(Notice {
                step: step.id.to_string(),
                team: reference.clone(),
                services: services.clone(),
                channels: team
                    .as_ref()
                    .map(|t| {
                        t.channels
                            .iter()
                            .map(|c| c.kind.as_str().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                skipped,
            });
            if let Some(team) = team {
                let context = serde_json::json!({
                    "ref": reference,
                    "name": t.name,
                    "title": team.title.clone().unwrap_or_else(|| t.title.clone()),
                    "role": "impacted",
                    "services": services,
                });
                n.recipients.push(Recipient { team, context });
            }
        }
    }
    out
}
