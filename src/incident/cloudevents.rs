//! CloudEvents 1.0 in the JSON event format.
//!
//! Event routers (Knative, Argo Events, cloud event buses) wrap alerts in a
//! CloudEvent. When `data` is itself a payload irctl knows (an Alertmanager
//! or Grafana webhook, a PagerDuty webhook or event) it is read as that, so
//! the incident looks the same as if it had arrived directly; otherwise the
//! incident is built from `data`'s `title`/`summary`, `severity`, `labels`
//! and `annotations`. Either way the envelope adds `ce_type`, `ce_source`
//! and `ce_subject` labels (unless `data` already has labels of those names).

use serde_json::Value;

use super::field::{Ctx, Object, scalar_string};
use super::{
    Alert, Incident, IncidentError, IncidentFormat, Status, detect, parse_object, severity_of,
    shown,
};

pub(super) fn parse(ctx: &Ctx<'_>, obj: &Object) -> Result<Incident, IncidentError> {
    let version = ctx.required_string(obj.get("specversion"), "specversion")?;
    if version != "1.0" {
        return Err(ctx.unsupported(format!(
            "`specversion` is `{}`; irctl reads CloudEvents 1.0",
            shown(version)
        )));
    }
    let id = ctx.required_string(obj.get("id"), "id")?;
    let source = ctx.required_string(obj.get("source"), "source")?;
    let event_type = ctx.required_string(obj.get("type"), "type")?;
    let subject = ctx.text(obj.get("subject"), "subject")?;
    let time = ctx.time(obj.get("time"), "time")?;

    let data = obj.get("data").and_then(Value::as_object);
    let inner = data.and_then(|d| detect(d).filter(|f| is_wrappable(*f)).map(|f| (d, f)));
    let mut incident = match inner {
        // The inner payload's own id (groupKey, PagerDuty id, dedup_key) wins.
        Some((d, format)) => parse_object(&ctx.nested(format, "data."), d, None)?,
        None => generic(ctx, data, id, subject.as_deref(), event_type)?,
    };
    for (name, value) in [
        ("ce_type", Some(event_type.to_string())),
        ("ce_source", Some(source.to_string())),
        ("ce_subject", subject),
    ] {
        if let Some(value) = value {
            incident.labels.entry(name.to_string()).or_insert(value);
        }
    }
    incident.started_at = incident.started_at.or(time);
    incident.source = ctx.format.as_str().to_string();
    Ok(incident)
}

/// Formats that can travel inside a CloudEvent's `data` (not another
/// CloudEvent, and not irctl's file, whose field names generic data shares).
fn is_wrappable(format: IncidentFormat) -> bool {
    matches!(
        format,
        IncidentFormat::Alertmanager
            | IncidentFormat::Grafana
            | IncidentFormat::PagerdutyWebhook
            | IncidentFormat::PagerdutyEvent
    )
}

/// An incident from arbitrary event data; `data` that is not an object
/// (XML text, a bare string) contributes nothing but stays in `raw`.
fn generic(
    ctx: &Ctx<'_>,
    data: Option<&Object>,
    id: &str,
    subject: Option<&str>,
    event_type: &str,
) -> Result<Incident, IncidentError> {
    let empty = Object::new();
    let d = data.unwrap_or(&empty);
    let title = match ctx.text(d.get("title"), "data.title")? {
        Some(title) => title,
        None => ctx
            .text(d.get("summary"), "data.summary")?
            .or_else(|| subject.map(str::to_string))
            .unwrap_or_else(|| event_type.to_string()),
    };
    let severity_text = match d.get("severity") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(scalar_string(v).ok_or_else(|| ctx.wrong_type("data.severity", "a string", v))?)
        }
    };
    let (severity, severity_raw) = severity_of(severity_text.as_deref());
    // Event data is free-form: only an explicit end state counts as
    // resolved, and only an explicit `acknowledged` as acknowledged
    // (PagerDuty payloads carried as data have their own parsers).
    let status_text = ctx.string(d.get("status"), "data.status")?;
    let acknowledged = status_text.is_some_and(|s| s.eq_ignore_ascii_case("acknowledged"));
    let status = match status_text {
        Some(s)
            if ["resolved", "ok", "closed"]
                .iter()
                .any(|r| s.eq_ignore_ascii_case(r)) =>
        {
            Status::Resolved
        }
        _ => Status::Firing,
    };
    let labels = ctx.string_map(d.get("labels"), "data.labels")?;
    let mut annotations = ctx.string_map(d.get("annotations"), "data.annotations")?;
    for key in ["summary", "description"] {
        if let Some(text) = ctx.text(d.get(key), &format!("data.{key}"))? {
            annotations.entry(key.to_string()).or_insert(text);
        }
    }
    let started_at = match ctx.time(d.get("started_at"), "data.started_at")? {
        Some(t) => Some(t),
        None => ctx.time(d.get("startsAt"), "data.startsAt")?,
    };
    let mut out = Incident {
        id: id.to_string(),
        title,
        severity,
        severity_raw,
        status,
        acknowledged,
        source: ctx.format.as_str().to_string(),
        labels,
        annotations,
        started_at,
        ended_at: None,
        fingerprint: ctx.text(d.get("fingerprint"), "data.fingerprint")?,
        url: ctx.text(d.get("url"), "data.url")?,
        alerts: Vec::new(),
        raw: Value::Null,
        ownership: None,
    };
    out.alerts.push(Alert::mirror(&out));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Severity, Status, from_value};

    #[test]
    fn generic_data_builds_the_incident() {
        let incident = from_value(
            json!({
                "specversion": "1.0", "type": "com.example.alert", "source": "/monitors/42",
                "id": "C234-1234-1234", "time": "2018-04-05T17:31:00Z", "subject": "db-1",
                "datacontenttype": "application/json",
                "data": {"summary": "replication lag", "severity": "sev2", "labels": {"service": "payments"}}
            }),
            "ce.json",
        )
        .unwrap();
        assert_eq!(incident.id, "C234-1234-1234");
        assert_eq!(incident.title, "replication lag");
        assert_eq!(incident.severity, Severity::High);
        assert_eq!(incident.status, Status::Firing);
        assert_eq!(incident.labels["service"], "payments");
        assert_eq!(incident.labels["ce_type"], "com.example.alert");
        assert_eq!(incident.labels["ce_source"], "/monitors/42");
        assert_eq!(incident.labels["ce_subject"], "db-1");
        assert_eq!(incident.annotations["summary"], "replication lag");
        assert_eq!(incident.source, "cloudevents");
        assert!(incident.started_at.is_some());
    }

    #[test]
    fn an_acknowledgement_is_read_from_the_data_or_a_pagerduty_event_in_it() {
        let ce = |data: serde_json::Value| {
            from_value(
                json!({"specversion": "1.0", "type": "t", "source": "/s", "id": "1", "data": data}),
                "ce.json",
            )
            .unwrap()
        };
        let acked = ce(json!({"summary": "s", "status": "Acknowledged"}));
        assert!(acked.acknowledged);
        assert_eq!(acked.status, Status::Firing);
        assert!(ce(json!({"event_action": "acknowledge", "dedup_key": "d"})).acknowledged);
        assert!(!ce(json!({"summary": "s", "status": "firing"})).acknowledged);
    }

    #[test]
    fn string_data_falls_back_to_subject() {
        let incident = from_value(
            json!({"specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext",
                   "id": "B234-1234-1234", "datacontenttype": "application/xml", "data": "<much wow=\"xml\"/>"}),
            "ce.json",
        )
        .unwrap();
        assert_eq!(incident.title, "com.example.someevent");
        assert_eq!(incident.severity, Severity::Warning);
    }

    #[test]
    fn errors_inside_data_name_the_nested_path() {
        let err = from_value(
            json!({"specversion": "1.0", "type": "t", "source": "s", "id": "i",
                   "data": {"status": "firing", "alerts": [{"labels": ["oops"]}]}}),
            "ce.json",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid alertmanager payload `ce.json`: `data.alerts[0].labels` must be an object, found an array"
        );
    }

    #[test]
    fn old_spec_versions_and_missing_attributes_are_rejected() {
        let err = from_value(json!({"specversion": "0.3", "id": "i"}), "ce.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported cloudevents payload `ce.json`: `specversion` is `0.3`; irctl reads CloudEvents 1.0"
        );
        let err = from_value(
            json!({"specversion": "1.0", "id": "i", "type": "t"}),
            "ce.json",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required field `source` in cloudevents payload `ce.json`"
        );
    }
}
