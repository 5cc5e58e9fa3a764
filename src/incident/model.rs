//! The one incident model every source is normalised into.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    IncidentError, hash_hex, opt_string_value, serialize_time, shown, string_map_value, time_value,
};

/// Normalised severity, most severe first (so `min()` picks the worst).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Wake someone up now.
    Critical,
    /// Serious, needs attention soon.
    High,
    /// Degraded or at risk; also the level for anything unrecognised.
    Warning,
    /// Informational.
    Info,
}

impl Severity {
    /// The lowercase name used in labels, templates and output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Maps a source's severity text (`crit`, `P1`, `sev-2`, `average`, …) to a level.
    ///
    /// Case, surrounding whitespace and `-`, `_`, `.` and inner spaces are
    /// ignored. Anything unrecognised — including an empty string — becomes
    /// [`Severity::Warning`]: an unknown severity must not silently downgrade a
    /// real page to `info`, and `critical` is reserved for sources that say so.
    pub fn normalise(raw: &str) -> Severity {
        let key: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "page"
            | "disaster" | "blocker" | "p0" | "p1" | "sev0" | "sev1" => Severity::Critical,
            "error" | "err" | "high" | "major" | "severe" | "p2" | "sev2" => Severity::High,
            "warning" | "warn" | "medium" | "minor" | "average" | "moderate" | "p3" | "sev3" => {
                Severity::Warning
            }
            "info" | "informational" | "information" | "low" | "notice" | "debug" | "trace"
            | "none" | "ok" | "trivial" | "notclassified" | "p4" | "p5" | "sev4" | "sev5" => {
                Severity::Info
            }
            _ => Severity::Warning,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the incident is still happening.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ongoing (PagerDuty's triggered and acknowledged count as firing).
    Firing,
    /// Over.
    Resolved,
}

impl Status {
    /// The lowercase name used in labels, templates and output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload format irctl can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentFormat {
    /// Prometheus Alertmanager webhook (`version: "4"`).
    Alertmanager,
    /// Grafana unified alerting webhook contact point.
    Grafana,
    /// PagerDuty V3 webhook (`{"event": {...}}`).
    PagerdutyWebhook,
    /// PagerDuty Events API v2 event (`event_action`, `payload`).
    PagerdutyEvent,
    /// CloudEvents 1.0 in the JSON event format.
    Cloudevents,
    /// irctl's own incident file, JSON or YAML.
    Irctl,
}

impl IncidentFormat {
    /// Every format, in the order detection tries them.
    pub const ALL: &[IncidentFormat] = &[
        IncidentFormat::Alertmanager,
        IncidentFormat::Grafana,
        IncidentFormat::PagerdutyWebhook,
        IncidentFormat::PagerdutyEvent,
        IncidentFormat::Cloudevents,
        IncidentFormat::Irctl,
    ];

    /// The name used by `--incident-format`, in messages and as an incident's `source`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentFormat::Alertmanager => "alertmanager",
            IncidentFormat::Grafana => "grafana",
            IncidentFormat::PagerdutyWebhook => "pagerduty-webhook",
            IncidentFormat::PagerdutyEvent => "pagerduty-event",
            IncidentFormat::Cloudevents => "cloudevents",
            IncidentFormat::Irctl => "irctl",
        }
    }

    /// What a payload must contain to be read as this format (for forced-format errors).
    pub(super) fn requirement(self) -> &'static str {
        match self {
            IncidentFormat::Alertmanager => {
                "it needs an object with an `alerts` array (Alertmanager webhook, `version: \"4\"`)"
            }
            IncidentFormat::Grafana => {
                "it needs an object with an `alerts` array (Grafana alerting webhook)"
            }
            IncidentFormat::PagerdutyWebhook => {
                "it needs an object with an `event` object holding `event_type` and `data` (PagerDuty V3 webhook)"
            }
            IncidentFormat::PagerdutyEvent => {
                "it needs an object with `event_action` (`trigger`, `acknowledge` or `resolve`) and `payload` (PagerDuty Events API v2)"
            }
            IncidentFormat::Cloudevents => {
                "it needs an object with `specversion: \"1.0\"`, `id`, `source` and `type` (CloudEvents JSON format)"
            }
            IncidentFormat::Irctl => {
                "it needs a mapping with `title` and optional `id`, `severity`, `status`, `labels`, `annotations`, `started_at`, `url` (irctl incident file)"
            }
        }
    }
}

impl fmt::Display for IncidentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentFormat {
    type Err = IncidentError;

    /// Parses a format name as listed in [`IncidentFormat::ALL`], ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        IncidentFormat::ALL
            .iter()
            .copied()
            .find(|f| f.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| IncidentError::UnknownFormatName {
                name: shown(s),
                supported: super::supported(),
            })
    }
}

/// One incident, whatever format it arrived in.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    /// Stable identity: Alertmanager `groupKey`, PagerDuty incident id or
    /// `dedup_key`, CloudEvents `id`, the irctl file's `id`; otherwise a hash
    /// of title and labels. May contain any characters; see [`Incident::file_safe_id`].
    pub id: String,
    /// One line for humans; untrusted text.
    pub title: String,
    /// Normalised severity.
    pub severity: Severity,
    /// The severity as the source wrote it (empty when it gave none).
    pub severity_raw: String,
    /// Firing or resolved.
    pub status: Status,
    /// The sender says someone acknowledged it: still ongoing, but it
    /// starts no remediation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub acknowledged: bool,
    /// The [`IncidentFormat`] name, or `adhoc` for incidents built from flags.
    pub source: String,
    /// Labels (untrusted values, kept verbatim).
    pub labels: BTreeMap<String, String>,
    /// Annotations (untrusted values, kept verbatim).
    pub annotations: BTreeMap<String, String>,
    /// When it started, if the source said.
    #[serde(serialize_with = "serialize_time")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended, only once resolved.
    #[serde(serialize_with = "serialize_time")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The source's fingerprint or dedup key for a single alert.
    pub fingerprint: Option<String>,
    /// A link back to the source.
    pub url: Option<String>,
    /// The individual alerts; formats without alert groups get one alert
    /// mirroring the incident, so templates can always iterate.
    pub alerts: Vec<Alert>,
    /// The payload as received.
    pub raw: Value,
    /// Who owns it and what it impacts, from the service catalog
    /// (`incident.owner`, `incident.impacted`); set by the caller before a run.
    #[serde(skip)]
    pub ownership: Option<std::sync::Arc<crate::catalog::Ownership>>,
}

/// One alert inside an incident.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    /// Firing or resolved.
    pub status: Status,
    /// The alert's own labels.
    pub labels: BTreeMap<String, String>,
    /// The alert's own annotations.
    pub annotations: BTreeMap<String, String>,
    /// When the alert started.
    #[serde(serialize_with = "serialize_time")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When the alert ended (never Alertmanager's `0001-01-01` placeholder).
    #[serde(serialize_with = "serialize_time")]
    pub ends_at: Option<DateTime<Utc>>,
    /// The source's fingerprint for this alert.
    pub fingerprint: Option<String>,
    /// The link to the rule or query that produced the alert.
    pub generator_url: Option<String>,
    /// Grafana's evaluated values (`values`, or `valueString` as a string).
    pub values: Option<Value>,
    /// Grafana's dashboard link.
    pub dashboard_url: Option<String>,
    /// Grafana's link to silence this alert.
    pub silence_url: Option<String>,
}

impl Incident {
    /// When the newest of its firing alerts started (its own start when no
    /// alert says): a re-fire starts after the resolution it follows, a
    /// late copy of a resolved incident does not.
    pub fn newest_firing_start(&self) -> Option<DateTime<Utc>> {
        self.alerts
            .iter()
            .filter(|a| a.status == Status::Firing)
            .filter_map(|a| a.starts_at)
            .max()
            .or(self.started_at)
    }

    /// The id made safe for file and directory names ([`file_safe_id`]).
    pub fn file_safe_id(&self) -> String {
        file_safe_id(&self.id)
    }

    /// Credentials carried inside the payload: only a sender's own, at its
    /// documented place (the top-level `routing_key` of a PagerDuty Events
    /// API v2 event, bare or as a CloudEvent's `data`). Each becomes a
    /// redaction pattern, so a `routing_key` anywhere else, or one too short
    /// or common to be a key, is not one: a payload must never be able to
    /// mask words such as `failed` in the record.
    /// `raw` keeps the payload as received; whoever writes it out must redact these.
    pub fn credentials(&self) -> Vec<crate::secret::Secret> {
        super::pagerduty::routing_key(&self.source, &self.raw)
            .filter(|key| crate::secret::is_strong(key))
            .map(crate::secret::Secret::new)
            .into_iter()
            .collect()
    }

    /// The labels matchers see: the incident's labels plus `severity`,
    /// `status` and `source`, each added only when no label of that name exists.
    pub fn match_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        for (name, value) in [
            ("severity", self.severity.as_str()),
            ("status", self.status.as_str()),
            ("source", self.source.as_str()),
        ] {
            labels
                .entry(name.to_string())
                .or_insert_with(|| value.to_string());
        }
        labels
    }

    /// The `incident` object templates see: every field, timestamps as RFC 3339
    /// UTC with milliseconds (or null), `alerts` as an array and `raw` as received.
    pub fn to_template_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("title".into(), Value::String(self.title.clone()));
        m.insert(
            "severity".into(),
            Value::String(self.severity.as_str().into()),
        );
        m.insert(
            "severity_raw".into(),
            Value::String(self.severity_raw.clone()),
        );
        m.insert("status".into(), Value::String(self.status.as_str().into()));
        m.insert("source".into(), Value::String(self.source.clone()));
        m.insert("labels".into(), string_map_value(&self.labels));
        m.insert("annotations".into(), string_map_value(&self.annotations));
        m.insert("started_at".into(), time_value(self.started_at));
        m.insert("ended_at".into(), time_value(self.ended_at));
        m.insert("fingerprint".into(), opt_string_value(&self.fingerprint));
        m.insert("url".into(), opt_string_value(&self.url));
        m.insert(
            "alerts".into(),
            Value::Array(self.alerts.iter().map(Alert::to_template_value).collect()),
        );
        if let [only] = self.alerts.as_slice() {
            m.insert("alert".into(), only.to_template_value());
        }
        m.insert("raw".into(), self.raw.clone());
        let (owner, impacted) = match &self.ownership {
            Some(o) => o.template_values(),
            None => (Value::Null, Value::Array(Vec::new())),
        };
        m.insert("owner".into(), owner);
        m.insert("impacted".into(), impacted);
        Value::Object(m)
    }

    /// The incident a per-alert run responds to: this one narrowed to its
    /// alert `index`. It keeps the incident's id, source and payload; its
    /// labels and annotations are the group's common ones overlaid with the
    /// alert's own, and its status, severity, times, fingerprint and single
    /// entry in `alerts` (so `incident.alert`) are the alert's.
    pub fn for_alert(&self, index: usize) -> Option<Incident> {
        let mut view = self.alert_view(index)?;
        view.raw = self.raw.clone();
        Some(view)
    }

    /// [`Incident::for_alert`] without the payload (`raw` is null), for
    /// matching, which shares one copy of the payload between every alert.
    pub(crate) fn alert_view(&self, index: usize) -> Option<Incident> {
        let alert = self.alerts.get(index)?;
        let mut labels = self.labels.clone();
        labels.extend(alert.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut annotations = self.annotations.clone();
        annotations.extend(
            alert
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let (severity, severity_raw) = match labels.get("severity") {
            Some(raw) => (Severity::normalise(raw), raw.clone()),
            None => (self.severity, self.severity_raw.clone()),
        };
        let title = ["summary", "title"]
            .iter()
            .filter_map(|k| annotations.get(*k))
            .chain(labels.get("alertname"))
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| self.title.clone());
        let merged = Alert {
            labels: labels.clone(),
            annotations: annotations.clone(),
            ..alert.clone()
        };
        Some(Incident {
            id: self.id.clone(),
            title,
            severity,
            severity_raw,
            status: alert.status,
            acknowledged: self.acknowledged,
            source: self.source.clone(),
            labels,
            annotations,
            started_at: alert.starts_at.or(self.started_at),
            ended_at: alert.ends_at.filter(|_| alert.status == Status::Resolved),
            fingerprint: alert.fingerprint.clone(),
            url: alert.generator_url.clone().or_else(|| self.url.clone()),
            alerts: vec![merged],
            raw: Value::Null,
            ownership: self.ownership.clone(),
        })
    }

    /// What tells this incident's one alert apart from the others of its
    /// group: the sender's fingerprint, else a hash of the alert's labels.
    /// `None` for an incident of several alerts. Per-alert runs are told
    /// apart (and deduplicated) by it.
    pub fn alert_key(&self) -> Option<String> {
        match self.alerts.as_slice() {
            [only] => Some(only.key()),
            _ => None,
        }
    }
}

/// The fields of [`Incident::to_template_value`]: what templates may read
/// as `incident.*` (validate rejects any other).
pub const TEMPLATE_FIELDS: &[&str] = &[
    "id",
    "title",
    "severity",
    "severity_raw",
    "status",
    "source",
    "labels",
    "annotations",
    "started_at",
    "ended_at",
    "fingerprint",
    "url",
    "alerts",
    "alert",
    "raw",
    "owner",
    "impacted",
];

/// The fields a run adds to `incident` in its templates: whether, and
/// when, the incident resolved, also while the run was in flight.
pub const RUN_FIELDS: &[&str] = &["resolved", "resolved_at"];

impl Alert {
    /// The sender's fingerprint, else `labels-` and a hash of the labels
    /// (Alertmanager's own fingerprint is a hash of the labels, too).
    pub fn key(&self) -> String {
        alert_key_of(self.fingerprint.as_deref(), &self.labels)
    }

    fn to_template_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), Value::String(self.status.as_str().into()));
        m.insert("labels".into(), string_map_value(&self.labels));
        m.insert("annotations".into(), string_map_value(&self.annotations));
        m.insert("starts_at".into(), time_value(self.starts_at));
        m.insert("ends_at".into(), time_value(self.ends_at));
        m.insert("fingerprint".into(), opt_string_value(&self.fingerprint));
        m.insert(
            "generator_url".into(),
            opt_string_value(&self.generator_url),
        );
        m.insert("values".into(), self.values.clone().unwrap_or(Value::Null));
        m.insert(
            "dashboard_url".into(),
            opt_string_value(&self.dashboard_url),
        );
        m.insert("silence_url".into(), opt_string_value(&self.silence_url));
        Value::Object(m)
    }

    /// The single alert of a format without alert groups, mirroring the incident.
    pub(super) fn mirror(incident: &Incident) -> Alert {
        Alert {
            status: incident.status,
            labels: incident.labels.clone(),
            annotations: incident.annotations.clone(),
            starts_at: incident.started_at,
            ends_at: incident.ended_at,
            fingerprint: incident.fingerprint.clone(),
            generator_url: incident.url.clone(),
            values: None,
            dashboard_url: None,
            silence_url: None,
        }
    }
}

/// An incident id made safe for file and directory names.
///
/// Keeps ASCII letters, digits, `-`, `_` and `.`, replaces every other run
/// of characters with one `_`, strips leading `.`/`-`/`_` and trailing
/// `.`/`_`, and caps the length at 80. If anything changed, a short
/// SHA-256 of the original id is appended so distinct ids stay distinct.
pub fn file_safe_id(id: &str) -> String {
    const MAX: usize = 80;
    const HASH: usize = 12;
    let mut cleaned = String::with_capacity(id.len().min(MAX));
    let mut replaced = false;
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            cleaned.push(c);
            replaced = false;
        } else if !replaced {
            cleaned.push('_');
            replaced = true;
        }
    }
    let trimmed = cleaned
        .trim_start_matches(['.', '-', '_'])
        .trim_end_matches(['.', '_']);
    if !trimmed.is_empty() && trimmed == id && trimmed.len() <= MAX {
        return id.to_string();
    }
    let base = if trimmed.is_empty() {
        "incident"
    } else {
        trimmed
    };
    // `base` is ASCII, so any byte index is a char boundary.
    let base = &base[..base.len().min(MAX - 1 - HASH)];
    let hash = hash_hex([id]);
    format!("{base}-{}", &hash[..HASH])
}

/// An alert's key from its fingerprint and (merged) labels, as
/// [`Alert::key`] makes it; also read back from a recorded run.
pub fn alert_key_of(fingerprint: Option<&str>, labels: &BTreeMap<String, String>) -> String {
    match fingerprint {
        Some(fp) => fp.to_string(),
        None => format!(
            "labels-{}",
            &hash_hex(labels.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))[..16]
        ),
    }
}
