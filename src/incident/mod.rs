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

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::yaml::Pos;

mod alertmanager;
mod cloudevents;
mod error;
mod field;
mod irctl;
pub mod limit;
pub mod mapping;
mod model;
mod pagerduty;
mod timestamp;

pub use error::IncidentError;
use error::{at, supported};
use field::{Ctx, Object};
pub use mapping::Mapping;
pub use model::*;

/// The largest incident payload irctl reads; real webhooks are kilobytes.
pub const MAX_INCIDENT_BYTES: usize = 10 * 1024 * 1024;

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
    parse_as(bytes, origin, format.map(Forced::Builtin), &[])
}

/// [`parse`] that also knows the playbook source's `mappings`: detection
/// tries them after the built-in formats and before irctl's own file, and
/// `format` may name one.
pub fn parse_with(
    bytes: &[u8],
    origin: &str,
    format: Option<&str>,
    mappings: &[Mapping],
) -> Result<Incident, IncidentError> {
    let forced = format.map(|name| forced(name, mappings)).transpose()?;
    parse_as(bytes, origin, forced, mappings)
}

/// A format forced by `--incident-format`: built in, or a mapping.
#[derive(Clone, Copy)]
enum Forced<'m> {
    Builtin(IncidentFormat),
    Mapping(&'m Mapping),
}

/// The format or mapping `name` names, ignoring case.
fn forced<'m>(name: &str, mappings: &'m [Mapping]) -> Result<Forced<'m>, IncidentError> {
    let wanted = name.trim();
    if let Some(m) = mappings
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(wanted))
    {
        return Ok(Forced::Mapping(m));
    }
    name.parse::<IncidentFormat>()
        .map(Forced::Builtin)
        .map_err(|_| IncidentError::UnknownFormatName {
            name: shown(name),
            supported: std::iter::once(supported())
                .chain(mappings.iter().map(|m| m.name.clone()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn parse_as(
    bytes: &[u8],
    origin: &str,
    format: Option<Forced<'_>>,
    mappings: &[Mapping],
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
        from_document(value, origin, format, Some(Text::Json(text)), mappings)
    } else {
        let value: Value = crate::yaml::from_str(text).map_err(|e| IncidentError::Syntax {
            origin: origin.to_string(),
            syntax: "YAML",
            pos: e.pos,
            message: e.message,
        })?;
        from_document(value, origin, format, Some(Text::Yaml(text)), mappings)
    }
}

/// Reads an incident from a file, or from stdin when `path` is `-`, never
/// holding more than [`MAX_INCIDENT_BYTES`] + 1 bytes in memory.
pub fn read(path: &Path, format: Option<IncidentFormat>) -> Result<Incident, IncidentError> {
    read_as(path, format.map(Forced::Builtin), &[])
}

/// [`read`] with the playbook source's `mappings`, as [`parse_with`].
pub fn read_with(
    path: &Path,
    format: Option<&str>,
    mappings: &[Mapping],
) -> Result<Incident, IncidentError> {
    let forced = format.map(|name| forced(name, mappings)).transpose()?;
    read_as(path, forced, mappings)
}

fn read_as(
    path: &Path,
    format: Option<Forced<'_>>,
    mappings: &[Mapping],
) -> Result<Incident, IncidentError> {
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
    parse_as(&bytes, &origin, format, mappings)
}

fn read_limited(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INCIDENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Builds an ad hoc incident from CLI flags: status firing, source `adhoc`,
/// started now by `clock`. The title defaults to the `alertname` label, the severity to
/// the `severity` label; the id is a hash of title and labels.
pub fn from_flags(
    labels: &[(String, String)],
    title: Option<&str>,
    severity: Option<&str>,
    clock: crate::clock::Clock,
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
        acknowledged: false,
        source: "adhoc".to_string(),
        labels,
        annotations: BTreeMap::new(),
        started_at: Some(clock.now()),
        ended_at: None,
        fingerprint: None,
        url: None,
        alerts: Vec::new(),
        raw: Value::Object(raw),
        ownership: None,
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
    from_document(value, origin, None, None, &[])
}

pub(crate) fn is_label_name(s: &str) -> bool {
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
    forced: Option<Forced<'_>>,
    text: Option<Text<'_>>,
    mappings: &[Mapping],
) -> Result<Incident, IncidentError> {
    let mut incident = match forced {
        Some(Forced::Builtin(format)) => {
            let Some(obj) = value.as_object().filter(|obj| fits(format, obj)) else {
                return Err(IncidentError::FormatMismatch {
                    origin: origin.to_string(),
                    format,
                });
            };
            parse_object(&Ctx::new(origin, format), obj, text)?
        }
        Some(Forced::Mapping(m)) => match m.mismatch(&value) {
            Some(why) => {
                return Err(IncidentError::MappingMismatch {
                    origin: origin.to_string(),
                    name: m.name.clone(),
                    file: m.file.clone(),
                    why,
                });
            }
            None => m.apply(&value, origin)?,
        },
        None => detect_and_parse(&value, origin, text, mappings)?,
    };
    limit::check(origin, &incident)?;
    limit::values(origin, &value)?;
    incident.raw = value;
    Ok(incident)
}

/// Detection: the built-in formats with a distinctive field first, then
/// each mapping in file order, then irctl's own file. When none fits, the
/// error lists every attempt and why it failed: a payload nobody
/// recognises is not one format's fault.
fn detect_and_parse(
    value: &Value,
    origin: &str,
    text: Option<Text<'_>>,
    mappings: &[Mapping],
) -> Result<Incident, IncidentError> {
    let Some(obj) = value.as_object() else {
        return Err(IncidentError::UnrecognisedFormat {
            origin: origin.to_string(),
            tried: vec![format!(
                "every format reads a JSON object (or YAML mapping); the payload is {}",
                field::describe(value)
            )],
        });
    };
    let detected = detect(obj);
    if let Some(format) = detected.filter(|f| *f != IncidentFormat::Irctl) {
        return parse_object(&Ctx::new(origin, format), obj, text);
    }
    let mut tried = vec![
        "alertmanager, grafana: no `alerts` field".to_string(),
        "pagerduty-webhook: no `event` object".to_string(),
        "pagerduty-event: no `event_action` field".to_string(),
        "cloudevents: no `specversion` field".to_string(),
    ];
    for m in mappings {
        match m.mismatch(value) {
            None => return m.apply(value, origin),
            Some(why) => tried.push(format!("{} (`{}`): {why}", m.name, m.file)),
        }
    }
    if detected.is_none() {
        tried.push("irctl: no `title` or `labels` field".to_string());
    } else {
        let ctx = Ctx::new(origin, IncidentFormat::Irctl);
        match (irctl::parse(&ctx, obj, text), text) {
            (Ok(incident), _) => return Ok(incident),
            // A JSON payload with a `title` may be any sender's: say what
            // irctl's file lacks among the rest. YAML is only ever irctl's.
            (Err(IncidentError::Schema { pos, message, .. }), Some(Text::Json(_))) => {
                tried.push(format!("irctl{}: {message}", at(pos)));
            }
            (Err(e), _) => return Err(e),
        }
    }
    Err(IncidentError::UnrecognisedFormat {
        origin: origin.to_string(),
        tried,
    })
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
mod tests;
