//! The incident as a run or a detection recorded it: the object templates
//! saw (`incident.*`), read back leniently — a field that is missing or of
//! another type reads as empty, because a record may be old or hand-edited
//! and readers must keep working on what is there.

use std::collections::BTreeMap;

use serde_json::Value;

/// An incident read back from an event's `incident` object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordedIncident {
    /// Its id, when recorded.
    pub id: Option<String>,
    /// Its title.
    pub title: String,
    /// Normalised severity.
    pub severity: String,
    /// Severity as the payload said it.
    pub severity_raw: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// The payload's format.
    pub source: String,
    /// Labels (values that were not strings as their JSON text).
    pub labels: BTreeMap<String, String>,
    /// Annotations, likewise.
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    pub ended_at: Option<String>,
    /// The sender's fingerprint.
    pub fingerprint: Option<String>,
    /// A link back to the source.
    pub url: Option<String>,
    /// Its alerts.
    pub alerts: Vec<RecordedAlert>,
    /// The raw payload, when recorded.
    pub raw: Value,
    /// `incident.owner` as the run saw it (null before the service catalog).
    pub owner: Value,
    /// `incident.impacted` as the run saw it (null before the service catalog).
    pub impacted: Value,
}

/// One alert of a [`RecordedIncident`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordedAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    pub starts_at: Option<String>,
    /// When it ended (RFC 3339).
    pub ends_at: Option<String>,
    /// The sender's fingerprint.
    pub fingerprint: Option<String>,
    /// The alert's source link.
    pub generator_url: Option<String>,
    /// Values the alert carried, when any.
    pub values: Option<Value>,
    /// A dashboard link.
    pub dashboard_url: Option<String>,
    /// A link to silence it.
    pub silence_url: Option<String>,
}

fn text(v: &Value, key: &str) -> String {
    opt_text(v, key).unwrap_or_default()
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn map_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl RecordedIncident {
    /// Reads the `incident` object of an event.
    pub fn from_value(v: &Value) -> RecordedIncident {
        let alerts = v
            .get("alerts")
            .and_then(Value::as_array)
            .map(|alerts| alerts.iter().map(RecordedAlert::from_value).collect())
            .unwrap_or_default();
        RecordedIncident {
            id: opt_text(v, "id"),
            title: text(v, "title"),
            severity: text(v, "severity"),
            severity_raw: text(v, "severity_raw"),
            status: text(v, "status"),
            source: text(v, "source"),
            labels: map_of(v.get("labels")),
            annotations: map_of(v.get("annotations")),
            started_at: opt_text(v, "started_at"),
            ended_at: opt_text(v, "ended_at"),
            fingerprint: opt_text(v, "fingerprint"),
            url: opt_text(v, "url"),
            alerts,
            raw: v.get("raw").cloned().unwrap_or(Value::Null),
            owner: v.get("owner").cloned().unwrap_or(Value::Null),
            impacted: v.get("impacted").cloned().unwrap_or(Value::Null),
        }
    }

    /// Every label set it carries: its own, then each alert's.
    pub fn label_sets(&self) -> impl Iterator<Item = &BTreeMap<String, String>> {
        std::iter::once(&self.labels).chain(self.alerts.iter().map(|a| &a.labels))
    }
}

impl RecordedAlert {
    fn from_value(a: &Value) -> RecordedAlert {
        RecordedAlert {
            status: text(a, "status"),
            labels: map_of(a.get("labels")),
            annotations: map_of(a.get("annotations")),
            starts_at: opt_text(a, "starts_at"),
            ends_at: opt_text(a, "ends_at"),
            fingerprint: opt_text(a, "fingerprint"),
            generator_url: opt_text(a, "generator_url"),
            values: a.get("values").filter(|x| !x.is_null()).cloned(),
            dashboard_url: opt_text(a, "dashboard_url"),
            silence_url: opt_text(a, "silence_url"),
        }
    }
}

impl super::RunStarted {
    /// The incident the run was started for.
    pub fn recorded_incident(&self) -> RecordedIncident {
        RecordedIncident::from_value(&self.incident)
    }
}

impl super::Payload {
    /// The incident an event recorded: a run's start, a detection, or a
    /// resolution read from a payload.
    pub fn recorded_incident(&self) -> Option<RecordedIncident> {
        match self {
            super::Payload::RunStarted(p) => Some(p.recorded_incident()),
            super::Payload::Detected(p) => Some(RecordedIncident::from_value(&p.incident)),
            super::Payload::Resolved(p) => p.incident.as_ref().map(RecordedIncident::from_value),
            _ => None,
        }
    }
}
