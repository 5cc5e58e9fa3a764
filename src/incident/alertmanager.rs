//! Prometheus Alertmanager and Grafana alerting webhooks.
//!
//! Grafana's unified alerting sends Alertmanager's envelope (`groupKey`,
//! `status`, `commonLabels`, `alerts[]`, …) plus `orgId`, `title`, `state`,
//! `message` and per-alert `values`, `valueString`, `dashboardURL`,
//! `silenceURL`, so one parser reads both.
//!
//! One notification is one incident: Alertmanager has already grouped and
//! deduplicated, and `groupKey` identifies the group across repeats and the
//! final resolve. The incident's labels are the group's common labels (what
//! every alert shares), so playbook matchers see what the route saw.

use std::collections::BTreeMap;

use serde_json::Value;

use super::field::{Ctx, Object};
use super::{Alert, Incident, IncidentError, IncidentFormat, Severity, Status, derived_id};

pub(super) fn parse(ctx: &Ctx<'_>, obj: &Object) -> Result<Incident, IncidentError> {
    let group_status = ctx
        .string(obj.get("status"), "status")?
        .map(|s| ctx.status(s, "status"))
        .transpose()?;
    let entries = ctx
        .array(obj.get("alerts"), "alerts")?
        .ok_or_else(|| ctx.missing("alerts"))?;
    if entries.is_empty() {
        return Err(IncidentError::NoAlerts {
            origin: ctx.origin.to_string(),
            format: ctx.format,
            field: ctx.path("alerts"),
        });
    }
    super::limit::alerts(ctx.origin, &ctx.path("alerts"), entries.len())?;
    let alerts = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| parse_alert(ctx, entry, i, group_status))
        .collect::<Result<Vec<_>, _>>()?;

    let status = group_status.unwrap_or(if alerts.iter().any(|a| a.status == Status::Firing) {
        Status::Firing
    } else {
        Status::Resolved
    });
    let labels = match obj.get("commonLabels") {
        None | Some(Value::Null) => common(alerts.iter().map(|a| &a.labels)),
        v => ctx.string_map(v, "commonLabels")?,
    };
    let annotations = match obj.get("commonAnnotations") {
        None | Some(Value::Null) => common(alerts.iter().map(|a| &a.annotations)),
        v => ctx.string_map(v, "commonAnnotations")?,
    };
    let truncated = match obj.get("truncatedAlerts") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ctx.wrong_type("truncatedAlerts", "a non-negative integer", v))?,
    };
    let total = (alerts.len() as u64).saturating_add(truncated);

    let grafana_title = if ctx.format == IncidentFormat::Grafana {
        ctx.text(obj.get("title"), "title")?
    } else {
        None
    };
    let title = match grafana_title {
        // Grafana's title already says how many alerts fire.
        Some(title) => title,
        None => {
            let base = group_title(&labels, &annotations, &alerts);
            if total > 1 {
                format!("{base} ({total} alerts)")
            } else {
                base
            }
        }
    };

    let (severity, severity_raw) = match labels.get("severity") {
        Some(raw) => (Severity::normalise(raw), raw.clone()),
        None => alerts
            .iter()
            .filter_map(|a| a.labels.get("severity"))
            .map(|raw| (Severity::normalise(raw), raw.clone()))
            .min_by_key(|(severity, _)| *severity)
            .unwrap_or((Severity::Warning, String::new())),
    };

    let started_at = alerts.iter().filter_map(|a| a.starts_at).min();
    // A firing alert's endsAt is Alertmanager's resolve timeout, not an end.
    let ended_at = if alerts.iter().all(|a| a.status == Status::Resolved) {
        alerts.iter().filter_map(|a| a.ends_at).max()
    } else {
        None
    };
    let id = match ctx.text(obj.get("groupKey"), "groupKey")? {
        Some(key) => key,
        None => derived_id(ctx.format.as_str(), &title, &labels),
    };
    let url = match ctx.text(obj.get("externalURL"), "externalURL")? {
        Some(url) => Some(url),
        None => alerts.iter().find_map(|a| a.generator_url.clone()),
    };
    let fingerprint = match alerts.as_slice() {
        [only] => only.fingerprint.clone(),
        _ => None,
    };

    Ok(Incident {
        id,
        title,
        severity,
        severity_raw,
        status,
        acknowledged: false,
        source: ctx.format.as_str().to_string(),
        labels,
        annotations,
        started_at,
        ended_at,
        fingerprint,
        url,
        alerts,
        raw: Value::Null,
        ownership: None,
    })
}

fn parse_alert(
    ctx: &Ctx<'_>,
    entry: &Value,
    index: usize,
    group_status: Option<Status>,
) -> Result<Alert, IncidentError> {
    let here = format!("alerts[{index}]");
    let Value::Object(obj) = entry else {
        return Err(ctx.wrong_type(&here, "an object", entry));
    };
    let f = |name: &str| format!("{here}.{name}");
    let status = match ctx.string(obj.get("status"), &f("status"))? {
        Some(s) => ctx.status(s, &f("status"))?,
        None => group_status.unwrap_or(Status::Firing),
    };
    let values = match obj.get("values") {
        Some(v) if !v.is_null() => Some(v.clone()),
        _ => ctx
            .text(obj.get("valueString"), &f("valueString"))?
            .map(Value::String),
    };
    Ok(Alert {
        status,
        labels: ctx.string_map(obj.get("labels"), &f("labels"))?,
        annotations: ctx.string_map(obj.get("annotations"), &f("annotations"))?,
        starts_at: ctx.time(obj.get("startsAt"), &f("startsAt"))?,
        ends_at: ctx.time(obj.get("endsAt"), &f("endsAt"))?,
        fingerprint: ctx.text(obj.get("fingerprint"), &f("fingerprint"))?,
        generator_url: ctx.text(obj.get("generatorURL"), &f("generatorURL"))?,
        values,
        dashboard_url: ctx.text(obj.get("dashboardURL"), &f("dashboardURL"))?,
        silence_url: ctx.text(obj.get("silenceURL"), &f("silenceURL"))?,
    })
}

/// The first of: the common `summary` or `title` annotation, the common
/// `alertname`, the first alert's `summary` or `alertname`.
fn group_title(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    alerts: &[Alert],
) -> String {
    let first = alerts.first();
    [
        annotations.get("summary"),
        annotations.get("title"),
        labels.get("alertname"),
        first.and_then(|a| a.annotations.get("summary")),
        first.and_then(|a| a.labels.get("alertname")),
    ]
    .into_iter()
    .flatten()
    .find(|s| !s.trim().is_empty())
    .cloned()
    .unwrap_or_else(|| "alert group".to_string())
}

/// The entries every map has with the same value (Alertmanager's own rule
/// for `commonLabels`), for payloads written without them.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut shared = first.clone();
    for map in maps {
        shared.retain(|k, v| map.get(k) == Some(v));
    }
    shared
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{IncidentError, IncidentFormat, Severity, Status, from_value, parse};

    fn am(value: serde_json::Value) -> Result<super::Incident, IncidentError> {
        parse(
            value.to_string().as_bytes(),
            "am.json",
            Some(IncidentFormat::Alertmanager),
        )
    }

    fn alert(status: &str, name: &str, severity: &str) -> serde_json::Value {
        json!({
            "status": status,
            "labels": {"alertname": name, "severity": severity, "instance": format!("{name}:9100")},
            "annotations": {"summary": format!("{name} is unhappy")},
            "startsAt": "2024-01-01T10:00:00.123456789+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "0123456789abcdef"
        })
    }

    #[test]
    fn group_status_wins_over_alert_statuses() {
        let incident = am(json!({
            "version": "4", "groupKey": "{}:{}", "status": "firing",
            "alerts": [alert("resolved", "A", "warning"), alert("firing", "A", "warning")]
        }))
        .unwrap();
        assert_eq!(incident.status, Status::Firing);
        assert_eq!(incident.alerts[0].status, Status::Resolved);
        assert_eq!(incident.alerts[1].status, Status::Firing);
        assert_eq!(incident.ended_at, None, "not every alert is resolved");

        let incident = am(json!({
            "groupKey": "k", "status": "resolved",
            "alerts": [alert("firing", "A", "warning")]
        }))
        .unwrap();
        assert_eq!(incident.status, Status::Resolved);
        assert_eq!(incident.alerts[0].status, Status::Firing);
    }

    #[test]
    fn zero_ends_at_is_none_and_offsets_become_utc() {
        let incident = am(
            json!({"groupKey": "k", "status": "firing", "alerts": [alert("firing", "A", "page")]}),
        )
        .unwrap();
        assert_eq!(incident.alerts[0].ends_at, None);
        let started = incident.started_at.unwrap();
        assert_eq!(
            started.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2024-01-01T08:00:00.123456789Z"
        );
        assert_eq!(incident.severity, Severity::Critical);
        assert_eq!(incident.severity_raw, "page");
    }

    #[test]
    fn zero_alerts_is_an_error() {
        let err = am(json!({"groupKey": "k", "status": "firing", "alerts": []})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "alertmanager payload `am.json` has no alerts; `alerts` needs at least one entry"
        );
    }

    #[test]
    fn without_common_labels_the_shared_labels_are_used_and_worst_severity_wins() {
        let incident = am(json!({
            "status": "firing",
            "alerts": [alert("firing", "Disk", "warning"), alert("firing", "Disk", "critical")]
        }))
        .unwrap();
        assert_eq!(
            incident.labels.get("alertname").map(String::as_str),
            Some("Disk")
        );
        assert!(!incident.labels.contains_key("severity"));
        assert!(
            !incident.labels.contains_key("instance") || incident.labels["instance"] == "Disk:9100"
        );
        assert_eq!(incident.severity, Severity::Critical);
        assert_eq!(incident.title, "Disk is unhappy (2 alerts)");
        assert!(incident.id.starts_with("alertmanager-"), "{}", incident.id);
        assert_eq!(incident.fingerprint, None);
    }

    #[test]
    fn truncated_alerts_count_in_the_title() {
        let incident = am(json!({
            "groupKey": "k", "status": "firing", "truncatedAlerts": 4,
            "commonLabels": {"alertname": "Many"},
            "alerts": [alert("firing", "Many", "info")]
        }))
        .unwrap();
        assert_eq!(incident.title, "Many is unhappy (5 alerts)");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = am(json!({"groupKey": "k", "commonLabels": ["a", "b"], "alerts": [alert("firing", "A", "x")]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid alertmanager payload `am.json`: `commonLabels` must be an object, found an array"
        );
        let err = am(json!({"alerts": [{"labels": {"a": {"nested": true}}}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid alertmanager payload `am.json`: `alerts[0].labels.a` must be a string, number or boolean, found an object"
        );
        let err = am(json!({"alerts": [{"startsAt": "soon"}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid timestamp in `am.json`: `alerts[0].startsAt` is `soon`, expected RFC 3339 such as `2024-01-01T10:00:00Z`"
        );
        let err = am(json!({"status": "burning", "alerts": [{}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid alertmanager payload `am.json`: `status` is `burning`, expected `firing` or `resolved`"
        );
        let err = am(json!({"alerts": "none"})).unwrap_err();
        assert!(
            err.to_string()
                .contains("`alerts` must be an array, found a string"),
            "{err}"
        );
    }

    #[test]
    fn numbers_and_booleans_in_labels_are_stringified() {
        let incident = from_value(
            json!({"alerts": [{"labels": {"port": 5432, "ratio": 0.5, "canary": true, "gone": null}}]}),
            "x",
        )
        .unwrap();
        let labels = &incident.alerts[0].labels;
        assert_eq!(labels["port"], "5432");
        assert_eq!(labels["ratio"], "0.5");
        assert_eq!(labels["canary"], "true");
        assert!(!labels.contains_key("gone"));
    }

    #[test]
    fn grafana_value_string_is_kept_when_values_are_absent() {
        let incident = from_value(
            json!({"orgId": 1, "status": "firing", "alerts": [{"valueString": "[ var='B' value=3 ]", "dashboardURL": ""}]}),
            "g",
        )
        .unwrap();
        assert_eq!(incident.source, "grafana");
        assert_eq!(
            incident.alerts[0].values,
            Some(json!("[ var='B' value=3 ]"))
        );
        assert_eq!(incident.alerts[0].dashboard_url, None);
    }
}
