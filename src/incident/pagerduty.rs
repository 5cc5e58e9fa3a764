//! PagerDuty: V3 webhooks (what PagerDuty sends out) and Events API v2
//! events (what monitoring tools send in, often captured and replayed).
//!
//! A V3 webhook carries one `event` whose `data` is the incident (or, for
//! notes and responder events, a reference to it). An Events API v2 event is
//! an alert with a `dedup_key`; its `routing_key` is an integration secret,
//! so it never reaches labels, title or id — it stays only in `raw`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::field::{Ctx, Object, scalar_string};
use super::{
    Alert, Incident, IncidentError, IncidentFormat, Severity, Status, hash_hex, severity_of,
};

/// A V3 webhook, `{"event": {"event_type": "incident.triggered", "data": {...}}}`.
pub(super) fn parse_webhook(ctx: &Ctx<'_>, obj: &Object) -> Result<Incident, IncidentError> {
    let event = ctx
        .object(obj.get("event"), "event")?
        .ok_or_else(|| ctx.missing("event"))?;
    let event_type = ctx.required_string(event.get("event_type"), "event.event_type")?;
    let resource_type = ctx.string(event.get("resource_type"), "event.resource_type")?;
    if !event_type.starts_with("incident.") || resource_type.is_some_and(|r| r != "incident") {
        return Err(ctx.unsupported(format!(
            "event `{}` is not about an incident; irctl responds to `incident.*` events",
            super::shown(event_type)
        )));
    }
    let data = ctx
        .object(event.get("data"), "event.data")?
        .ok_or_else(|| ctx.missing("event.data"))?;
    // Notes, responders and status updates carry a reference to the incident.
    let (incident, at) = match ctx.string(data.get("type"), "event.data.type")? {
        None | Some("incident") => (data, "event.data"),
        Some(_) => match ctx.object(data.get("incident"), "event.data.incident")? {
            Some(reference) => (reference, "event.data.incident"),
            None => return Err(ctx.missing("event.data.incident")),
        },
    };
    let f = |name: &str| format!("{at}.{name}");

    let id = ctx
        .required_string(incident.get("id"), &f("id"))?
        .to_string();
    let title = match ctx.text(incident.get("title"), &f("title"))? {
        Some(title) => title,
        None => ctx
            .text(incident.get("summary"), &f("summary"))?
            .ok_or_else(|| ctx.missing(&f("title")))?,
    };
    let priority = match ctx.object(incident.get("priority"), &f("priority"))? {
        Some(p) => ctx.text(p.get("summary"), &f("priority.summary"))?,
        None => None,
    };
    let urgency = ctx.text(incident.get("urgency"), &f("urgency"))?;
    let (severity, severity_raw) = match (&priority, &urgency) {
        (Some(p), _) => (Severity::normalise(p), p.clone()),
        // PagerDuty has two urgencies; low still notifies, so it is a warning.
        (None, Some(u)) if u.eq_ignore_ascii_case("low") => (Severity::Warning, u.clone()),
        (None, Some(u)) => (Severity::normalise(u), u.clone()),
        (None, None) => (Severity::Warning, String::new()),
    };
    let resolved = event_type == "incident.resolved"
        || ctx.string(incident.get("status"), &f("status"))? == Some("resolved");
    let status = if resolved {
        Status::Resolved
    } else {
        Status::Firing
    };

    let mut labels = BTreeMap::new();
    if let Some(service) = ctx.object(incident.get("service"), &f("service"))?
        && let Some(name) = ctx.text(service.get("summary"), &f("service.summary"))?
    {
        labels.insert("service".to_string(), name);
    }
    if let Some(urgency) = urgency {
        labels.insert("urgency".to_string(), urgency);
    }
    labels.insert("event_type".to_string(), event_type.to_string());
    if let Some(priority) = priority {
        labels.insert("priority".to_string(), priority);
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), title.clone());

    let occurred_at = ctx.time(event.get("occurred_at"), "event.occurred_at")?;
    let started_at = ctx
        .time(incident.get("created_at"), &f("created_at"))?
        .or(occurred_at);
    let mut out = Incident {
        id,
        title,
        severity,
        severity_raw,
        status,
        acknowledged: event_type == "incident.acknowledged",
        source: ctx.format.as_str().to_string(),
        labels,
        annotations,
        started_at,
        ended_at: if resolved { occurred_at } else { None },
        fingerprint: ctx.text(incident.get("incident_key"), &f("incident_key"))?,
        url: ctx.text(incident.get("html_url"), &f("html_url"))?,
        alerts: Vec::new(),
        raw: Value::Null,
        ownership: None,
    };
    out.alerts.push(Alert::mirror(&out));
    // A reopened incident fires again from when it was reopened: that, not
    // its first creation, tells it from a late copy of the trigger that was
    // resolved since (see `Incident::newest_firing_start`).
    if event_type == "incident.reopened"
        && !resolved
        && let (Some(alert), Some(at)) = (out.alerts.first_mut(), occurred_at)
    {
        alert.starts_at = Some(at);
    }
    Ok(out)
}

/// The `routing_key` of an incident read from an Events API v2 event
/// (`source` is the format it was read as, `raw` the payload): the event's
/// own top-level key, or that of the event a CloudEvent carries as `data`.
pub(crate) fn routing_key<'a>(source: &str, raw: &'a Value) -> Option<&'a str> {
    let event = if source == IncidentFormat::PagerdutyEvent.as_str() {
        raw
    } else if source == IncidentFormat::Cloudevents.as_str() {
        raw.get("data")
            .filter(|d| d.get("event_action").is_some())?
    } else {
        return None;
    };
    event.get("routing_key")?.as_str()
}

/// An Events API v2 event, `{"routing_key", "event_action", "dedup_key", "payload": {...}}`.
pub(super) fn parse_event(ctx: &Ctx<'_>, obj: &Object) -> Result<Incident, IncidentError> {
    let action = ctx.required_string(obj.get("event_action"), "event_action")?;
    let status = match action {
        "trigger" | "acknowledge" => Status::Firing,
        "resolve" => Status::Resolved,
        other => {
            return Err(ctx.invalid_value(
                "event_action",
                other,
                "`trigger`, `acknowledge` or `resolve`",
            ));
        }
    };
    let dedup_key = ctx.text(obj.get("dedup_key"), "dedup_key")?;
    let payload = ctx.object(obj.get("payload"), "payload")?;
    // Acknowledge and resolve refer to an alert by `dedup_key` and need no payload.
    let payload = match (payload, action) {
        (Some(p), _) => Some(p),
        (None, "trigger") => return Err(ctx.missing("payload")),
        (None, _) if dedup_key.is_none() => return Err(ctx.missing("dedup_key")),
        (None, _) => None,
    };

    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let (title, severity, severity_raw, started_at) = match payload {
        Some(p) => {
            let summary = ctx
                .required_string(p.get("summary"), "payload.summary")?
                .to_string();
            let source = ctx.required_string(p.get("source"), "payload.source")?;
            let raw_severity = ctx.required_string(p.get("severity"), "payload.severity")?;
            labels.insert("source".to_string(), source.to_string());
            for key in ["component", "group", "class"] {
                if let Some(v) = ctx.text(p.get(key), &format!("payload.{key}"))? {
                    labels.insert(key.to_string(), v);
                }
            }
            match p.get("custom_details") {
                None | Some(Value::Null) => {}
                Some(Value::Object(details)) => {
                    for (key, value) in details {
                        if let Some(text) = flatten(value) {
                            labels.entry(key.clone()).or_insert(text);
                        }
                    }
                }
                Some(other) => {
                    if let Some(text) = flatten(other) {
                        annotations.insert("custom_details".to_string(), text);
                    }
                }
            }
            let (severity, severity_raw) = severity_of(Some(raw_severity));
            let started_at = ctx.time(p.get("timestamp"), "payload.timestamp")?;
            (summary, severity, severity_raw, started_at)
        }
        None => {
            let key = dedup_key.as_deref().unwrap_or_default();
            (
                format!("PagerDuty {action} for `{key}`"),
                Severity::Warning,
                String::new(),
                None,
            )
        }
    };
    annotations.insert("summary".to_string(), title.clone());
    if let Some(client) = ctx.text(obj.get("client"), "client")? {
        annotations.insert("client".to_string(), client);
    }
    let client_url = ctx.text(obj.get("client_url"), "client_url")?;
    let url = match client_url {
        Some(url) => Some(url),
        None => first_link(ctx, obj)?,
    };
    let id = match &dedup_key {
        Some(key) => key.clone(),
        None => {
            // The routing key only feeds a one-way hash, never the id itself.
            let routing_key = ctx
                .string(obj.get("routing_key"), "routing_key")?
                .unwrap_or_default();
            format!(
                "pagerduty-{}",
                &hash_hex([routing_key, title.as_str()])[..16]
            )
        }
    };
    let mut out = Incident {
        id,
        title,
        severity,
        severity_raw,
        status,
        acknowledged: action == "acknowledge",
        source: ctx.format.as_str().to_string(),
        labels,
        annotations,
        started_at,
        ended_at: None,
        fingerprint: dedup_key,
        url,
        alerts: Vec::new(),
        raw: Value::Null,
        ownership: None,
    };
    out.alerts.push(Alert::mirror(&out));
    Ok(out)
}

/// A custom detail as a label value: scalars as text, objects and arrays as compact JSON.
fn flatten(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
        scalar => scalar_string(scalar),
    }
}

fn first_link(ctx: &Ctx<'_>, obj: &Object) -> Result<Option<String>, IncidentError> {
    let Some(links) = ctx.array(obj.get("links"), "links")? else {
        return Ok(None);
    };
    for (i, link) in links.iter().enumerate() {
        if let Some(link) = ctx.object(Some(link), &format!("links[{i}]"))?
            && let Some(href) = ctx.text(link.get("href"), &format!("links[{i}].href"))?
        {
            return Ok(Some(href));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{IncidentFormat, Severity, Status, from_value, parse};

    #[test]
    fn resolve_without_payload_uses_dedup_key() {
        let incident = from_value(
            json!({"routing_key": "R0UT1NG", "dedup_key": "db-1-conn", "event_action": "resolve"}),
            "x",
        )
        .unwrap();
        assert_eq!(incident.status, Status::Resolved);
        assert_eq!(incident.id, "db-1-conn");
        assert_eq!(incident.title, "PagerDuty resolve for `db-1-conn`");
    }

    #[test]
    fn routing_key_stays_out_of_id_labels_and_title() {
        let secret = "0123456789abcdef0123456789abcdef";
        let incident = from_value(
            json!({
                "routing_key": secret, "event_action": "trigger",
                "payload": {"summary": "disk full", "source": "db-1", "severity": "error",
                            "custom_details": {"free": 0, "mounts": ["/", "/var"], "nested": {"a": 1}}}
            }),
            "x",
        )
        .unwrap();
        assert!(incident.id.starts_with("pagerduty-"));
        assert!(!incident.id.contains(secret));
        assert!(!incident.title.contains(secret));
        assert!(incident.labels.values().all(|v| !v.contains(secret)));
        assert!(incident.annotations.values().all(|v| !v.contains(secret)));
        assert_eq!(incident.severity, Severity::High);
        assert_eq!(incident.labels["free"], "0");
        assert_eq!(incident.labels["mounts"], r#"["/","/var"]"#);
        assert_eq!(incident.labels["nested"], r#"{"a":1}"#);
        assert_eq!(
            incident.raw["routing_key"], secret,
            "raw keeps the payload as received"
        );
    }

    #[test]
    fn custom_details_cannot_override_payload_fields() {
        let incident = from_value(
            json!({"event_action": "trigger", "payload": {"summary": "s", "source": "real", "severity": "info",
                   "custom_details": {"source": "fake"}}}),
            "x",
        )
        .unwrap();
        assert_eq!(incident.labels["source"], "real");
    }

    #[test]
    fn trigger_needs_summary_source_and_severity() {
        let err = from_value(
            json!({"event_action": "trigger", "payload": {"summary": "s", "source": "h"}}),
            "e.json",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required field `payload.severity` in pagerduty-event payload `e.json`"
        );
        let err = from_value(json!({"event_action": "trigger"}), "e.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required field `payload` in pagerduty-event payload `e.json`"
        );
        let err = from_value(json!({"event_action": "explode"}), "e.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid pagerduty-event payload `e.json`: `event_action` is `explode`, expected `trigger`, `acknowledge` or `resolve`"
        );
    }

    #[test]
    fn webhook_urgency_and_resolution() {
        let incident = from_value(
            json!({"event": {"event_type": "incident.resolved", "resource_type": "incident",
                   "occurred_at": "2020-10-02T18:45:22.169Z",
                   "data": {"id": "P1", "type": "incident", "title": "t", "urgency": "low",
                            "created_at": "2020-10-02T18:00:00Z", "status": "resolved"}}}),
            "x",
        )
        .unwrap();
        assert_eq!(incident.status, Status::Resolved);
        assert_eq!(incident.severity, Severity::Warning);
        assert_eq!(incident.severity_raw, "low");
        assert_eq!(
            incident.ended_at.map(super::super::format_time).as_deref(),
            Some("2020-10-02T18:45:22.169Z")
        );
    }

    #[test]
    fn webhook_note_events_refer_to_the_incident() {
        let incident = from_value(
            json!({"event": {"event_type": "incident.annotated", "resource_type": "incident",
                   "data": {"type": "incident_note", "content": "hi",
                            "incident": {"id": "PGR0VU2", "summary": "A little bump in the road",
                                         "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2"}}}}),
            "x",
        )
        .unwrap();
        assert_eq!(incident.id, "PGR0VU2");
        assert_eq!(incident.title, "A little bump in the road");
        assert_eq!(incident.labels["event_type"], "incident.annotated");
    }

    #[test]
    fn webhook_service_events_are_unsupported() {
        let err = parse(
            br#"{"event": {"event_type": "service.updated", "resource_type": "service", "data": {}}}"#,
            "s.json",
            Some(IncidentFormat::PagerdutyWebhook),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported pagerduty-webhook payload `s.json`: event `service.updated` is not about an incident; irctl responds to `incident.*` events"
        );
    }
}
