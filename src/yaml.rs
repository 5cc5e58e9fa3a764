//! The one place irctl touches a YAML crate.
//!
//! Everything else sees [`from_str`], [`Spanned`] and [`YamlError`], so the
//! parser (today serde-saphyr) can be swapped without touching the model.
//! Parsing runs with explicit budgets so an alias bomb or a pathologically
//! nested file fails fast with a located error instead of eating memory.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 1-based line and column in a source file; `0:0` means unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column number.
    pub column: u32,
}

impl Pos {
    /// A position that is known not to be known.
    pub const UNKNOWN: Pos = Pos { line: 0, column: 0 };

    /// Builds a position from 1-based line and column.
    pub fn new(line: u32, column: u32) -> Self {
        Pos { line, column }
    }

    fn from_location(loc: serde_saphyr::Location) -> Self {
        Pos {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }
}

/// A value together with where it was written, so diagnostics can point at it.
#[derive(Clone, Debug, Default)]
pub struct Spanned<T> {
    /// The deserialized value.
    pub value: T,
    /// Where the value starts in its file.
    pub pos: Pos,
}

impl<T> Spanned<T> {
    /// Wraps a value that has no source position (built in code, not parsed).
    pub fn unspanned(value: T) -> Self {
        Spanned {
            value,
            pos: Pos::UNKNOWN,
        }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Spanned {
            value: inner.value,
            pos: Pos::from_location(inner.referenced),
        })
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// What kind of YAML problem was found; validation maps each to a stable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YamlErrorKind {
    /// Not well-formed YAML (or a budget such as nesting depth was exceeded).
    Syntax,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// Well-formed YAML that does not fit the expected shape.
    Schema,
    /// A field that the format does not have; carries the allowed names.
    UnknownField {
        /// The field as written.
        field: String,
        /// The names that would have been accepted.
        expected: Vec<String>,
    },
}

/// A YAML error with the position it refers to.
#[derive(Clone, Debug)]
pub struct YamlError {
    /// Where the problem is.
    pub pos: Pos,
    /// Classification for diagnostics.
    pub kind: YamlErrorKind,
    /// A one-line description without position.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line > 0 {
            write!(
                f,
                "{} at line {} column {}",
                self.message, self.pos.line, self.pos.column
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for YamlError {}

// Playbooks and incidents are small documents; these bounds keep a hostile
// file (alias bomb, 10k-deep nesting) to milliseconds and megabytes. The
// parser enforces them and `budget_message` names them.
const MAX_DEPTH: usize = 64;
const MAX_ALIASES: usize = 1_000;
const MAX_ANCHORS: usize = 1_000;
const MAX_NODES: usize = 250_000;

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ANCHORS;
    budget.max_nodes = MAX_NODES;
    budget.max_documents = 1;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    opts.with_snippet = false;
    opts
}

/// Parses one YAML document into `T`, reporting the first problem with its position.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options::<T>(text, options()).map_err(|e| convert_error(e, text))
}

/// Parses a file of several YAML documents (`---`-separated, as Backstage
/// catalog files are), at most `max_documents`, under the same budgets;
/// empty documents are skipped.
pub fn from_multiple<T: DeserializeOwned>(
    text: &str,
    max_documents: usize,
) -> Result<Vec<T>, YamlError> {
    let mut opts = options();
    if let Some(budget) = opts.budget.as_mut() {
        budget.max_documents = max_documents;
    }
    serde_saphyr::from_multiple_with_options::<T>(text, opts).map_err(|e| {
        let mut err = convert_error(e, text);
        if err.message.starts_with("file holds more than one") {
            err.message = format!("file holds more than {max_documents} YAML documents");
        }
        err
    })
}

fn convert_error(err: serde_saphyr::Error, text: &str) -> YamlError {
    use serde_saphyr::Error as E;
    let pos = err
        .location()
        .map(Pos::from_location)
        .unwrap_or(Pos::UNKNOWN);
    // An error inside an aliased node is wrapped; classify the original one
    // (the position stays the alias's use site).
    let mut inner = err.without_snippet();
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let (kind, message) = match inner {
        E::SerdeUnknownField {
            field, expected, ..
        } => (
            YamlErrorKind::UnknownField {
                field: field.clone(),
                expected: expected.iter().map(|s| s.to_string()).collect(),
            },
            format!("unknown field `{field}`"),
        ),
        E::DuplicateMappingKey { key, .. } => (
            YamlErrorKind::DuplicateKey,
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_string(),
            },
        ),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            YamlErrorKind::Schema,
            format!("expected {expected}, found {unexpected}"),
        ),
        E::SerdeMissingField { field, .. } => {
            // serde-saphyr points at the mapping's last key; the mapping's
            // start is where a reader looks for what is missing.
            return YamlError {
                pos: mapping_start(text, pos),
                kind: YamlErrorKind::Schema,
                message: format!("missing required field `{field}`"),
            };
        }
        E::Unexpected { expected, .. } if *expected != "consumed event" => (
            YamlErrorKind::Schema,
            format!(
                "expected {}, found {}",
                expected_node(expected),
                found_at(text, pos)
            ),
        ),
        E::InvalidScalar { ty, .. } => (
            YamlErrorKind::Schema,
            format!(
                "expected {}, found {}",
                expected_scalar(ty),
                found_at(text, pos)
            ),
        ),
        E::InvalidBooleanStrict { .. } => (
            YamlErrorKind::Schema,
            format!("expected `true` or `false`, found {}", found_at(text, pos)),
        ),
        E::NullIntoString { .. } => (
            YamlErrorKind::Schema,
            "expected a string, found nothing (null)".to_string(),
        ),
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            YamlErrorKind::Schema,
            format!(
                "unknown value `{variant}`, expected one of {}",
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        E::Message { msg, .. } => (YamlErrorKind::Schema, msg.clone()),
        E::Budget { breach, .. } => (YamlErrorKind::Syntax, budget_message(breach)),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => (
            YamlErrorKind::Syntax,
            "too many alias expansions (possible alias bomb)".to_string(),
        ),
        other => {
            let msg = strip_position(&other.to_string());
            if msg.contains("recursion limit exceeded") {
                (
                    YamlErrorKind::Syntax,
                    "document nests too deeply".to_string(),
                )
            } else {
                (YamlErrorKind::Syntax, msg)
            }
        }
    };
    YamlError { pos, kind, message }
}

/// serde-saphyr appends " at line X column Y"; we print positions ourselves.
fn strip_position(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => format!("document nests deeper than {MAX_DEPTH} levels"),
        B::Nodes { .. } => {
            format!("document expands to more than {MAX_NODES} nodes (an alias bomb?)")
        }
        B::Aliases { .. } => format!("document uses more than {MAX_ALIASES} aliases"),
        B::Anchors { .. } => format!("document defines more than {MAX_ANCHORS} anchors"),
        B::Documents { .. } => {
            "file holds more than one YAML document; one playbook per file".to_string()
        }
        other => format!("document exceeds a safety limit ({other:?})"),
    }
}

/// Names the node serde-saphyr's `Unexpected { expected }` asked for.
fn expected_node(expected: &str) -> &str {
    match expected {
        "string scalar" | "scalar" => "a string",
        "sequence start" => "a list",
        "mapping start" | "empty mapping start" => "a mapping",
        "boolean" => "`true` or `false`",
        other => other,
    }
}

/// Names the scalar type a value failed to parse as.
fn expected_scalar(ty: &str) -> &str {
    match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        "char" => "a single character",
        other => other,
    }
}

/// Describes the node written at `pos`: `a list`, `a mapping`, or the scalar in backticks.
fn found_at(text: &str, pos: Pos) -> String {
    let Some(line) = pos
        .line
        .checked_sub(1)
        .and_then(|i| text.lines().nth(i as usize))
    else {
        return "something else".to_string();
    };
    let rest: String = line
        .chars()
        .skip(pos.column.saturating_sub(1) as usize)
        .collect();
    let rest = rest.trim_end();
    match rest.chars().next() {
        None => return "nothing".to_string(),
        Some('[') => return "a list".to_string(),
        Some('{') => return "a mapping".to_string(),
        Some('-') if rest.len() == 1 || rest[1..].starts_with(' ') => return "a list".to_string(),
        Some('|' | '>') => return "a multi-line string".to_string(),
        _ => {}
    }
    let token = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].find(q).map_or(rest, |end| &rest[..end + 2]),
        _ => {
            let token = &rest[..rest.find([',', ']', '}']).unwrap_or(rest.len())];
            let token = token.find(" #").map_or(token, |i| &token[..i]).trim();
            if token.ends_with(':') || token.contains(": ") {
                return "a mapping".to_string();
            }
            token
        }
    };
    let short: String = token.chars().take(40).collect();
    let ellipsis = if short.len() < token.len() { "…" } else { "" };
    format!("`{short}{ellipsis}`")
}

/// Where the mapping that holds the key at `pos` starts: its `{`, or its first key.
pub fn mapping_start(text: &str, pos: Pos) -> Pos {
    let lines: Vec<&str> = text.lines().collect();
    let Some(line) = pos.line.checked_sub(1).and_then(|i| lines.get(i as usize)) else {
        return pos;
    };
    let col = pos.column as usize;
    let before: String = line.chars().take(col.saturating_sub(1)).collect();
    let lead = before.trim_end();
    if lead.ends_with(['{', ',']) {
        // A flow mapping on one line: point at its `{`.
        let mut depth = 0usize;
        for (i, c) in before.char_indices().rev() {
            match c {
                '}' => depth += 1,
                '{' if depth == 0 => {
                    return Pos::new(pos.line, before[..i].chars().count() as u32 + 1);
                }
                '{' => depth -= 1,
                _ => {}
            }
        }
        return pos;
    }
    if !lead.is_empty() {
        // The first key of a sequence item (`- id: a`), or something unusual.
        return pos;
    }
    let mut start = pos;
    for n in (0..pos.line as usize - 1).rev() {
        let text = lines[n];
        let trimmed = text.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let indent = text.len() - trimmed.len();
        if indent + 1 > col {
            // Nested under an earlier key of this mapping.
            continue;
        }
        if indent + 1 == col {
            start = Pos::new(n as u32 + 1, col as u32);
            continue;
        }
        // Less indented: the parent key, or the `- ` that opens this item.
        if let Some(item) = trimmed.strip_prefix('-') {
            let key_col = indent + 1 + (trimmed.len() - item.trim_start().len());
            if key_col == col {
                start = Pos::new(n as u32 + 1, col as u32);
            }
        }
        break;
    }
    start
}

/// Finds where things are written in a YAML text, for positions serde does
/// not keep: map keys (`inputs.NAME`, a test's `results.STEP`), a name
/// inside a template, a line inside a block scalar. Playbook validation and
/// test checking share it so a key is found by one rule everywhere.
pub struct Locator<'a> {
    text: &'a str,
    /// Byte offset of each line's start.
    starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    /// Indexes the lines of `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator { text, starts }
    }

    /// The text it searches.
    pub fn text(&self) -> &'a str {
        self.text
    }

    fn offset(&self, pos: Pos) -> usize {
        if pos.line == 0 {
            return 0;
        }
        let Some(&start) = self.starts.get(pos.line as usize - 1) else {
            return self.text.len();
        };
        let line = &self.text[start..];
        let col = line
            .char_indices()
            .nth(pos.column.saturating_sub(1) as usize)
            .map(|(i, _)| i)
            .unwrap_or(0);
        start + col
    }

    fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        Pos::new(line as u32, column as u32)
    }

    /// The first occurrence of `needle` at or after `from` (within 400
    /// lines, so a name that is not there costs little), else `from`.
    pub fn locate(&self, from: Pos, needle: &str) -> Pos {
        if from.line == 0 || needle.is_empty() {
            return from;
        }
        let off = self.offset(from);
        let end = self
            .starts
            .get(from.line as usize + 400)
            .copied()
            .unwrap_or(self.text.len());
        match self.text[off..end].find(needle) {
            Some(i) => self.pos(off + i),
            None => from,
        }
    }

    /// The first mapping key `key` (written `key:`, in a block or a flow
    /// mapping) at or after `from`, not a mere substring of a longer key or
    /// of a value.
    pub fn locate_key(&self, from: Pos, key: &str) -> Option<Pos> {
        if from.line == 0 || key.is_empty() {
            return None;
        }
        let needle = format!("{key}:");
        let mut off = self.offset(from);
        while let Some(i) = self.text[off..].find(&needle) {
            let at = off + i;
            let before = self.text[..at].chars().next_back();
            let after = self.text[at + needle.len()..].chars().next();
            let starts_key =
                before.is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ',' | '-'));
            let ends_key = after.is_none_or(|c| c.is_whitespace() || c == '{');
            if starts_key && ends_key {
                return Some(self.pos(at));
            }
            off = at + needle.len();
        }
        None
    }

    /// Where the top-level `key:` is written (at the start of a line).
    pub fn top_level_key(&self, key: &str) -> Option<Pos> {
        let mut from = Pos::new(1, 1);
        loop {
            let at = self.locate_key(from, key)?;
            if at.column == 1 {
                return Some(at);
            }
            from = Pos::new(at.line + 1, 1);
            self.starts.get(from.line as usize - 1)?;
        }
    }

    /// Where the top-level `top:` and then each key of `path` below it is
    /// written: the top-level key when a nested one is not found, else 1:1.
    pub fn key_path(&self, top: &str, path: &[&str]) -> Pos {
        let Some(start) = self.top_level_key(top) else {
            return Pos::new(1, 1);
        };
        path.iter()
            .try_fold(start, |at, key| self.locate_key(at, key))
            .unwrap_or(start)
    }

    /// Whether the scalar at `pos` is a block scalar (`|` or `>`), whose
    /// text starts on the next line.
    fn is_block_scalar(&self, pos: Pos) -> bool {
        let off = self.offset(pos);
        matches!(self.text[off..].chars().next(), Some('|' | '>'))
    }

    /// Maps line `n` (1-based) of a scalar written at `pos` to a file
    /// position: the first non-blank column of that line.
    pub fn scalar_line(&self, pos: Pos, n: usize) -> Pos {
        if pos.line == 0 {
            return pos;
        }
        if n <= 1 && !self.is_block_scalar(pos) {
            return pos;
        }
        let line = if self.is_block_scalar(pos) {
            pos.line as usize + n
        } else {
            pos.line as usize + n - 1
        };
        let Some(&start) = self.starts.get(line - 1) else {
            return pos;
        };
        let text = self.text[start..].lines().next().unwrap_or("");
        let indent = text.chars().take_while(|c| *c == ' ').count();
        Pos::new(line as u32, indent as u32 + 1)
    }
}
