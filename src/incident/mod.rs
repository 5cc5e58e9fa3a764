//! Incidents: what irctl responds to, normalised from whatever paged.
//!
//! An incident arrives as an Alertmanager or Grafana webhook, a PagerDuty V3
//! webhook or Events API v2 event, a CloudEvent, or irctl's own small JSON or
//! YAML file — or is made up from `--label` flags. Matching, templates, the
//! timeline and postmortems all see one [`Incident`], so a playbook does not
//! care which system sent the alert.
//!
//! Parsing is strict about shape and neutral about content. A wrong type is
//! an error naming the file, the field's path and what was expected; label
//! values are untrusted data, stored verbatim as plain strings and never
//! interpreted here — escaping happens where they are rendered.
//!
//! One file per source: `alertmanager.rs` (also Grafana, which reuses the
//! envelope), `pagerduty.rs` (V3 webhooks and Events API v2),
//! `cloudevents.rs` and `irctl.rs`. `field.rs` holds the typed, path-aware
//! field access they share and `timestamp.rs` the one lenient timestamp
//! parser they all use.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::yaml::Pos;

mod alertmanager;
mod cloudevents;
mod field;
mod irctl;
mod pagerduty;
mod timestamp;

use field::{Ctx, Object};

/// The largest incident payload irctl reads; real webhooks are kilobytes.
pub const MAX_INCIDENT_BYTES: usize = 10 * 1024 * 1024;

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
    fn requirement(self) -> &'static str {
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
            .ok_or_else(|| IncidentError::UnknownFormatName { name: shown(s) })
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
    /// The id made safe for file and directory names.
    ///
    /// Keeps ASCII letters, digits, `-`, `_` and `.`, replaces every other run
    /// of characters with one `_`, strips leading `.`/`-`/`_` and trailing
    /// `.`/`_`, and caps the length at 80. If anything changed, a short
    /// SHA-256 of the original id is appended so distinct ids stay distinct.
    pub fn file_safe_id(&self) -> String {
        const MAX: usize = 80;
        const HASH: usize = 12;
        let mut cleaned = String::with_capacity(self.id.len().min(MAX));
        let mut replaced = false;
        for c in self.id.chars() {
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
        if !trimmed.is_empty() && trimmed == self.id && trimmed.len() <= MAX {
            return self.id.clone();
        }
        let base = if trimmed.is_empty() {
            "incident"
        } else {
            trimmed
        };
        // `base` is ASCII, so any byte index is a char boundary.
        let base = &base[..base.len().min(MAX - 1 - HASH)];
        let hash = hash_hex([self.id.as_str()]);
        format!("{base}-{}", &hash[..HASH])
    }

    /// Credentials carried inside the payload (PagerDuty Events API
    /// `routing_key`, at any depth, so a CloudEvents-wrapped event counts too).
    /// `raw` keeps the payload as received; whoever writes it out must redact these.
    pub fn credentials(&self) -> Vec<crate::secret::Secret> {
        fn walk(v: &Value, out: &mut Vec<crate::secret::Secret>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("routing_key", Value::String(key)) => {
                                out.push(crate::secret::Secret::new(key.clone()));
                            }
                            _ => walk(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.raw, &mut out);
        out
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
        m.insert("raw".into(), self.raw.clone());
        Value::Object(m)
    }
}

impl Alert {
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
    fn mirror(incident: &Incident) -> Alert {
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

/// Why an incident could not be read. Every message names the origin.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The file or stdin could not be read.
    // The I/O error is part of the message, not a `source`, so printers
    // that walk the cause chain do not say it twice.
    #[error("cannot read incident `{origin}`: {error}")]
    Io {
        /// File path or `<stdin>`.
        origin: String,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// The payload exceeds [`MAX_INCIDENT_BYTES`].
    #[error(
        "incident `{origin}` is larger than the {} MiB limit ({MAX_INCIDENT_BYTES} bytes)",
        MAX_INCIDENT_BYTES / (1024 * 1024)
    )]
    TooLarge {
        /// File path or `<stdin>`.
        origin: String,
    },
    /// The payload is not UTF-8.
    #[error("incident `{origin}` is not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 {
        /// File path or `<stdin>`.
        origin: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The payload is empty or only whitespace.
    #[error("incident `{origin}` is empty")]
    Empty {
        /// File path or `<stdin>`.
        origin: String,
    },
    /// Not well-formed JSON or YAML.
    #[error("invalid {syntax} in `{origin}`{}: {message}", at(*.pos))]
    Syntax {
        /// File path or `<stdin>`.
        origin: String,
        /// `JSON` or `YAML`.
        syntax: &'static str,
        /// Where the parser stopped.
        pos: Pos,
        /// The parser's description, without position.
        message: String,
    },
    /// Detection found no known format.
    #[error(
        "could not recognise the incident format of `{origin}`; supported: {}",
        supported()
    )]
    UnrecognisedFormat {
        /// File path or `<stdin>`.
        origin: String,
    },
    /// `--incident-format` named no known format.
    #[error("unknown incident format `{name}`; supported: {}", supported())]
    UnknownFormatName {
        /// The name as given.
        name: String,
    },
    /// A forced format does not fit the payload.
    #[error("`{origin}` does not match incident format `{format}`: {}", .format.requirement())]
    FormatMismatch {
        /// File path or `<stdin>`.
        origin: String,
        /// The forced format.
        format: IncidentFormat,
    },
    /// A required field is absent.
    #[error("missing required field `{field}` in {format} payload `{origin}`")]
    MissingField {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the field, e.g. `alerts[0].labels`.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("invalid {format} payload `{origin}`: `{field}` must be {expected}, found {found}")]
    WrongType {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the field.
        field: String,
        /// What the format requires.
        expected: &'static str,
        /// What the payload has.
        found: &'static str,
    },
    /// A field has a value the format does not allow.
    #[error("invalid {format} payload `{origin}`: `{field}` is `{value}`, expected {expected}")]
    InvalidValue {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the field.
        field: String,
        /// The value, escaped and shortened for display.
        value: String,
        /// What the format allows.
        expected: String,
    },
    /// A timestamp that the lenient parser could not read.
    #[error(
        "invalid timestamp in `{origin}`: `{field}` is `{value}`, expected RFC 3339 such as `2024-01-01T10:00:00Z`"
    )]
    Timestamp {
        /// File path or `<stdin>`.
        origin: String,
        /// Path of the field.
        field: String,
        /// The value, escaped and shortened for display.
        value: String,
    },
    /// An alert group with no alerts.
    #[error("{format} payload `{origin}` has no alerts; `{field}` needs at least one entry")]
    NoAlerts {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the alerts array.
        field: String,
    },
    /// The payload does not fit the format's schema (irctl files: unknown
    /// field, wrong type), with a position when the text is known.
    #[error("invalid {format} payload `{origin}`{}: {message}", at(*.pos))]
    Schema {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Where, or [`Pos::UNKNOWN`].
        pos: Pos,
        /// What is wrong.
        message: String,
    },
    /// A well-formed payload of a kind irctl does not respond to.
    #[error("unsupported {format} payload `{origin}`: {message}")]
    Unsupported {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Why.
        message: String,
    },
}

fn at(pos: Pos) -> String {
    if pos.line > 0 {
        format!(" at line {} column {}", pos.line, pos.column)
    } else {
        String::new()
    }
}

fn supported() -> String {
    IncidentFormat::ALL
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Untrusted text made safe to quote in a one-line message: control
/// characters escaped, at most 100 characters.
pub(crate) fn shown(raw: &str) -> String {
    const LIMIT: usize = 100;
    let mut out: String = raw
        .chars()
        .take(LIMIT)
        .flat_map(char::escape_debug)
        .collect();
    if raw.chars().nth(LIMIT).is_some() {
        out.push('…');
    }
    out
}

/// Parses payload bytes; `origin` names the source in messages; `format`
/// `None` detects the format from the payload.
///
/// A UTF-8 BOM is ignored. Text is read as JSON when `origin` ends in
/// `.json` or (without a `.yaml`/`.yml` extension) the first non-blank
/// character is `{` or `[`; otherwise as YAML.
pub fn parse(
    bytes: &[u8],
    origin: &str,
    format: Option<IncidentFormat>,
) -> Result<Incident, IncidentError> {
    if bytes.len() > MAX_INCIDENT_BYTES {
        return Err(IncidentError::TooLarge {
            origin: origin.to_string(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| IncidentError::NotUtf8 {
        origin: origin.to_string(),
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(IncidentError::Empty {
            origin: origin.to_string(),
        });
    }
    if reads_as_json(origin, text) {
        let value: Value = serde_json::from_str(text).map_err(|e| json_error(origin, &e))?;
        from_document(value, origin, format, Some(Text::Json(text)))
    } else {
        let value: Value = crate::yaml::from_str(text).map_err(|e| IncidentError::Syntax {
            origin: origin.to_string(),
            syntax: "YAML",
            pos: e.pos,
            message: e.message,
        })?;
        from_document(value, origin, format, Some(Text::Yaml(text)))
    }
}

/// Reads an incident from a file, or from stdin when `path` is `-`, never
/// holding more than [`MAX_INCIDENT_BYTES`] + 1 bytes in memory.
pub fn read(path: &Path, format: Option<IncidentFormat>) -> Result<Incident, IncidentError> {
    let stdin = path == Path::new("-");
    let origin = if stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let io_error = |error| IncidentError::Io {
        origin: origin.clone(),
        error,
    };
    let bytes = if stdin {
        read_limited(std::io::stdin().lock()).map_err(io_error)?
    } else {
        let file = std::fs::File::open(path).map_err(io_error)?;
        read_limited(file).map_err(io_error)?
    };
    parse(&bytes, &origin, format)
}

fn read_limited(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INCIDENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Builds an ad hoc incident from CLI flags: status firing, source `adhoc`,
/// started now. The title defaults to the `alertname` label, the severity to
/// the `severity` label; the id is a hash of title and labels.
pub fn from_flags(
    labels: &[(String, String)],
    title: Option<&str>,
    severity: Option<&str>,
) -> Incident {
    let labels: BTreeMap<String, String> = labels.iter().cloned().collect();
    let title = title
        .filter(|t| !t.trim().is_empty())
        .map(str::to_string)
        .or_else(|| labels.get("alertname").cloned())
        .unwrap_or_else(|| "ad hoc incident".to_string());
    let severity_raw = severity
        .map(str::to_string)
        .or_else(|| labels.get("severity").cloned())
        .unwrap_or_default();
    let mut raw = Map::new();
    raw.insert("title".into(), Value::String(title.clone()));
    raw.insert("severity".into(), Value::String(severity_raw.clone()));
    raw.insert("labels".into(), string_map_value(&labels));
    let mut incident = Incident {
        id: derived_id("adhoc", &title, &labels),
        title,
        severity: Severity::normalise(&severity_raw),
        severity_raw,
        status: Status::Firing,
        source: "adhoc".to_string(),
        labels,
        annotations: BTreeMap::new(),
        started_at: Some(Utc::now()),
        ended_at: None,
        fingerprint: None,
        url: None,
        alerts: Vec::new(),
        raw: Value::Object(raw),
    };
    incident.alerts.push(Alert::mirror(&incident));
    incident
}

/// Parses a `--label key=value` flag. The key must match
/// `[a-zA-Z_][a-zA-Z0-9_]*`; the value is everything after the first `=`.
pub fn parse_label_flag(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("expected `key=value`, found `{}`", shown(s)));
    };
    if !is_label_name(key) {
        return Err(format!(
            "invalid label name `{}`: it must match `[a-zA-Z_][a-zA-Z0-9_]*`",
            shown(key)
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Builds an incident from an already-parsed value (a playbook's
/// `drill.incident`), detecting the format as [`parse`] does. Errors carry
/// no line or column; the caller knows where the value was written.
pub fn from_value(value: Value, origin: &str) -> Result<Incident, IncidentError> {
    from_document(value, origin, None, None)
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The source text a value was parsed from, so the irctl format can
/// re-read it for errors with line and column.
#[derive(Clone, Copy)]
enum Text<'t> {
    Json(&'t str),
    Yaml(&'t str),
}

fn reads_as_json(origin: &str, text: &str) -> bool {
    let ext = Path::new(origin)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => true,
        Some("yaml" | "yml") => false,
        _ => text.trim_start().starts_with(['{', '[']),
    }
}

fn json_error(origin: &str, e: &serde_json::Error) -> IncidentError {
    IncidentError::Syntax {
        origin: origin.to_string(),
        syntax: "JSON",
        pos: json_pos(e),
        message: strip_position(&e.to_string()),
    }
}

fn json_pos(e: &serde_json::Error) -> Pos {
    if e.line() == 0 {
        return Pos::UNKNOWN;
    }
    Pos::new(
        u32::try_from(e.line()).unwrap_or(u32::MAX),
        u32::try_from(e.column()).unwrap_or(u32::MAX),
    )
}

/// serde_json appends " at line X column Y"; positions are printed separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn from_document(
    value: Value,
    origin: &str,
    forced: Option<IncidentFormat>,
    text: Option<Text<'_>>,
) -> Result<Incident, IncidentError> {
    let mismatch = |format| IncidentError::FormatMismatch {
        origin: origin.to_string(),
        format,
    };
    let unrecognised = || IncidentError::UnrecognisedFormat {
        origin: origin.to_string(),
    };
    let Some(obj) = value.as_object() else {
        return Err(forced.map_or_else(unrecognised, mismatch));
    };
    let format = match forced {
        Some(format) if fits(format, obj) => format,
        Some(format) => return Err(mismatch(format)),
        None => detect(obj).ok_or_else(unrecognised)?,
    };
    let mut incident = parse_object(&Ctx::new(origin, format), obj, text)?;
    incident.raw = value;
    Ok(incident)
}

/// Detection, in an order where no two formats claim the same payload:
/// CloudEvents' `specversion` and PagerDuty's `event`/`event_action` are
/// names the alert-group formats never use; among payloads with `alerts`,
/// Grafana adds `orgId`, `state` or `title`; what is left with `title` or
/// `labels` is irctl's own file.
fn detect(obj: &Object) -> Option<IncidentFormat> {
    let has = |key: &str| obj.contains_key(key);
    if has("specversion") {
        Some(IncidentFormat::Cloudevents)
    } else if obj.get("event").is_some_and(Value::is_object) {
        Some(IncidentFormat::PagerdutyWebhook)
    } else if has("event_action") {
        Some(IncidentFormat::PagerdutyEvent)
    } else if has("alerts") {
        if has("orgId") || has("state") || has("title") {
            Some(IncidentFormat::Grafana)
        } else {
            Some(IncidentFormat::Alertmanager)
        }
    } else if has("title") || has("labels") {
        Some(IncidentFormat::Irctl)
    } else {
        None
    }
}

/// Whether a forced format can be attempted on this object at all.
fn fits(format: IncidentFormat, obj: &Object) -> bool {
    match format {
        IncidentFormat::Alertmanager | IncidentFormat::Grafana => obj.contains_key("alerts"),
        IncidentFormat::PagerdutyWebhook => obj.get("event").is_some_and(Value::is_object),
        IncidentFormat::PagerdutyEvent => obj.contains_key("event_action"),
        IncidentFormat::Cloudevents => obj.contains_key("specversion"),
        IncidentFormat::Irctl => true,
    }
}

/// Reads `obj` as `ctx.format`; `raw` is left null for the caller to fill.
fn parse_object(
    ctx: &Ctx<'_>,
    obj: &Object,
    text: Option<Text<'_>>,
) -> Result<Incident, IncidentError> {
    match ctx.format {
        IncidentFormat::Alertmanager | IncidentFormat::Grafana => alertmanager::parse(ctx, obj),
        IncidentFormat::PagerdutyWebhook => pagerduty::parse_webhook(ctx, obj),
        IncidentFormat::PagerdutyEvent => pagerduty::parse_event(ctx, obj),
        IncidentFormat::Cloudevents => cloudevents::parse(ctx, obj),
        IncidentFormat::Irctl => irctl::parse(ctx, obj, text),
    }
}

/// A stable id from title and labels: `<prefix>-<16 hex digits of SHA-256>`.
fn derived_id(prefix: &str, title: &str, labels: &BTreeMap<String, String>) -> String {
    let parts =
        std::iter::once(title).chain(labels.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
    format!("{prefix}-{}", &hash_hex(parts)[..16])
}

/// Hex SHA-256 over length-prefixed parts, so `["ab", "c"]` and `["a", "bc"]` differ.
fn hash_hex<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// `(severity, severity_raw)` from an optional source text.
fn severity_of(raw: Option<&str>) -> (Severity, String) {
    let raw = raw.unwrap_or_default();
    (Severity::normalise(raw), raw.to_string())
}

fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn time_value(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_time(t)))
}

fn serialize_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_time(*t)),
        None => s.serialize_none(),
    }
}

fn string_map_value(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn opt_string_value(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn fixture_path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("examples/incidents")
            .join(name)
    }

    fn fixture(name: &str) -> Incident {
        match read(&fixture_path(name), None) {
            Ok(incident) => incident,
            Err(e) => panic!("{name}: {e}"),
        }
    }

    fn time(t: Option<DateTime<Utc>>) -> String {
        t.map(format_time).unwrap_or_else(|| "none".into())
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn alertmanager_firing_fixture() {
        let i = fixture("alertmanager-firing.json");
        assert_eq!(i.source, "alertmanager");
        assert_eq!(i.id, r#"{}:{alertname="HighRequestLatency"}"#);
        assert_eq!(i.title, "High request latency (2 alerts)");
        assert_eq!(
            (i.severity, i.severity_raw.as_str()),
            (Severity::Critical, "page")
        );
        assert_eq!(i.status, Status::Firing);
        assert_eq!(
            i.labels,
            labels(&[
                ("alertname", "HighRequestLatency"),
                ("job", "myjob"),
                ("severity", "page")
            ])
        );
        assert_eq!(
            time(i.started_at),
            "2024-05-14T09:02:31.482Z",
            "earliest, offset applied"
        );
        assert_eq!(time(i.ended_at), "none");
        assert_eq!(i.fingerprint, None, "two alerts have no single fingerprint");
        assert_eq!(
            i.url.as_deref(),
            Some("http://alertmanager.example.com:9093")
        );
        assert_eq!(i.alerts.len(), 2);
        assert_eq!(i.alerts[1].fingerprint.as_deref(), Some("9a0f3c77d2e14b58"));
        assert!(
            i.alerts.iter().all(|a| a.ends_at.is_none()),
            "0001-01-01 means not ended"
        );
        assert!(
            i.alerts[0]
                .generator_url
                .as_deref()
                .is_some_and(|u| u.contains("&g0.tab=1"))
        );
        assert_eq!(i.raw["receiver"], "irctl");
    }

    #[test]
    fn alertmanager_resolved_fixture() {
        let i = fixture("alertmanager-resolved.json");
        assert_eq!(
            i.id,
            r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#
        );
        assert_eq!(
            i.title,
            "BlackBox Probe Failure: https://server.example.org"
        );
        assert_eq!(i.severity, Severity::Critical);
        assert_eq!(i.status, Status::Resolved);
        assert_eq!(time(i.started_at), "2023-02-06T13:08:45.828Z");
        assert_eq!(time(i.ended_at), "2023-02-06T13:21:45.828Z");
        assert_eq!(i.fingerprint.as_deref(), Some("1a30ba71cca2921f"));
        assert_eq!(i.labels["instance"], "https://server.example.org");
    }

    #[test]
    fn grafana_fixture() {
        let i = fixture("grafana-firing.json");
        assert_eq!(i.source, "grafana");
        assert_eq!(i.id, "{}:{}");
        assert_eq!(i.title, "[FIRING:2]  (blue)");
        assert_eq!(
            (i.severity, i.severity_raw.as_str()),
            (Severity::Warning, "")
        );
        assert_eq!(i.status, Status::Firing);
        assert_eq!(i.labels, labels(&[("team", "blue")]));
        assert!(i.annotations.is_empty());
        assert_eq!(time(i.started_at), "2021-10-12T07:51:03.157Z");
        assert_eq!(i.url.as_deref(), Some("https://play.grafana.org/"));
        let first = &i.alerts[0];
        assert_eq!(first.values, Some(json!({"B": 44.23943737541908, "C": 1})));
        assert_eq!(first.dashboard_url, None, "empty links are absent");
        assert!(
            first
                .silence_url
                .as_deref()
                .is_some_and(|u| u.contains("alertmanager=grafana"))
        );
    }

    #[test]
    fn pagerduty_webhook_fixture() {
        let i = fixture("pagerduty-v3-triggered.json");
        assert_eq!(i.source, "pagerduty-webhook");
        assert_eq!(i.id, "PGR0VU2");
        assert_eq!(i.title, "A little bump in the road");
        assert_eq!(
            (i.severity, i.severity_raw.as_str()),
            (Severity::Critical, "P1")
        );
        assert_eq!(i.status, Status::Firing);
        assert_eq!(
            i.labels,
            labels(&[
                ("event_type", "incident.triggered"),
                ("priority", "P1"),
                ("service", "API Service"),
                ("urgency", "high"),
            ])
        );
        assert_eq!(time(i.started_at), "2020-04-09T15:16:27.000Z");
        assert_eq!(
            i.url.as_deref(),
            Some("https://acme.pagerduty.com/incidents/PGR0VU2")
        );
        assert_eq!(
            i.fingerprint.as_deref(),
            Some("d3640fbd41094207a1c11e58e46b1662")
        );
        assert_eq!(i.alerts.len(), 1);
    }

    #[test]
    fn pagerduty_event_fixture() {
        let i = fixture("pagerduty-events-v2-trigger.json");
        let routing_key = "e93facc04764012d7bfb002500d5d1a6";
        assert_eq!(i.source, "pagerduty-event");
        assert_eq!(i.id, "host1.example.com/postgres/deploy");
        assert_eq!(i.title, "Example alert on host1.example.com");
        assert_eq!(
            (i.severity, i.severity_raw.as_str()),
            (Severity::Info, "info")
        );
        assert_eq!(i.status, Status::Firing);
        assert_eq!(
            time(i.started_at),
            "2015-07-17T08:42:58.315Z",
            "`+0000` offset"
        );
        assert_eq!(i.labels["component"], "postgres");
        assert_eq!(i.labels["group"], "prod-datapipe");
        assert_eq!(i.labels["class"], "deploy");
        assert_eq!(i.labels["ping time"], "1500ms");
        assert_eq!(i.labels["load avg"], "0.75");
        assert!(i.labels["source"].starts_with("monitoringtool:"));
        assert_eq!(i.url.as_deref(), Some("https://monitoring.example.com"));
        assert_eq!(i.annotations["client"], "Sample Monitoring Service");
        let visible = format!("{} {} {:?} {:?}", i.id, i.title, i.labels, i.annotations);
        assert!(
            !visible.contains(routing_key),
            "routing key leaked: {visible}"
        );
    }

    #[test]
    fn cloudevents_fixture_unwraps_alertmanager() {
        let i = fixture("cloudevents-alertmanager.json");
        assert_eq!(i.source, "cloudevents");
        assert_eq!(
            i.id,
            r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#
        );
        assert_eq!(
            i.title,
            "BlackBox Probe Failure: https://server.example.org"
        );
        assert_eq!(i.severity, Severity::Critical);
        assert_eq!(i.status, Status::Firing);
        assert_eq!(i.labels["alertname"], "ProbeFailure");
        assert_eq!(
            i.labels["ce_type"],
            "io.prometheus.alertmanager.notification"
        );
        assert_eq!(i.labels["ce_subject"], "ProbeFailure");
        assert_eq!(time(i.started_at), "2023-02-06T13:08:45.828Z");
        assert_eq!(i.raw["specversion"], "1.0");
    }

    #[test]
    fn irctl_fixture() {
        let i = fixture("irctl-simple.yaml");
        assert_eq!(i.source, "irctl");
        assert_eq!(i.id, "INC-2024-0042");
        assert_eq!(i.title, "Checkout p99 latency above SLO");
        assert_eq!(
            (i.severity, i.severity_raw.as_str()),
            (Severity::High, "high")
        );
        assert_eq!(i.status, Status::Firing);
        assert_eq!(
            i.labels,
            labels(&[
                ("env", "production"),
                ("namespace", "shop"),
                ("service", "checkout"),
                ("team", "payments")
            ])
        );
        assert_eq!(time(i.started_at), "2024-03-05T14:02:11.000Z");
        assert_eq!(
            i.url.as_deref(),
            Some("https://status.example.com/incidents/42")
        );
        assert_eq!(i.raw["labels"]["team"], "payments");
    }

    #[test]
    fn playbook_fixtures_carry_exactly_the_expected_labels() {
        // (fixture, started_at, severity, exact labels)
        type Case = (
            &'static str,
            &'static str,
            Severity,
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            (
                "disk-filling.json",
                "2024-05-14T03:17:42.614Z",
                Severity::Warning,
                &[
                    ("alertname", "NodeFilesystemAlmostOutOfSpace"),
                    ("severity", "warning"),
                    ("instance", "localhost:9100"),
                    ("mountpoint", "/"),
                    ("device", "/dev/sda1"),
                    ("fstype", "ext4"),
                    ("job", "node"),
                ],
            ),
            (
                "http-5xx.json",
                "2024-05-14T14:26:09.337Z",
                Severity::Critical,
                &[
                    ("alertname", "HighHttp5xxRate"),
                    ("severity", "critical"),
                    ("service", "checkout"),
                    ("namespace", "shop"),
                    ("job", "checkout"),
                ],
            ),
            (
                "pod-crashloop.json",
                "2024-05-14T16:45:51.908Z",
                Severity::Warning,
                &[
                    ("alertname", "KubePodCrashLooping"),
                    ("severity", "warning"),
                    ("namespace", "shop"),
                    ("pod", "checkout-7d9f8b6c5-x2x9q"),
                    ("container", "checkout"),
                ],
            ),
            (
                "cert-expiry.json",
                "2024-05-14T08:00:16.052Z",
                Severity::Warning,
                &[
                    ("alertname", "TLSCertificateExpiringSoon"),
                    ("severity", "warning"),
                    ("instance", "https://shop.example.com"),
                    ("job", "blackbox"),
                ],
            ),
            (
                "pg-connections.json",
                "2024-05-14T19:12:38.771Z",
                Severity::Critical,
                &[
                    ("alertname", "PgConnectionsHigh"),
                    ("severity", "critical"),
                    ("instance", "db-1:5432"),
                    ("service", "payments"),
                ],
            ),
            (
                "target-down.json",
                "2024-05-14T05:31:04.126Z",
                Severity::Warning,
                &[
                    ("alertname", "TargetDown"),
                    ("severity", "warning"),
                    ("job", "node"),
                    ("instance", "localhost:9100"),
                ],
            ),
        ];
        for (name, started, severity, expected) in cases {
            let i = fixture(name);
            assert_eq!(i.source, "alertmanager", "{name}");
            assert_eq!(i.labels, labels(expected), "{name}");
            assert_eq!(i.alerts.len(), 1, "{name}");
            assert_eq!(i.alerts[0].labels, i.labels, "{name}");
            assert_eq!(i.severity, *severity, "{name}");
            assert_eq!(i.status, Status::Firing, "{name}");
            assert_eq!(time(i.started_at), *started, "{name}");
            assert!(i.id.starts_with("{}:{alertname="), "{name}: {}", i.id);
            assert_eq!(&i.title, &i.annotations["summary"], "{name}");
            assert!(
                i.annotations["runbook_url"].starts_with("https://"),
                "{name}"
            );
            assert!(i.fingerprint.is_some(), "{name}");
            assert!(i.alerts[0].generator_url.is_some(), "{name}");
        }
    }

    #[test]
    fn malformed_json_has_origin_line_and_column() {
        let err = parse(
            b"{\n  \"status\": \"firing\"\n  \"alerts\": []\n}",
            "alert.json",
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON in `alert.json` at line 3 column 3: expected `,` or `}`"
        );
        let err = parse(b"{\"a\": ", "<stdin>", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid JSON in `<stdin>` at line 1"),
            "{err}"
        );
    }

    #[test]
    fn malformed_yaml_has_origin_and_position() {
        let err = parse(b"title: t\nlabels: {a: b\n", "inc.yaml", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid YAML in `inc.yaml` at line"),
            "{err}"
        );
    }

    #[test]
    fn unknown_format_lists_supported_ones() {
        let err = parse(br#"{"hello": "world"}"#, "x.json", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not recognise the incident format of `x.json`; supported: alertmanager, grafana, pagerduty-webhook, pagerduty-event, cloudevents, irctl"
        );
        let err = parse(b"[1, 2]", "x.json", None).unwrap_err();
        assert!(
            matches!(err, IncidentError::UnrecognisedFormat { .. }),
            "{err}"
        );
        let err = "nagios".parse::<IncidentFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown incident format `nagios`; supported: alertmanager, grafana, pagerduty-webhook, pagerduty-event, cloudevents, irctl"
        );
    }

    #[test]
    fn format_names_round_trip() {
        for format in IncidentFormat::ALL {
            assert_eq!(format.as_str().parse::<IncidentFormat>().unwrap(), *format);
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!(
            "PagerDuty-Event".parse::<IncidentFormat>().unwrap(),
            IncidentFormat::PagerdutyEvent
        );
    }

    #[test]
    fn forced_format_mismatch_says_what_the_format_needs() {
        let bytes = std::fs::read(fixture_path("alertmanager-firing.json")).unwrap();
        let err = parse(&bytes, "am.json", Some(IncidentFormat::PagerdutyEvent)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`am.json` does not match incident format `pagerduty-event`: it needs an object with `event_action` (`trigger`, `acknowledge` or `resolve`) and `payload` (PagerDuty Events API v2)"
        );
        let err = parse(&bytes, "am.json", Some(IncidentFormat::Cloudevents)).unwrap_err();
        assert!(err.to_string().contains("`specversion: \"1.0\"`"), "{err}");
        let err = parse(b"[]", "a.json", Some(IncidentFormat::Alertmanager)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`a.json` does not match incident format `alertmanager`: it needs an object with an `alerts` array (Alertmanager webhook, `version: \"4\"`)"
        );
        // Forcing a compatible format works: Grafana reads Alertmanager's envelope.
        let i = parse(&bytes, "am.json", Some(IncidentFormat::Grafana)).unwrap();
        assert_eq!(i.source, "grafana");
    }

    #[test]
    fn oversized_payloads_are_rejected() {
        let big = vec![b' '; MAX_INCIDENT_BYTES + 1];
        let err = parse(&big, "big.json", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "incident `big.json` is larger than the 10 MiB limit (10485760 bytes)"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, &big).unwrap();
        assert!(matches!(
            read(&path, None),
            Err(IncidentError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_utf8_and_empty_are_rejected_naming_the_origin() {
        let err = parse(b"{\"title\": \"caf\xe9\"}", "latin1.json", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "incident `latin1.json` is not valid UTF-8 (first invalid byte at offset 14)"
        );
        let err = parse(b" \n\t", "blank.json", None).unwrap_err();
        assert_eq!(err.to_string(), "incident `blank.json` is empty");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read(Path::new("/nonexistent/alert.json"), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read incident `/nonexistent/alert.json`: "),
            "{err}"
        );
    }

    #[test]
    fn bom_is_ignored() {
        let mut bytes = "\u{feff}".as_bytes().to_vec();
        bytes.extend_from_slice(br#"{"title": "with bom", "labels": {"a": "b"}}"#);
        assert_eq!(parse(&bytes, "bom.json", None).unwrap().title, "with bom");
        let mut bytes = "\u{feff}".as_bytes().to_vec();
        bytes.extend_from_slice(b"title: yaml bom\n");
        assert_eq!(parse(&bytes, "<stdin>", None).unwrap().title, "yaml bom");
    }

    #[test]
    fn hostile_label_values_are_kept_verbatim() {
        let hostile = [
            "$(touch /tmp/x)",
            "`rm -rf /`",
            "line1\nline2\r\n",
            "{{ 7*7 }}",
            "{% raw %}x",
            "'; DROP TABLE x; --",
            "\u{202e}evil\u{0000}",
        ];
        let alert_labels: serde_json::Map<String, Value> = hostile
            .iter()
            .enumerate()
            .map(|(n, v)| (format!("l{n}"), Value::String(v.to_string())))
            .collect();
        let payload = json!({"status": "firing", "commonLabels": alert_labels.clone(),
                             "commonAnnotations": {"summary": "{{ 7*7 }} $(id)"},
                             "alerts": [{"labels": alert_labels}]});
        let i = parse(payload.to_string().as_bytes(), "evil.json", None).unwrap();
        for (n, v) in hostile.iter().enumerate() {
            assert_eq!(i.labels[&format!("l{n}")], *v);
            assert_eq!(i.alerts[0].labels[&format!("l{n}")], *v);
            assert_eq!(i.to_template_value()["labels"][format!("l{n}")], *v);
        }
        assert_eq!(i.title, "{{ 7*7 }} $(id)");

        let flags = vec![("cmd".to_string(), "$(touch /tmp/x)".to_string())];
        let i = from_flags(&flags, Some("`id`\n{{ 7*7 }}"), None);
        assert_eq!(i.labels["cmd"], "$(touch /tmp/x)");
        assert_eq!(i.title, "`id`\n{{ 7*7 }}");
    }

    #[test]
    fn untrusted_values_in_errors_are_escaped() {
        let err = parse(
            br#"{"status": "x\n\u001b[31mred", "alerts": [{}]}"#,
            "e.json",
            None,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg:?}");
    }

    #[test]
    fn severity_normalisation() {
        use Severity::*;
        for (raw, want) in [
            ("critical", Critical),
            ("CRIT", Critical),
            ("fatal", Critical),
            ("emergency", Critical),
            ("alert", Critical),
            ("P1", Critical),
            ("sev1", Critical),
            ("SEV-1", Critical),
            ("page", Critical),
            ("disaster", Critical),
            ("error", High),
            ("err", High),
            ("high", High),
            ("major", High),
            ("p2", High),
            ("Sev 2", High),
            ("warning", Warning),
            ("warn", Warning),
            ("medium", Warning),
            ("minor", Warning),
            ("average", Warning),
            ("p3", Warning),
            ("sev3", Warning),
            ("info", Info),
            ("informational", Info),
            ("low", Info),
            ("notice", Info),
            ("debug", Info),
            ("none", Info),
            ("ok", Info),
            ("p4", Info),
            ("P5", Info),
            ("not classified", Info),
            ("", Warning),
            ("bananas", Warning),
            ("0", Warning),
        ] {
            assert_eq!(Severity::normalise(raw), want, "{raw:?}");
        }
        assert!(Critical < High && High < Warning && Warning < Info);
        assert_eq!(Critical.to_string(), "critical");
        assert_eq!(serde_json::to_value(High).unwrap(), "high");
    }

    #[test]
    fn file_safe_id() {
        let mut i = from_flags(&[], Some("t"), None);
        let safe = |i: &Incident| i.file_safe_id();

        i.id = "INC-2024.0042_a".into();
        assert_eq!(safe(&i), "INC-2024.0042_a", "safe ids are unchanged");

        i.id = r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#.into();
        let s = safe(&i);
        assert!(
            s.starts_with("severity_critical_alertname_ProbeFailure-"),
            "{s}"
        );
        assert_eq!(
            s.len(),
            "severity_critical_alertname_ProbeFailure-".len() + 12
        );

        let mut other = i.clone();
        other.id = r#"{}/{severity="critical"}:{alertname=ProbeFailure}"#.into();
        assert_ne!(safe(&other), s, "distinct ids stay distinct");

        for id in ["../../etc/passwd", "..", ".", "", "ü", "a/b", "-rf"] {
            i.id = id.into();
            let s = safe(&i);
            assert!(s.len() <= 80 && !s.is_empty(), "{id:?} -> {s:?}");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{s}"
            );
            assert!(
                !s.starts_with(['.', '-']) && s != ".." && !s.contains('/'),
                "{id:?} -> {s:?}"
            );
        }
        i.id = "x".repeat(300);
        let s = safe(&i);
        assert_eq!(s.len(), 80);
    }

    #[test]
    fn match_labels_never_override_labels() {
        let mut i = from_flags(&[("alertname".into(), "A".into())], None, Some("p1"));
        let m = i.match_labels();
        assert_eq!(m["severity"], "critical");
        assert_eq!(m["status"], "firing");
        assert_eq!(m["source"], "adhoc");
        i.labels.insert("severity".into(), "P1".into());
        i.labels.insert("source".into(), "db-1".into());
        let m = i.match_labels();
        assert_eq!(m["severity"], "P1");
        assert_eq!(m["source"], "db-1");
    }

    #[test]
    fn from_flags_defaults() {
        let flags = vec![
            ("alertname".to_string(), "Disk".to_string()),
            ("severity".to_string(), "crit".to_string()),
        ];
        let i = from_flags(&flags, None, None);
        assert_eq!(i.title, "Disk");
        assert_eq!(
            (i.severity, i.severity_raw.as_str()),
            (Severity::Critical, "crit")
        );
        assert_eq!(i.status, Status::Firing);
        assert_eq!(i.source, "adhoc");
        assert!(i.id.starts_with("adhoc-"));
        assert!(i.started_at.is_some());
        assert_eq!(i.alerts.len(), 1);
        let j = from_flags(&flags, None, Some("info"));
        assert_eq!(j.severity, Severity::Info);
        assert_eq!(i.id, j.id, "id hashes title and labels only");
        let k = from_flags(&[], None, None);
        assert_eq!(
            (k.title.as_str(), k.severity),
            ("ad hoc incident", Severity::Warning)
        );
    }

    #[test]
    fn label_flags() {
        assert_eq!(parse_label_flag("a=b"), Ok(("a".into(), "b".into())));
        assert_eq!(
            parse_label_flag("_x9=a=b=c"),
            Ok(("_x9".into(), "a=b=c".into()))
        );
        assert_eq!(
            parse_label_flag("empty="),
            Ok(("empty".into(), String::new()))
        );
        assert_eq!(
            parse_label_flag("novalue"),
            Err("expected `key=value`, found `novalue`".into())
        );
        assert_eq!(
            parse_label_flag("9a=b"),
            Err("invalid label name `9a`: it must match `[a-zA-Z_][a-zA-Z0-9_]*`".into())
        );
        assert!(parse_label_flag("=b").is_err());
        assert!(parse_label_flag("a-b=c").is_err());
        assert!(parse_label_flag("ä=c").is_err());
    }

    #[test]
    fn template_value_has_every_field() {
        let i = fixture("alertmanager-resolved.json");
        let v = i.to_template_value();
        // The same list `validate` allows as `incident.*`, so the two cannot drift.
        for key in crate::playbook::validate::INCIDENT_FIELDS {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["started_at"], "2023-02-06T13:08:45.828Z");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["alerts"][0]["ends_at"], "2023-02-06T13:21:45.828Z");
        assert_eq!(v["alerts"][0]["values"], Value::Null);
        assert_eq!(v["raw"]["version"], "4");
        // Serialize agrees with the template view on everything but `raw` order.
        assert_eq!(serde_json::to_value(&i).unwrap(), v);
    }

    #[test]
    fn detection_is_unambiguous_for_every_fixture() {
        for (name, format) in [
            ("alertmanager-firing.json", IncidentFormat::Alertmanager),
            ("grafana-firing.json", IncidentFormat::Grafana),
            (
                "pagerduty-v3-triggered.json",
                IncidentFormat::PagerdutyWebhook,
            ),
            (
                "pagerduty-events-v2-trigger.json",
                IncidentFormat::PagerdutyEvent,
            ),
            ("cloudevents-alertmanager.json", IncidentFormat::Cloudevents),
        ] {
            let value: Value =
                serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap();
            let obj = value.as_object().unwrap();
            assert_eq!(detect(obj), Some(format), "{name}");
            for other in IncidentFormat::ALL.iter().filter(|f| **f != format) {
                // Every other format either refuses the shape or fails to parse it.
                if fits(*other, obj) {
                    let forced = from_document(value.clone(), name, Some(*other), None);
                    let compatible = matches!(
                        (format, other),
                        (IncidentFormat::Alertmanager, IncidentFormat::Grafana)
                            | (IncidentFormat::Grafana, IncidentFormat::Alertmanager)
                    );
                    assert!(
                        compatible || forced.is_err(),
                        "{name} also reads as {other}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_panics_on_odd_input() {
        let inputs: &[&[u8]] = &[
            b"null",
            b"0",
            b"\"str\"",
            b"true",
            b"{}",
            b"[]",
            b"{\"alerts\": null}",
            b"{\"alerts\": [null, 1, \"x\"]}",
            b"{\"event\": {}}",
            b"{\"event_action\": 1}",
            b"{\"specversion\": 1}",
            b"{\"specversion\": \"1.0\", \"id\": \"\", \"source\": \"s\", \"type\": \"t\"}",
            b"{\"title\": null}",
            b"{\"labels\": null}",
            b"{\"title\": \"\"}",
            b"{\"alerts\": [{\"startsAt\": 5}]}",
            b"{\"alerts\": [{\"startsAt\": \"9999-99-99T99:99:99Z\"}]}",
            b"{\"truncatedAlerts\": -1, \"alerts\": [{}]}",
            b"---\n- a\n",
            b"title: [unclosed",
            b"\xef\xbb\xbf",
            b"{\"a\":1e999}",
            b"{\"event\": {\"event_type\": \"incident.triggered\", \"data\": {\"type\": \"x\"}}}",
            b"{\"alerts\": [{\"startsAt\": \"2024-01-01T10:00:00.\xc3\xa9Z\"}]}",
        ];
        for input in inputs {
            let _ = parse(input, "odd.json", None);
            let _ = parse(input, "odd.yaml", None);
            for format in IncidentFormat::ALL {
                let _ = parse(input, "odd", Some(*format));
            }
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(deep.as_bytes(), "deep.json", None).is_err());
        let deep_yaml = format!(
            "title: t\nlabels: {}{}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse(deep_yaml.as_bytes(), "deep.yaml", None).is_err());
    }
}
