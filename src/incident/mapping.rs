//! Declarative payload mappings: any JSON sender, without a converter.
//!
//! A mapping is a YAML file in the playbook repository's `sources/` folder
//! saying how to recognise a sender's payload (JSON pointer conditions) and
//! how to read an incident out of it (one minijinja expression per field,
//! over `payload`). irctl ships mappings for Datadog and Opsgenie in
//! `playbooks/sources/`; a team adds its own the same way, reviewed like a
//! playbook and checked by `irctl validate`.
//!
//! ```yaml
//! version: 1
//! name: opsgenie
//! detect:                               # every condition must hold
//!   - { pointer: /action }              # exists
//!   - { pointer: /alert/alertId }
//! id: payload.alert.alertId
//! title: payload.alert.message
//! status: "'resolved' if payload.action == 'Close' else 'firing'"
//! labels_from: payload.alert.tags | tags
//! labels: { entity: payload.alert.entity }
//! ```
//!
//! Expressions run in their own environment: no loader (no files), no
//! globals but `payload`, a fuel budget so a loop cannot spin, and a missing
//! field is undefined rather than an error, since senders leave fields out.
//! Whatever they produce is untrusted incident data, exactly like a label
//! read by a built-in parser, and goes through the same [`super::limit`]s.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde::Deserialize;
use serde_json::Value;

use super::{Alert, Incident, IncidentError, Severity, Status, derived_id, limit, shown};
use crate::diagnostic::Diagnostic;
use crate::yaml::{Pos, Spanned};

/// The folder of the playbook directory (or `--repo-path`) holding mappings.
pub const DIR: &str = "sources";

/// The code of a mapping's schema findings, as for a playbook's.
const SCHEMA: &str = "schema";

/// Fuel for one expression: far above what reading a payload takes.
const FUEL: u64 = 200_000;

/// A checked mapping, ready to recognise and read payloads.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The name used as the incident's `source` and by `--incident-format`.
    pub name: String,
    /// The file it was read from, as shown to users.
    pub file: String,
    /// What it reads, in a few words.
    pub description: Option<String>,
    detect: Vec<Condition>,
    fields: BTreeMap<&'static str, String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// One `detect` condition on the value at a JSON pointer.
#[derive(Clone, Debug)]
struct Condition {
    pointer: String,
    test: Test,
}

#[derive(Clone, Debug)]
enum Test {
    Exists(bool),
    OneOf(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    version: Spanned<u32>,
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    detect: Spanned<Vec<RawCondition>>,
    #[serde(default)]
    id: Option<Spanned<String>>,
    title: Spanned<String>,
    #[serde(default)]
    severity: Option<Spanned<String>>,
    #[serde(default)]
    status: Option<Spanned<String>>,
    #[serde(default)]
    started_at: Option<Spanned<String>>,
    #[serde(default)]
    resolved_at: Option<Spanned<String>>,
    #[serde(default)]
    fingerprint: Option<Spanned<String>>,
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    labels_from: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    annotations_from: Option<Spanned<String>>,
    #[serde(default)]
    annotations: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    pointer: Spanned<String>,
    #[serde(default)]
    exists: Option<bool>,
    #[serde(default)]
    equals: Option<Spanned<String>>,
    #[serde(default)]
    one_of: Option<Vec<String>>,
}

/// Checks a mapping file: its schema, its pointers and every expression's
/// syntax, each finding with the file, line and column.
pub fn check(file: &str, text: &str) -> (Option<Mapping>, Vec<Diagnostic>) {
    let raw: RawMapping = match crate::yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let d = Diagnostic::error(file, e.pos, SCHEMA, e.message);
            return (None, vec![d]);
        }
    };
    let mut diags = Vec::new();
    let mut error = |pos: Pos, code: &'static str, message: String| {
        diags.push(Diagnostic::error(file, pos, code, message));
    };
    if raw.version.value != 1 {
        error(
            raw.version.pos,
            SCHEMA,
            format!(
                "unsupported mapping version {}; expected 1",
                raw.version.value
            ),
        );
    }
    let name = raw.name.value.trim().to_string();
    if !is_name(&name) {
        error(
            raw.name.pos,
            SCHEMA,
            format!(
                "mapping name `{}` must be lowercase letters, digits and `-`",
                shown(&name)
            ),
        );
    } else if super::IncidentFormat::ALL
        .iter()
        .any(|f| f.as_str() == name)
    {
        error(
            raw.name.pos,
            SCHEMA,
            format!("mapping name `{name}` is a built-in incident format; choose another"),
        );
    }
    if raw.detect.value.is_empty() {
        error(
            raw.detect.pos,
            SCHEMA,
            "`detect` needs at least one condition, or every payload would match".into(),
        );
    }
    let mut detect = Vec::new();
    for c in raw.detect.value {
        if !c.pointer.value.is_empty() && !c.pointer.value.starts_with('/') {
            error(
                c.pointer.pos,
                SCHEMA,
                format!(
                    "`{}` is not a JSON pointer; it must start with `/` (e.g. `/alert/id`)",
                    shown(&c.pointer.value)
                ),
            );
        }
        let test = match (c.exists, c.equals, c.one_of) {
            (None, None, None) => Test::Exists(true),
            (Some(e), None, None) => Test::Exists(e),
            (None, Some(v), None) => Test::OneOf(vec![v.value]),
            (None, None, Some(vs)) => Test::OneOf(vs),
            _ => {
                error(
                    c.pointer.pos,
                    SCHEMA,
                    "a condition takes one of `exists`, `equals` or `one_of`".into(),
                );
                continue;
            }
        };
        detect.push(Condition {
            pointer: c.pointer.value,
            test,
        });
    }
    let mut fields = BTreeMap::new();
    for (field, expr) in [
        ("id", raw.id),
        ("title", Some(raw.title)),
        ("severity", raw.severity),
        ("status", raw.status),
        ("started_at", raw.started_at),
        ("resolved_at", raw.resolved_at),
        ("fingerprint", raw.fingerprint),
        ("url", raw.url),
        ("labels_from", raw.labels_from),
        ("annotations_from", raw.annotations_from),
    ] {
        if let Some(expr) = expr {
            check_expression(&expr, &mut error);
            fields.insert(field, expr.value);
        }
    }
    let mut pairs = |raw: BTreeMap<String, Spanned<String>>, what: &str| {
        let mut out = BTreeMap::new();
        for (key, expr) in raw {
            if !super::is_label_name(&key) {
                error(
                    expr.pos,
                    SCHEMA,
                    format!(
                        "{what} name `{}` must match `[a-zA-Z_][a-zA-Z0-9_]*`",
                        shown(&key)
                    ),
                );
            }
            check_expression(&expr, &mut error);
            out.insert(key, expr.value);
        }
        out
    };
    let labels = pairs(raw.labels, "label");
    let annotations = pairs(raw.annotations, "annotation");
    if !diags.is_empty() {
        return (None, diags);
    }
    let mapping = Mapping {
        name,
        file: file.to_string(),
        description: raw.description,
        detect,
        fields,
        labels,
        annotations,
    };
    (Some(mapping), diags)
}

fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Reports an expression that does not compile, at its line and column.
fn check_expression(expr: &Spanned<String>, error: &mut impl FnMut(Pos, &'static str, String)) {
    if let Err(e) = environment().compile_expression(&expr.value) {
        let line = u32::try_from(e.line().unwrap_or(1).saturating_sub(1)).unwrap_or(0);
        let pos = if expr.pos.line > 0 {
            Pos::new(expr.pos.line + line, expr.pos.column)
        } else {
            expr.pos
        };
        let detail = e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string);
        error(
            pos,
            "invalid-expression",
            format!(
                "invalid expression `{}`: {detail}",
                shown(expr.value.trim())
            ),
        );
    }
}

/// The environment mapping expressions run in: the built-in filters and
/// tests, `tags`, nothing that reaches outside the payload.
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        env.add_filter("tags", tags);
        env
    })
}

/// `"env:prod,team:db"` or `["env:prod", "team:db"]` as a label map: names
/// made label-safe (other characters become `_`), a tag without `:` maps to
/// `"true"`.
fn tags(value: JValue) -> Result<JValue, minijinja::Error> {
    let items: Vec<String> = if let Some(s) = value.as_str() {
        s.split(',').map(str::to_string).collect()
    } else if value.is_undefined() || value.is_none() {
        Vec::new()
    } else {
        value
            .try_iter()?
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    };
    let mut out = BTreeMap::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, value) = item.split_once(':').unwrap_or((item, "true"));
        let mut name: String = key
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
            name.insert(0, '_');
        }
        out.insert(name, value.trim().to_string());
    }
    Ok(crate::template::value(&out))
}

impl Mapping {
    /// Why the payload does not fit, or `None` when every condition holds.
    pub(super) fn mismatch(&self, payload: &Value) -> Option<String> {
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
                    let text = super::field::scalar_string(v);
                    match text {
                        Some(t) if wanted.contains(&t) => None,
                        _ => Some(format!(
                            "`{}` is {}, not {}",
                            c.pointer,
                            match text {
                                Some(t) => format!("`{}`", shown(&t)),
                                None => super::field::describe(v).to_string(),
                            },
                            listed(wanted)
                        )),
                    }
                }
            }
        })
    }

    /// Reads `payload` into an incident (`raw` left null for the caller).
    pub(super) fn apply(&self, payload: &Value, origin: &str) -> Result<Incident, IncidentError> {
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
    if let Some(t) = super::timestamp::parse(s) {
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

    #[test]
    fn tags_become_label_safe_names() {
        let v = tags(JValue::from("env:prod, kube-namespace:shop,canary,9x:y")).unwrap();
        let m: BTreeMap<String, String> =
            serde_json::from_value(serde_json::to_value(&v).unwrap()).unwrap();
        assert_eq!(m["env"], "prod");
        assert_eq!(m["kube_namespace"], "shop");
        assert_eq!(m["canary"], "true");
        assert_eq!(m["_9x"], "y");
    }

    #[test]
    fn a_bad_expression_points_at_its_line() {
        let text = "version: 1\nname: x\ndetect: [{pointer: /a}]\ntitle: payload.a +\n";
        let (m, diags) = check("sources/x.yaml", text);
        assert!(m.is_none());
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!((diags[0].line, diags[0].column), (4, 8));
        assert!(
            diags[0]
                .message
                .starts_with("invalid expression `payload.a +`"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn an_expression_cannot_spin_forever() {
        let text = "version: 1\nname: x\ndetect: [{pointer: /a}]\ntitle: \"range(100000) | map('string') | join | length\"\n";
        let (m, _) = check("sources/x.yaml", text);
        let err = m
            .unwrap()
            .apply(&serde_json::json!({"a": 1}), "p.json")
            .unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }
}
