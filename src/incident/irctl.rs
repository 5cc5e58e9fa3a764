//! irctl's own incident file, JSON or YAML, for incidents written by hand
//! (drills, tests, replaying something a human reported).
//!
//! ```yaml
//! id: INC-42            # optional; a hash of title and labels otherwise
//! title: Checkout latency above SLO
//! severity: high        # optional; the `severity` label, else warning
//! status: firing        # optional; firing or resolved
//! labels: { service: checkout }
//! annotations: { summary: p99 is 2.3s }
//! started_at: 2024-03-05T14:02:11Z
//! url: https://status.example.com/incidents/42
//! ```
//!
//! Unknown fields are rejected, so a typo cannot silently drop data. `title`
//! is required unless the `alertname` label can stand in for it, which keeps
//! a playbook's `drill.incident: { labels: {...} }` short.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

use super::field::{Ctx, Object};
use super::{
    Alert, Incident, IncidentError, Status, Text, derived_id, json_pos, severity_of, strip_position,
};
use crate::yaml::Pos;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentFile {
    #[serde(default)]
    id: Option<Scalar>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    severity: Option<Scalar>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    annotations: BTreeMap<String, Scalar>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    ended_at: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// A string, or a number or boolean kept as its text (`port: 5432`).
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
}

/// Reads the file from its text when known (for line and column in
/// errors), else from the already-parsed object.
pub(super) fn parse(
    ctx: &Ctx<'_>,
    obj: &Object,
    text: Option<Text<'_>>,
) -> Result<Incident, IncidentError> {
    let schema_error = |pos: Pos, message: String| IncidentError::Schema {
        origin: ctx.origin.to_string(),
        format: ctx.format,
        pos,
        message,
    };
    let file: IncidentFile = match text {
        Some(Text::Json(t)) => serde_json::from_str(t)
            .map_err(|e| schema_error(json_pos(&e), strip_position(&e.to_string())))?,
        Some(Text::Yaml(t)) => {
            crate::yaml::from_str(t).map_err(|e| schema_error(e.pos, e.message))?
        }
        None => serde_json::from_value(Value::Object(obj.clone()))
            .map_err(|e| schema_error(Pos::UNKNOWN, strip_position(&e.to_string())))?,
    };
    build(ctx, file)
}

fn build(ctx: &Ctx<'_>, file: IncidentFile) -> Result<Incident, IncidentError> {
    let labels: BTreeMap<String, String> = file.labels.into_iter().map(|(k, v)| (k, v.0)).collect();
    let annotations = file
        .annotations
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let title = match file.title {
        Some(t) if t.trim().is_empty() => {
            return Err(ctx.invalid_value("title", &t, "a non-empty string"));
        }
        Some(t) => t,
        None => labels
            .get("alertname")
            .filter(|name| !name.trim().is_empty())
            .cloned()
            .ok_or_else(|| ctx.missing("title"))?,
    };
    let severity_text = file
        .severity
        .map(|s| s.0)
        .or_else(|| labels.get("severity").cloned());
    let (severity, severity_raw) = severity_of(severity_text.as_deref());
    let started_at = match &file.started_at {
        Some(s) => ctx.time_str(s, "started_at")?,
        None => None,
    };
    let ended_at = match &file.ended_at {
        Some(s) => ctx.time_str(s, "ended_at")?,
        None => None,
    };
    let id = match file.id {
        Some(Scalar(id)) if id.trim().is_empty() => {
            return Err(ctx.invalid_value("id", &id, "a non-empty string"));
        }
        Some(Scalar(id)) => id,
        None => derived_id("irctl", &title, &labels),
    };
    let mut out = Incident {
        id,
        title,
        severity,
        severity_raw,
        status: file.status.unwrap_or(Status::Firing),
        acknowledged: false,
        source: ctx.format.as_str().to_string(),
        labels,
        annotations,
        started_at,
        ended_at,
        fingerprint: file.fingerprint.filter(|s| !s.is_empty()),
        url: file.url.filter(|s| !s.is_empty()),
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

    use super::super::{IncidentFormat, Severity, Status, from_value, parse};

    #[test]
    fn unknown_fields_are_rejected_with_position() {
        let err = parse(
            b"title: t\nseverity: high\nlables: {a: b}\n",
            "inc.yaml",
            None,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "invalid irctl payload `inc.yaml` at line 3 column 1: unknown field `lables`"
            ),
            "{msg}"
        );

        // JSON may be any sender's: irctl's file is one format tried of
        // several, with its own reason and position.
        let err = parse(
            b"{\n  \"title\": \"t\",\n  \"colour\": 1\n}",
            "inc.json",
            None,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("could not recognise the incident format of `inc.json`; tried:\n"),
            "{msg}"
        );
        assert!(msg.contains("\n  - irctl at line 3 column "), "{msg}");
        assert!(msg.contains("unknown field `colour`"), "{msg}");
    }

    #[test]
    fn labels_as_a_list_is_a_clear_error() {
        let err = parse(b"title: t\nlabels:\n  - a=b\n", "inc.yaml", None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("invalid irctl payload `inc.yaml` at line 3"),
            "{msg}"
        );
        let err = from_value(json!({"title": "t", "labels": ["a=b"]}), "drill").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid irctl payload `drill`: invalid type: sequence"),
            "{err}"
        );
    }

    #[test]
    fn drill_incidents_may_be_just_labels() {
        let incident = from_value(
            json!({"labels": {"alertname": "PgConnectionsHigh", "severity": "critical", "instance": "db-1", "port": 5432}}),
            "playbooks/pg.yaml",
        )
        .unwrap();
        assert_eq!(incident.title, "PgConnectionsHigh");
        assert_eq!(incident.severity, Severity::Critical);
        assert_eq!(incident.status, Status::Firing);
        assert_eq!(incident.labels["port"], "5432");
        assert!(incident.id.starts_with("irctl-"));
        let again = from_value(
            json!({"labels": {"alertname": "PgConnectionsHigh", "severity": "critical", "instance": "db-1", "port": 5432}}),
            "elsewhere",
        )
        .unwrap();
        assert_eq!(incident.id, again.id, "derived ids are stable");

        let err = from_value(json!({"labels": {"service": "x"}}), "drill").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required field `title` in irctl payload `drill`"
        );
    }

    #[test]
    fn bad_status_and_timestamp() {
        let err = parse(b"title: t\nstatus: burning\n", "i.yaml", None).unwrap_err();
        assert!(err.to_string().contains("`burning`"), "{err}");
        let err = parse(b"title: t\nstarted_at: last tuesday\n", "i.yaml", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid timestamp in `i.yaml`: `started_at` is `last tuesday`, expected RFC 3339 such as `2024-01-01T10:00:00Z`"
        );
    }

    #[test]
    fn forced_irctl_on_an_alertmanager_payload_names_the_stray_field() {
        let err = parse(
            br#"{"receiver": "r", "alerts": []}"#,
            "am.json",
            Some(IncidentFormat::Irctl),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `receiver`"),
            "{err}"
        );
    }
}
