//! Every schema error of a file in one pass.
//!
//! serde stops at the first field that does not fit, so a beginner's file
//! with five mistakes would take five rounds of `irctl validate`. When the
//! YAML parses but does not fit the model, this walks the parsed tree
//! against the playbook's own JSON Schema (the one `irctl schema` prints,
//! derived from the model's types, so it cannot drift from them) and
//! collects every unknown field, wrong type, bad enum value and missing
//! field, each at its line and column, with "did you mean" for near misses.
//!
//! The walk is deliberately lenient where serde is (a number where text is
//! expected is text), and serde's own first error is always kept: the walk
//! can only add findings, never hide the one serde found.

use std::sync::OnceLock;

use serde_json::Value;

use super::tree::{self, Node};
use crate::diagnostic::{Diagnostic, backticked, did_you_mean};
use crate::playbook::model::RawPlaybook;
use crate::yaml::{self, Pos, Spanned, YamlError, YamlErrorKind};

/// The playbook's JSON Schema, as a value, built once.
fn playbook_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let generator = schemars::generate::SchemaSettings::draft07().into_generator();
        let schema = generator.into_root_schema_for::<RawPlaybook>();
        serde_json::to_value(schema).unwrap_or(Value::Bool(true))
    })
}

/// The findings for a file whose YAML parsed but did not fit: every schema
/// error the walk finds, plus `first` (serde's) unless the walk found one
/// on the same line. Sorted by position.
pub(super) fn collect(file: &str, text: &str, first: Diagnostic) -> Vec<Diagnostic> {
    let Ok(tree) = tree::tree(text) else {
        return vec![first];
    };
    let root = playbook_schema();
    let mut walk = Walk {
        root,
        file,
        text,
        diags: Vec::new(),
    };
    walk.check(&tree, root);
    let mut diags = walk.diags;
    if !diags.iter().any(|d| d.line == first.line) {
        diags.push(first);
    }
    diags.sort_by_key(|d| (d.line, d.column));
    diags.dedup_by(|a, b| a.line == b.line && a.column == b.column && a.message == b.message);
    diags
}

struct Walk<'a> {
    root: &'a Value,
    file: &'a str,
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl<'a> Walk<'a> {
    /// `schema` with its `$ref` followed (into `definitions` or `$defs`).
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let path = r.trim_start_matches('#');
            match self.root.pointer(path) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn error(&mut self, pos: Pos, message: String, help: Option<String>) {
        self.diags
            .push(Diagnostic::error(self.file, pos, "schema", message).with_optional_help(help));
    }

    fn check(&mut self, node: &Spanned<Node>, schema: &'a Value) {
        let schema = self.resolve(schema);
        let Some(obj) = schema.as_object() else {
            // `true` accepts anything; `false` nothing (never generated here).
            return;
        };
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(node, s);
            }
        }
        let alternatives = obj
            .get("anyOf")
            .or_else(|| obj.get("oneOf"))
            .and_then(Value::as_array);
        if let Some(alts) = alternatives {
            self.check_alternatives(node, alts);
            return;
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            self.check_enum(node, values);
            return;
        }
        if let Some(c) = obj.get("const") {
            self.check_enum(node, std::slice::from_ref(c));
            return;
        }
        let types = types_of(obj.get("type"));
        if types.is_empty() {
            return;
        }
        if !types.iter().any(|t| fits(&node.value, t)) {
            self.error(
                node.pos,
                format!(
                    "expected {}, found {}",
                    describe_types(&types),
                    node.value.describe()
                ),
                None,
            );
            return;
        }
        match &node.value {
            Node::Map(entries) => self.check_object(node.pos, entries, obj),
            Node::Seq(items) => {
                if let Some(item_schema) = obj.get("items") {
                    for item in items {
                        self.check(item, item_schema);
                    }
                }
            }
            Node::Int(i) if *i < 0 && obj.get("minimum").and_then(Value::as_i64) == Some(0) => {
                self.error(
                    node.pos,
                    format!("expected a non-negative integer, found `{i}`"),
                    None,
                );
            }
            _ => {}
        }
    }

    fn check_object(
        &mut self,
        pos: Pos,
        entries: &[(Spanned<String>, Spanned<Node>)],
        obj: &'a serde_json::Map<String, Value>,
    ) {
        let props = obj.get("properties").and_then(Value::as_object);
        let extra = obj.get("additionalProperties");
        for (key, value) in entries {
            match props.and_then(|p| p.get(&key.value)) {
                Some(s) => self.check(value, s),
                None => match extra {
                    Some(Value::Bool(false)) => {
                        let expected: Vec<String> = props
                            .map(|p| p.keys().cloned().collect())
                            .unwrap_or_default();
                        let e = YamlError {
                            pos: key.pos,
                            kind: YamlErrorKind::UnknownField {
                                field: key.value.clone(),
                                expected,
                            },
                            message: format!("unknown field `{}`", key.value),
                        };
                        self.diags
                            .push(Diagnostic::from_yaml(self.file, e, "schema"));
                    }
                    Some(s) if s.is_object() => self.check(value, s),
                    _ => {}
                },
            }
        }
        for name in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !entries.iter().any(|(k, _)| k.value == name) {
                // Where a reader looks for what is missing: the mapping's
                // `{` or first key, as serde's own error says it.
                let at = entries
                    .first()
                    .map_or(pos, |(k, _)| yaml::mapping_start(self.text, k.pos));
                self.error(at, format!("missing required field `{name}`"), None);
            }
        }
    }

    /// `anyOf`/`oneOf`: a list of allowed words (an enum with documented
    /// variants) is checked as one; otherwise the node must fit one
    /// alternative, and the errors shown are those of the alternative of
    /// its own kind.
    fn check_alternatives(&mut self, node: &Spanned<Node>, alts: &'a [Value]) {
        let words: Option<Vec<&Value>> = alts
            .iter()
            .map(|a| self.resolve(a))
            .filter(|a| types_of(a.get("type")) != ["null"])
            .map(|a| a.get("const").or_else(|| single_enum(a)))
            .collect();
        let nullable = alts
            .iter()
            .any(|a| types_of(self.resolve(a).get("type")) == ["null"]);
        if let Some(words) = words.filter(|w| !w.is_empty()) {
            if nullable && node.value == Node::Null {
                return;
            }
            let words: Vec<Value> = words.into_iter().cloned().collect();
            self.check_enum(node, &words);
            return;
        }
        let mut best: Option<Vec<Diagnostic>> = None;
        for alt in alts {
            let mut trial = Walk {
                root: self.root,
                file: self.file,
                text: self.text,
                diags: Vec::new(),
            };
            trial.check(node, alt);
            if trial.diags.is_empty() {
                return;
            }
            let kinds = types_of(self.resolve(alt).get("type"));
            let kind_fits = kinds.is_empty() || kinds.iter().any(|t| fits(&node.value, t));
            if kind_fits && best.is_none() {
                best = Some(trial.diags);
            }
        }
        match best {
            Some(diags) => self.diags.extend(diags),
            None => {
                let mut kinds: Vec<String> = alts
                    .iter()
                    .flat_map(|a| types_of(self.resolve(a).get("type")))
                    .filter(|t| t != "null")
                    .collect();
                kinds.dedup();
                self.error(
                    node.pos,
                    format!(
                        "expected {}, found {}",
                        describe_types(&kinds),
                        node.value.describe()
                    ),
                    None,
                );
            }
        }
    }

    fn check_enum(&mut self, node: &Spanned<Node>, values: &[Value]) {
        let written = match &node.value {
            Node::Str(s) => Value::String(s.clone()),
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => i64::try_from(*i).map_or(Value::Null, Value::from),
            _ => Value::Null,
        };
        if values.contains(&written) {
            return;
        }
        let names: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        let shown = match &node.value {
            Node::Str(s) => s.clone(),
            other => other.describe().trim_matches('`').to_string(),
        };
        self.error(
            node.pos,
            format!(
                "unknown value `{shown}`, expected one of {}",
                backticked(&names, ", ")
            ),
            suggest_word(&shown, &names),
        );
    }
}

/// "did you mean" for a near-miss word: the same word in another case or
/// with `-` for `_` first (`on-failure`, `On_Failure`), else the closest.
pub(super) fn suggest_word(written: &str, names: &[&str]) -> Option<String> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', ' '], "_");
    names
        .iter()
        .find(|n| norm(n) == norm(written))
        .map(|n| format!("did you mean `{n}`?"))
        .or_else(|| did_you_mean(written, names.iter().copied()))
}

/// The `enum` of a schema holding exactly one value.
fn single_enum(schema: &Value) -> Option<&Value> {
    match schema
        .get("enum")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([one]) => Some(one),
        _ => None,
    }
}

/// A schema's `type`, as a list.
fn types_of(t: Option<&Value>) -> Vec<String> {
    match t {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether `node` can be read as JSON Schema type `t` the way the YAML
/// reader reads it: leniently for text, strictly for structure.
fn fits(node: &Node, t: &str) -> bool {
    match t {
        "null" => *node == Node::Null,
        "boolean" => matches!(node, Node::Bool(_)),
        "integer" => match node {
            Node::Int(_) => true,
            Node::Float(f) => f.fract() == 0.0,
            Node::Str(s) => s.trim().parse::<i128>().is_ok(),
            _ => false,
        },
        "number" => match node {
            Node::Int(_) | Node::Float(_) => true,
            Node::Str(s) => s.trim().parse::<f64>().is_ok(),
            _ => false,
        },
        "string" => matches!(
            node,
            Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_)
        ),
        "array" => matches!(node, Node::Seq(_)),
        "object" => matches!(node, Node::Map(_)),
        _ => true,
    }
}

/// `a string`, `a list or a mapping`.
fn describe_types(types: &[String]) -> String {
    let names: Vec<&str> = types
        .iter()
        .filter(|t| *t != "null")
        .map(|t| match t.as_str() {
            "boolean" => "`true` or `false`",
            "integer" => "an integer",
            "number" => "a number",
            "string" => "a string",
            "array" => "a list",
            "object" => "a mapping",
            other => other,
        })
        .collect();
    match names.as_slice() {
        [] => "nothing".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
