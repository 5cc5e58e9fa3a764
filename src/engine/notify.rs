//! `notify` steps: the payloads each service documents, and their error replies.
//!
//! Values in a Slack or Teams message are escaped for its markup, and every
//! payload is redacted before it is sent: a step's output may echo a
//! secret, and a chat channel or pager is no place for one. Only what the
//! service needs to accept the message stays as rendered (the URL, headers,
//! a PagerDuty `routing_key`).
//!
//! Notifications also carry the run's timeline hash at the moment they are
//! sent (`run.timeline_hash` in templates; a PagerDuty event's
//! `custom_details.irctl_timeline_hash`, a webhook's
//! `X-Irctl-Timeline-Hash` header), so a copy of the chain head exists
//! outside the state directory for `irctl timeline verify --expect`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::http::{Body, Request};
use crate::playbook::model::{PagerdutyAction, RawNotify};
use crate::template::{RenderError, Sink};

/// PagerDuty Events API v2 endpoint for alerts.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty Events API v2 endpoint for change events.
pub const PAGERDUTY_CHANGE_URL: &str = "https://events.pagerduty.com/v2/change/enqueue";

/// Which service a notification goes to, for interpreting its replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Slack incoming webhook.
    Slack,
    /// Teams Workflows webhook.
    Teams,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Generic webhook.
    Webhook,
}

impl Service {
    /// The service named `name` (its lowercase name).
    pub fn from_name(name: &str) -> Option<Service> {
        [
            Service::Slack,
            Service::Teams,
            Service::Pagerduty,
            Service::Webhook,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Slack => "slack",
            Service::Teams => "teams",
            Service::Pagerduty => "pagerduty",
            Service::Webhook => "webhook",
        }
    }
}

/// A notification ready to deliver.
#[derive(Clone, Debug)]
pub enum Notification {
    /// An HTTP POST to a service.
    Post(Post),
    /// A message on the responder's terminal.
    Console(String),
    /// One message to every channel of a team (`notify: { team }`).
    Team(super::team::TeamPosts),
}

/// A notification delivered by an HTTP POST.
#[derive(Clone, Debug)]
pub struct Post {
    /// The service, for interpreting its replies.
    pub service: Service,
    /// The request.
    pub request: Request,
    /// What people read (the message, the card's text, the summary); the
    /// body itself when the payload has no text of its own.
    pub text: Option<String>,
}

impl Post {
    /// What people read of this notification.
    pub fn text(&self) -> String {
        match (&self.text, &self.request.body) {
            (Some(t), _) => t.clone(),
            (None, Some(body)) => body.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// Renders fields of a notification.
pub trait Renderer {
    /// Renders a text field.
    fn text(&self, source: &str) -> Result<String, RenderError>;
    /// Renders a URL field.
    fn url(&self, source: &str) -> Result<String, RenderError>;
    /// Renders a JSON value.
    fn json(&self, value: &serde_json::Value) -> Result<serde_json::Value, RenderError>;
    /// Renders a message field for a chat service's markup (`Sink::Slack`, `Sink::Teams`).
    fn markup(&self, source: &str, sink: Sink) -> Result<String, RenderError>;
    /// Renders a JSON value whose strings carry a chat service's markup.
    fn markup_json(
        &self,
        value: &serde_json::Value,
        sink: Sink,
    ) -> Result<serde_json::Value, RenderError>;
    /// `value` with every secret masked.
    fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value;
    /// This renderer with `team` (the team a message is for) in its
    /// context; `None` when it has no context to add it to.
    fn for_team(&self, _team: &serde_json::Value) -> Option<Box<dyn Renderer + '_>> {
        None
    }
    /// The run's timeline hash now (`sha256:…`), when a timeline is written.
    fn timeline_hash(&self) -> Option<String> {
        None
    }
}

/// The field of a PagerDuty event's `custom_details` that carries the
/// timeline hash.
pub const PAGERDUTY_HASH_FIELD: &str = "irctl_timeline_hash";

/// The webhook header that carries the timeline hash.
pub const WEBHOOK_HASH_HEADER: &str = "x-irctl-timeline-hash";

/// The header a signed webhook carries its signature in.
pub const SIGNATURE_HEADER: &str = "x-irctl-signature";

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `key`, as a webhook's
/// `X-Irctl-Signature` carries it.
pub fn webhook_signature(key: &str, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .map_err(|e| format!("invalid HMAC key: {e}"))?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// `custom_details` with the timeline hash added, unless the author's
/// details are not an object or already say something under that name.
fn with_hash(
    details: Option<serde_json::Value>,
    hash: Option<String>,
) -> Option<serde_json::Value> {
    let Some(hash) = hash else {
        return details;
    };
    match details {
        None => Some(serde_json::json!({ PAGERDUTY_HASH_FIELD: hash })),
        Some(serde_json::Value::Object(mut map)) => {
            map.entry(PAGERDUTY_HASH_FIELD)
                .or_insert(serde_json::Value::String(hash));
            Some(serde_json::Value::Object(map))
        }
        other => other,
    }
}

/// `text` with every secret masked.
fn redact(r: &dyn Renderer, text: &str) -> String {
    match r.redact_json(&serde_json::Value::String(text.to_string())) {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

fn post(
    service: Service,
    url: String,
    body: serde_json::Value,
    extra: Vec<(String, String)>,
    text: Option<String>,
) -> Notification {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(extra);
    Notification::Post(Post {
        service,
        request: Request {
            method: "POST".into(),
            url,
            headers,
            body: Some(Body::Json(body)),
            expect: Vec::new(),
            insecure: false,
            max_redirects: 0,
        },
        text,
    })
}

/// Builds the request for `notify`; drills prefix texts with `[DRILL]`, and
/// `clock` stamps the events that carry a time.
pub fn prepare(
    notify: &RawNotify,
    r: &dyn Renderer,
    drill: bool,
    clock: crate::clock::Clock,
) -> Result<Notification, RenderError> {
    let tag = |s: String| if drill { format!("[DRILL] {s}") } else { s };
    if notify.team.is_some() {
        return super::team::prepare_step(notify, r, drill, clock).map(Notification::Team);
    }
    if let Some(c) = &notify.console {
        return Ok(Notification::Console(redact(r, &tag(r.text(&c.text)?))));
    }
    if let Some(s) = &notify.slack {
        let text = redact(r, &tag(r.markup(&s.text, Sink::Slack)?));
        let mut body = serde_json::json!({ "text": text });
        if let Some(blocks) = &s.blocks {
            body["blocks"] = r.redact_json(&r.markup_json(blocks, Sink::Slack)?);
        }
        return Ok(post(
            Service::Slack,
            r.url(&s.webhook)?,
            body,
            vec![],
            Some(text),
        ));
    }
    if let Some(t) = &notify.teams {
        let mut card_body = Vec::new();
        let mut lines = Vec::new();
        if let Some(title) = &t.title {
            let title = redact(r, &tag(r.markup(title, Sink::Teams)?));
            card_body.push(serde_json::json!({
                "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true
            }));
            lines.push(title);
        }
        let text = r.markup(&t.text, Sink::Teams)?;
        let text = redact(r, &if t.title.is_some() { text } else { tag(text) });
        card_body.push(serde_json::json!({
            "type": "TextBlock",
            "text": text,
            "wrap": true
        }));
        lines.push(text);
        let body = serde_json::json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": card_body
                }
            }]
        });
        return Ok(post(
            Service::Teams,
            r.url(&t.webhook)?,
            body,
            vec![],
            Some(lines.join("\n")),
        ));
    }
    if let Some(p) = &notify.pagerduty {
        let routing_key = r.text(&p.routing_key)?;
        let endpoint = p.endpoint.as_ref().map(|t| r.text(t)).transpose()?;
        // Every other field of the event is what responders read.
        let opt =
            |t: &Option<crate::playbook::model::Text>| -> Result<Option<String>, RenderError> {
                Ok(t.as_ref()
                    .map(|t| r.text(t))
                    .transpose()?
                    .map(|s| redact(r, &s)))
            };
        let summary = opt(&p.summary)?.map(tag).unwrap_or_default();
        let source = opt(&p.source)?.unwrap_or_else(|| "irctl".into());
        let custom = p
            .custom_details
            .as_ref()
            .map(|d| r.json(d).map(|d| r.redact_json(&d)))
            .transpose()?;
        let custom = with_hash(custom, r.timeline_hash());
        let (url, body, text) = if p.action.value == PagerdutyAction::Change {
            let mut payload = serde_json::json!({ "summary": summary, "source": source, "timestamp": crate::timeline::stamp(clock.now()) });
            if let Some(c) = custom {
                payload["custom_details"] = c;
            }
            (
                endpoint.unwrap_or_else(|| PAGERDUTY_CHANGE_URL.into()),
                serde_json::json!({ "routing_key": routing_key, "payload": payload }),
                Some(summary),
            )
        } else {
            let action = match p.action.value {
                PagerdutyAction::Acknowledge => "acknowledge",
                PagerdutyAction::Resolve => "resolve",
                _ => "trigger",
            };
            let mut body = serde_json::json!({ "routing_key": routing_key, "event_action": action, "client": "irctl" });
            if let Some(k) = opt(&p.dedup_key)? {
                body["dedup_key"] = k.into();
            }
            // Acknowledging or resolving carries no summary: people read the body.
            let mut text = None;
            if action == "trigger" {
                let severity = opt(&p.severity)?.unwrap_or_else(|| "error".into());
                let mut payload = serde_json::json!({
                    "summary": summary, "source": source, "severity": severity, "timestamp": crate::timeline::stamp(clock.now())
                });
                if let Some(c) = custom {
                    payload["custom_details"] = c;
                }
                body["payload"] = payload;
                text = Some(summary);
            }
            (
                endpoint.unwrap_or_else(|| PAGERDUTY_EVENTS_URL.into()),
                body,
                text,
            )
        };
        return Ok(post(Service::Pagerduty, url, body, vec![], text));
    }
    if let Some(w) = &notify.webhook {
        // Redacted before signing, so the signature covers what is sent.
        let body = match &w.json {
            Some(j) => r.redact_json(&r.json(j)?),
            None => serde_json::json!({}),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for (k, v) in &w.headers {
            headers.push((k.clone(), r.text(v)?));
        }
        if let Some(hash) = r.timeline_hash()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(WEBHOOK_HASH_HEADER))
        {
            headers.push((WEBHOOK_HASH_HEADER.into(), hash));
        }
        if let Some(secret) = &w.hmac_secret {
            let key = r.text(secret)?;
            let signature =
                webhook_signature(&key, body.to_string().as_bytes()).map_err(RenderError)?;
            headers.push((SIGNATURE_HEADER.into(), signature));
        }
        return Ok(post(Service::Webhook, r.url(&w.url)?, body, headers, None));
    }
    Err(RenderError("`notify` has no target".into()))
}

/// Turns a service's documented error reply into a clear message.
pub fn explain_failure(
    service: Service,
    status: u16,
    body: &str,
    json: &serde_json::Value,
) -> Option<String> {
    let text = body.trim();
    Some(match service {
        // Slack answers `200 ok`, or a status with a short code in plain text.
        Service::Slack => format!(
            "slack rejected the message (HTTP {status}): {}{}",
            if text.is_empty() {
                "no reason given"
            } else {
                text
            },
            match text {
                "no_service" | "no_team" => " \u{2014} the webhook was revoked or is wrong",
                "invalid_payload" => " \u{2014} the message JSON is malformed",
                "channel_is_archived" => " \u{2014} the channel is archived",
                "action_prohibited" => " \u{2014} an admin restricted posting to the channel",
                _ => "",
            }
        ),
        Service::Pagerduty => {
            let message = json.get("message").and_then(|m| m.as_str()).unwrap_or(text);
            let errors = json
                .get("errors")
                .and_then(|e| e.as_array())
                .map(|e| {
                    e.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|e| !e.is_empty());
            match (status, errors) {
                (429, _) => "pagerduty is throttling events (HTTP 429)".to_string(),
                (_, Some(errors)) => {
                    format!("pagerduty rejected the event (HTTP {status}): {message}: {errors}")
                }
                _ => format!("pagerduty rejected the event (HTTP {status}): {message}"),
            }
        }
        Service::Teams => {
            let msg = json
                .pointer("/error/message")
                .and_then(|m| m.as_str())
                .unwrap_or(text);
            format!("teams rejected the message (HTTP {status}): {msg}")
        }
        Service::Webhook => return None,
    })
}
