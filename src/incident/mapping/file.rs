//! The mapping file: its serde mirror, and the checks that compile it into
//! a [`Mapping`] (schema, pointers, names and every expression's syntax),
//! each finding with the file, line and column.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::expression::environment;
use super::{Condition, Mapping, Test};
use crate::diagnostic::Diagnostic;
use crate::incident::shown;
use crate::yaml::{Pos, Spanned};

/// The code of a mapping's schema findings, as for a playbook's.
const SCHEMA: &str = "schema";

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
    } else if crate::incident::IncidentFormat::ALL
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
            if !crate::incident::is_label_name(&key) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
