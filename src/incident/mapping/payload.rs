//! Reading a payload with a checked mapping: whether its `detect`
//! conditions hold, and the incident its expressions give, every value
//! checked like a label read by a built-in parser.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use minijinja::Value as JValue;
use serde_json::Value;

use super::expression::environment;
use super::{Mapping, Test};
use crate::incident::{Alert, Incident, IncidentError, Severity, Status, derived_id, limit, shown};

impl Mapping {
    /// Why the payload does not fit, or `None` when every condition holds.
    pub(in crate::incident) fn mismatch(&self, payload: &Value) -> Option<String> {
        self.detect.iter().find_map(|c| {
            let found = payload.pointer(&c.pointer);
            match (&c.test, found) {
                (Test::Exists(true), None) => Some(format!("`{}` does not exist", c.pointer)),
                (Test::Exists(false), Some(_)) => Some(format!("`{}` exists", c.pointer)),
                (Test::Exists(_), _) => None,
                (Test::OneOf(wanted), None) => Some(format!(
                    "`{}` does not exist (wanted {})",
                    c.pointer,
                    listed(wanted)
                )),
                (Test::OneOf(wanted), Some(v)) => {
                    let text = crate::incident::field::scalar_string(v);
                    match text {
                        Some(t) if wanted.contains(&t) => None,
                        _ => Some(format!(
                            "`{}` is {}, not {}",
                            c.pointer,
                            match text {
                                Some(t) => format!("`{}`", shown(&t)),
                                None => crate::incident::field::describe(v).to_string(),
                            },
                            listed(wanted)
                        )),
                    }
                }
            }
        })
    }

    /// Reads `payload` into an incident (`raw` left null for the caller).
    pub(in crate::incident) fn apply(
        &self,
        payload: &Value,
        origin: &str,
    ) -> Result<Incident, IncidentError> {
        let ctx = minijinja::context! { payload => crate::template::value(payload) };
        let fail = |field: &str, message: String| IncidentError::Mapping {
            origin: origin.to_string(),
            name: self.name.clone(),
            file: self.file.clone(),
            field: field.to_string(),
            message,
        };
        let eval = |field: &str, expr: &str| -> Result<JValue, IncidentError> {
            let compiled = environment()
                .compile_expression(expr)
                .map_err(|e| fail(field, e.to_string()))?;
            compiled.eval(&ctx).map_err(|e| fail(field, error_text(&e)))
        };
        let text = |field: &'static str| -> Result<Option<String>, IncidentError> {
            let Some(expr) = self.fields.get(field) else {
                return Ok(None);
            };
            scalar(&eval(field, expr)?)
                .map(|t| t.filter(|s| !s.trim().is_empty()))
                .map_err(|found| fail(field, format!("must give a string, gave {found}")))
        };
        let time = |field: &'static str| -> Result<Option<DateTime<Utc>>, IncidentError> {
            match text(field)? {
                None => Ok(None),
                Some(t) => timestamp(&t).map(Some).ok_or_else(|| {
                    fail(
                        field,
                        format!(
                            "gave `{}`, which is neither RFC 3339 nor a Unix time",
                            shown(&t)
                        ),
                    )
                }),
            }
        };
        let map = |from: &'static str,
                   each: &BTreeMap<String, String>|
         -> Result<BTreeMap<String, String>, IncidentError> {
            let mut out = BTreeMap::new();
            if let Some(expr) = self.fields.get(from) {
                let v = eval(from, expr)?;
                if !(v.is_undefined() || v.is_none()) {
                    let Ok(keys) = v.try_iter() else {
                        return Err(fail(
                            from,
                            format!("must give a mapping, gave {}", v.kind()),
                        ));
                    };
                    if v.len().is_some_and(|n| n > limit::MAX_ENTRIES) {
                        return Err(fail(
                            from,
                            format!(
                                "gave {} entries, more than the limit of {}",
                                v.len().unwrap_or_default(),
                                limit::MAX_ENTRIES
                            ),
                        ));
                    }
                    for key in keys {
                        let item = v.get_item(&key).unwrap_or_default();
                        let name = key.as_str().map_or_else(|| key.to_string(), str::to_string);
                        match scalar(&item) {
                            Ok(Some(value)) => {
                                out.insert(name, value);
                            }
                            Ok(None) => {}
                            Err(found) => {
                                return Err(fail(
                                    from,
                                    format!(
                                        "entry `{}` must be a string, is {found}",
                                        shown(&name)
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            for (name, expr) in each {
                let field = format!("{}.{name}", from.trim_end_matches("_from"));
                let v = eval(&field, expr)?;
                match scalar(&v) {
                    Ok(Some(value)) => {
                        out.insert(name.clone(), value);
                    }
                    Ok(None) => {}
                    Err(found) => {
                        return Err(fail(&field, format!("must give a string, gave {found}")));
                    }
                }
            }
            Ok(out)
        };

        let labels = map("labels_from", &self.labels)?;
        let annotations = map("annotations_from", &self.annotations)?;
        let title = text("title")?.ok_or_else(|| fail("title", "gave nothing".into()))?;
        let severity_raw = text("severity")?
            .or_else(|| labels.get("severity").cloned())
            .unwrap_or_default();
        let status_word = text("status")?;
        let acknowledged = status_word
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("acknowledged"));
        let status = match status_word {
            None => Status::Firing,
            Some(s) => status(&s).ok_or_else(|| {
                fail(
                    "status",
                    format!(
                        "gave `{}`; expected `firing`, `resolved` or `acknowledged`",
                        shown(&s)
                    ),
                )
            })?,
        };
        let started_at = time("started_at")?;
        let ended_at = time("resolved_at")?.filter(|_| status == Status::Resolved);
        let id = match text("id")? {
            Some(id) => id,
            None => derived_id(&self.name, &title, &labels),
        };
        let mut incident = Incident {
            id,
            title,
            severity: Severity::normalise(&severity_raw),
            severity_raw,
            status,
            acknowledged,
            source: self.name.clone(),
            labels,
            annotations,
            started_at,
            ended_at,
            fingerprint: text("fingerprint")?,
            url: text("url")?,
            alerts: Vec::new(),
            raw: Value::Null,
            ownership: None,
        };
        incident.alerts.push(Alert::mirror(&incident));
        Ok(incident)
    }
}

fn listed(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{}`", shown(v)))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn error_text(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// A string, or a number or boolean as text; `None` for none/undefined;
/// else the kind found.
fn scalar(v: &JValue) -> Result<Option<String>, String> {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(None),
        ValueKind::String => Ok(v.as_str().map(str::to_string)),
        ValueKind::Number | ValueKind::Bool => Ok(Some(v.to_string())),
        other => Err(format!("a {other}")),
    }
}

/// A mapping's status words; `acknowledged` is still ongoing, so firing
/// (and marked acknowledged, so it starts no remediation).
fn status(s: &str) -> Option<Status> {
    match s.trim().to_ascii_lowercase().as_str() {
        "firing" | "acknowledged" => Some(Status::Firing),
        "resolved" => Some(Status::Resolved),
        _ => None,
    }
}

/// RFC 3339 (as every format reads it), or a Unix time in seconds,
/// milliseconds, microseconds or nanoseconds (told apart by size), as
/// Datadog (`$DATE`) and Opsgenie (`createdAt`, `updatedAt`) send them.
fn timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Some(t) = crate::incident::timestamp::parse(s) {
        return Some(t);
    }
    let n: i64 = s.parse().ok()?;
    let (secs, nanos) = match n.unsigned_abs() {
        0..100_000_000_000 => (n, 0),
        100_000_000_000..100_000_000_000_000 => (n / 1_000, (n % 1_000) * 1_000_000),
        100_000_000_000_000..100_000_000_000_000_000 => (n / 1_000_000, (n % 1_000_000) * 1_000),
        _ => (n / 1_000_000_000, n % 1_000_000_000),
    };
    DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_of_every_size() {
        let want = "2024-05-14T16:45:51Z";
        for s in [
            "1715705151",
            "1715705151000",
            "1715705151000000",
            "1715705151000000000",
        ] {
            let t = timestamp(s).unwrap();
            assert_eq!(
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                want,
                "{s}"
            );
        }
        assert!(timestamp("soon").is_none());
    }
}
