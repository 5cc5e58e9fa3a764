//! Checking playbooks: every mistake that can be found without running
//! anything, all collected (never just the first), each pointing at the
//! offending node.
//!
//! [`check_file`] compiles one file into a [`Playbook`] (only when it has no
//! errors); [`check_set`] runs the checks that need every playbook at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::matching::{Matcher, MatcherError};
use crate::playbook::model::{RawPlaybook, RawRetry, RawStep, Text};
use crate::playbook::{
    ActionKind, DEFAULT_STEP_TIMEOUT, Drill, Playbook, Provenance, RetryPolicy, Step,
};
use crate::template::{self, ROOTS};
use crate::yaml::{self, Pos, Spanned, YamlErrorKind};

/// Output fields a step exposes to later steps as `steps.ID.FIELD`.
pub const STEP_OUTPUTS: &[&str] = &[
    "status",
    "exit_code",
    "stdout",
    "stderr",
    "http_status",
    "headers",
    "body",
    "json",
    "duration_ms",
    "attempts",
    "simulated",
];

/// Fields of `incident` visible to templates.
pub const INCIDENT_FIELDS: &[&str] = &[
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
    "raw",
];

const RUN_FIELDS: &[&str] = &["id", "started_at", "drill", "dry_run"];
const PLAYBOOK_FIELDS: &[&str] = &["name", "title", "owner", "commit", "path", "blob", "repo"];

/// Byte offsets of line starts, to move between positions and offsets.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
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

    /// The first occurrence of `needle` at or after `from` (within 400 lines).
    fn locate(&self, from: Pos, needle: &str) -> Pos {
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

    /// The first mapping key `key` (written `key:`) at or after `from`, not
    /// a mere substring of a longer key or of a value.
    fn locate_key(&self, from: Pos, key: &str) -> Option<Pos> {
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

    /// Whether the scalar at `pos` is a block scalar (`|` or `>`), whose text starts on the next line.
    fn is_block_scalar(&self, pos: Pos) -> bool {
        let off = self.offset(pos);
        matches!(self.text[off..].chars().next(), Some('|' | '>'))
    }

    /// Maps line `n` (1-based) of a template written at `pos` to a file position.
    fn template_line(&self, pos: Pos, n: usize) -> Pos {
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

/// What a template field is, which decides how it is parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Template,
    Expression,
    Url,
}

/// One templated value of a step, with where it is.
struct Field<'a> {
    label: String,
    text: &'a str,
    pos: Pos,
    kind: FieldKind,
}

struct Checker<'a> {
    file: &'a str,
    index: LineIndex<'a>,
    diags: Vec<Diagnostic>,
    used_secrets: HashSet<String>,
    used_inputs: HashSet<String>,
}

impl<'a> Checker<'a> {
    fn error(&mut self, pos: Pos, code: &'static str, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::error(self.file, pos, code, msg));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn warning(&mut self, pos: Pos, code: &'static str, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::warning(self.file, pos, code, msg));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn duration(&mut self, field: &str, value: &Option<Spanned<String>>) -> Option<Duration> {
        let v = value.as_ref()?;
        match crate::duration::parse(&v.value) {
            Ok(d) => Some(d),
            Err(e) => {
                let width = v.value.len();
                let d = self.error(v.pos, "invalid-duration", format!("`{field}`: {e}"));
                d.width = width.max(1);
                None
            }
        }
    }

    fn retry(&mut self, field: &str, retry: &RawRetry) -> RetryPolicy {
        let mut policy = RetryPolicy {
            attempts: retry.attempts.value,
            ..RetryPolicy::default()
        };
        if !(1..=100).contains(&retry.attempts.value) {
            self.error(
                retry.attempts.pos,
                "schema",
                format!(
                    "`{field}.attempts` must be between 1 and 100, found {}",
                    retry.attempts.value
                ),
            );
        }
        if let Some(d) = self.duration(&format!("{field}.backoff"), &retry.backoff) {
            policy.backoff = d;
        }
        if let Some(d) = self.duration(&format!("{field}.max_backoff"), &retry.max_backoff) {
            policy.max_backoff = d;
        }
        if policy.max_backoff < policy.backoff {
            policy.max_backoff = policy.backoff;
        }
        policy
    }

    fn syntax(&mut self, field: &Field<'_>, err: template::SyntaxError) {
        let pos = self.index.template_line(field.pos, err.line);
        let (code, what) = match field.kind {
            FieldKind::Expression => ("invalid-expression", "expression"),
            _ => ("template-syntax", "template"),
        };
        self.error(
            pos,
            code,
            format!("invalid {what} in `{}`: {}", field.label, err.message),
        );
    }

    /// Checks the variables a field reads against what it can see.
    fn refs(
        &mut self,
        field: &Field<'_>,
        vars: &BTreeSet<String>,
        allowed_roots: &[&str],
        ctx: &StepScope<'_>,
    ) {
        for path in vars {
            let segs: Vec<&str> = path.split('.').collect();
            let root = segs[0];
            let at = self.index.locate(field.pos, path);
            let width = path.len();
            if !allowed_roots.contains(&root) {
                let known = if allowed_roots.len() == 1 {
                    format!("only `{}` is available here", allowed_roots[0])
                } else {
                    format!(
                        "available here: {}",
                        allowed_roots
                            .iter()
                            .map(|r| format!("`{r}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let help = did_you_mean(root, allowed_roots.iter().copied()).unwrap_or(known);
                self.error(
                    at,
                    "undefined-variable",
                    format!("`{root}` is not defined in `{}`", field.label),
                )
                .with_width_mut(width)
                .help = Some(help);
                continue;
            }
            let second = segs.get(1).copied();
            match (root, second) {
                ("secrets", Some(name)) => {
                    self.used_secrets.insert(name.to_string());
                    if !ctx.secrets.contains(&name) {
                        let help =
                            did_you_mean(name, ctx.secrets.iter().copied()).unwrap_or_else(|| {
                                format!("add `{name}` to the playbook's `secrets:` list")
                            });
                        self.error(
                            at,
                            "undeclared-secret",
                            format!("secret `{name}` is not declared in `secrets:`"),
                        )
                        .with_width_mut(width)
                        .help = Some(help);
                    }
                }
                ("inputs", Some(name)) => {
                    self.used_inputs.insert(name.to_string());
                    if !ctx.inputs.contains(&name) {
                        let help = did_you_mean(name, ctx.inputs.iter().copied())
                            .unwrap_or_else(|| format!("declare it under `inputs:` as `{name}:`"));
                        self.error(
                            at,
                            "unknown-input",
                            format!("input `{name}` is not declared in `inputs:`"),
                        )
                        .with_width_mut(width)
                        .help = Some(help);
                    }
                }
                ("steps", Some(name)) => {
                    self.step_ref(at, width, name, segs.get(2).copied(), field, ctx)
                }
                ("incident", Some(name)) => {
                    self.field_ref(at, width, "incident", name, INCIDENT_FIELDS)
                }
                ("run", Some(name)) => self.field_ref(at, width, "run", name, RUN_FIELDS),
                ("playbook", Some(name)) => {
                    self.field_ref(at, width, "playbook", name, PLAYBOOK_FIELDS)
                }
                _ => {}
            }
        }
    }

    fn field_ref(&mut self, at: Pos, width: usize, root: &str, name: &str, fields: &[&str]) {
        if !fields.contains(&name) {
            let help = did_you_mean(name, fields.iter().copied())
                .unwrap_or_else(|| format!("`{root}` has: {}", fields.join(", ")));
            self.error(
                at,
                "undefined-variable",
                format!("`{root}.{name}` does not exist"),
            )
            .with_width_mut(width)
            .help = Some(help);
        }
    }

    fn step_ref(
        &mut self,
        at: Pos,
        width: usize,
        name: &str,
        output: Option<&str>,
        field: &Field<'_>,
        ctx: &StepScope<'_>,
    ) {
        let Some(&target) = ctx.ids.get(name) else {
            let help = did_you_mean(name, ctx.ids.keys().copied());
            self.error(
                at,
                "unknown-step-ref",
                format!("`steps.{name}` refers to a step that does not exist"),
            )
            .with_width_mut(width)
            .help = help;
            return;
        };
        if let Some(me) = ctx.current
            && !ctx.ancestors.contains(&target)
        {
            let msg = if target == me {
                format!(
                    "step `{}` reads its own output `steps.{name}` in `{}`",
                    ctx.current_id, field.label
                )
            } else {
                format!(
                    "step `{}` reads `steps.{name}`, but `{name}` is not one of its `needs` (directly or indirectly), so its output may not exist yet",
                    ctx.current_id
                )
            };
            self.error(at, "not-an-ancestor", msg)
                .with_width_mut(width)
                .help = Some(format!("add `{name}` to `needs` of `{}`", ctx.current_id));
        }
        if let Some(out) = output
            && !STEP_OUTPUTS.contains(&out)
        {
            let help = did_you_mean(out, STEP_OUTPUTS.iter().copied())
                .unwrap_or_else(|| format!("a step has: {}", STEP_OUTPUTS.join(", ")));
            self.error(
                at,
                "undefined-variable",
                format!("`steps.{name}.{out}` is not a step output"),
            )
            .with_width_mut(width)
            .help = Some(help);
        }
    }

    fn check_field(&mut self, field: &Field<'_>, roots: &[&str], ctx: &StepScope<'_>) {
        let analysed = match field.kind {
            FieldKind::Expression => template::analyze_expression(field.text),
            _ => {
                if !template::is_templated(field.text) {
                    if field.kind == FieldKind::Url {
                        self.literal_url(field);
                    }
                    return;
                }
                template::analyze_template(field.text)
            }
        };
        match analysed {
            Err(e) => self.syntax(field, e),
            Ok(vars) => {
                self.refs(field, &vars, roots, ctx);
                if field.kind == FieldKind::Url {
                    self.templated_url(field);
                }
                if let Some(expr) = unsafe_incident_interpolation(field.text) {
                    let expr_at = self.index.locate(field.pos, expr);
                    let at = self.index.locate(expr_at, "safe");
                    self.warning(
                        at,
                        "unsafe-interpolation",
                        format!("`| safe` disables escaping of incident data in `{}`", field.label),
                    )
                    .help = Some("incident fields are attacker-controlled; remove `| safe` so the value is quoted".into());
                }
            }
        }
    }

    fn literal_url(&mut self, field: &Field<'_>) {
        match url::Url::parse(field.text.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => {
                let scheme = u.scheme().to_string();
                self.error(
                    field.pos,
                    "invalid-url",
                    format!("`{}`: unsupported URL scheme `{scheme}`", field.label),
                )
                .help = Some("use an http:// or https:// URL".into());
            }
            Err(e) => {
                self.error(
                    field.pos,
                    "invalid-url",
                    format!(
                        "`{}`: invalid URL `{}`: {e}",
                        field.label,
                        field.text.trim()
                    ),
                )
                .with_width_mut(field.text.len());
            }
        }
    }

    fn templated_url(&mut self, field: &Field<'_>) {
        let prefix = field.text.trim_start();
        let literal = &prefix[..prefix
            .find("{{")
            .or_else(|| prefix.find("{%"))
            .unwrap_or(prefix.len())];
        if let Some(i) = literal.find("://") {
            let scheme = &literal[..i];
            if !matches!(scheme, "http" | "https") {
                self.error(
                    field.pos,
                    "invalid-url",
                    format!("`{}`: unsupported URL scheme `{scheme}`", field.label),
                )
                .help = Some("use an http:// or https:// URL".into());
            }
        }
    }
}

trait WidthMut {
    fn with_width_mut(&mut self, width: usize) -> &mut Self;
}

impl WidthMut for Diagnostic {
    fn with_width_mut(&mut self, width: usize) -> &mut Self {
        self.width = width.max(1);
        self
    }
}

/// The first `{{ … }}` expression that pipes incident data through `safe`.
fn unsafe_incident_interpolation(text: &str) -> Option<&str> {
    text.split("{{").skip(1).find_map(|chunk| {
        let expr = chunk.split("}}").next().unwrap_or("");
        let unsafe_ = expr.contains("incident")
            && expr
                .split('|')
                .skip(1)
                .any(|f| f.trim().starts_with("safe"));
        unsafe_.then_some(expr)
    })
}

/// What a step's templates can see.
struct StepScope<'a> {
    ids: HashMap<&'a str, usize>,
    secrets: Vec<&'a str>,
    inputs: Vec<&'a str>,
    current: Option<usize>,
    current_id: &'a str,
    ancestors: HashSet<usize>,
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles one file into a playbook, collecting every finding in it.
pub fn check_file(
    file: &str,
    text: &str,
    provenance: Provenance,
) -> (Option<Playbook>, Vec<Diagnostic>) {
    let meaningful = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !meaningful {
        let d = Diagnostic::error(file, Pos::new(1, 1), "schema", "empty playbook file")
            .with_help("a playbook starts with `version: 1`, `name`, `title` and `steps`");
        return (None, vec![d]);
    }
    let raw: RawPlaybook = match yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (code, help) = match &e.kind {
                YamlErrorKind::Syntax => ("yaml-syntax", None),
                YamlErrorKind::DuplicateKey => (
                    "duplicate-key",
                    Some("remove one of the two keys".to_string()),
                ),
                YamlErrorKind::Schema => ("schema", None),
                YamlErrorKind::UnknownField { field, expected } => (
                    "schema",
                    did_you_mean(field, expected.iter().map(String::as_str)).or_else(|| {
                        Some(format!(
                            "expected one of {}",
                            expected
                                .iter()
                                .map(|e| format!("`{e}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }),
                ),
            };
            let width = match &e.kind {
                YamlErrorKind::UnknownField { field, .. } => field.len(),
                _ => 1,
            };
            let d = Diagnostic::error(file, e.pos, code, e.message.clone())
                .with_optional_help(help)
                .with_width(width);
            return (None, vec![d]);
        }
    };
    let mut c = Checker {
        file,
        index: LineIndex::new(text),
        diags: Vec::new(),
        used_secrets: HashSet::new(),
        used_inputs: HashSet::new(),
    };
    let playbook = check_playbook(&mut c, raw, provenance);
    let Checker { mut diags, .. } = c;
    diags.sort_by_key(|d| (d.line, d.column, d.severity));
    let has_errors = diags.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { Some(playbook) }, diags)
}

fn check_playbook(c: &mut Checker<'_>, raw: RawPlaybook, provenance: Provenance) -> Playbook {
    if raw.version.value != 1 {
        c.error(
            raw.version.pos,
            "schema",
            format!(
                "unsupported playbook version `{}`; this irctl reads version 1",
                raw.version.value
            ),
        );
    }
    if !is_kebab(&raw.name.value) {
        let width = raw.name.value.len();
        c.error(
            raw.name.pos,
            "invalid-name",
            format!("playbook name `{}` is not kebab-case", raw.name.value),
        )
        .with_width_mut(width)
        .help =
            Some("use lowercase letters, digits and single dashes, e.g. `disk-filling-up`".into());
    }
    let timeout = c.duration("timeout", &raw.timeout);
    let default_timeout = c.duration("defaults.timeout", &raw.defaults.timeout);
    let default_retry = raw
        .defaults
        .retry
        .as_ref()
        .map(|r| c.retry("defaults.retry", r));

    // Matchers and the match expression see only the incident.
    let mut matchers = Vec::new();
    let empty_scope = StepScope {
        ids: HashMap::new(),
        secrets: Vec::new(),
        inputs: Vec::new(),
        current: None,
        current_id: "",
        ancestors: HashSet::new(),
    };
    if let Some(m) = &raw.match_ {
        for text in &m.labels {
            match Matcher::parse(&text.value) {
                Ok(parsed) => matchers.push(parsed),
                Err(MatcherError::Syntax(msg)) => {
                    c.error(text.pos, "invalid-matcher", msg)
                        .with_width_mut(text.value.len());
                }
                Err(MatcherError::Regex(msg)) => {
                    c.error(text.pos, "invalid-regex", msg)
                        .with_width_mut(text.value.len());
                }
            }
        }
        if let Some(when) = &m.when {
            let field = Field {
                label: "match.when".into(),
                text: &when.value,
                pos: when.pos,
                kind: FieldKind::Expression,
            };
            c.check_field(&field, &["incident"], &empty_scope);
        }
    }

    // Input defaults may use the incident and run metadata, not steps.
    for (name, input) in &raw.inputs {
        if let Some(Spanned {
            value: serde_json::Value::String(s),
            pos,
        }) = &input.default
        {
            let field = Field {
                label: format!("inputs.{name}.default"),
                text: s,
                pos: *pos,
                kind: FieldKind::Template,
            };
            c.check_field(&field, &["incident", "run", "playbook"], &empty_scope);
        }
    }

    if raw.steps.is_empty() {
        c.error(
            raw.name.pos,
            "schema",
            "a playbook needs at least one step in `steps:`",
        );
    }

    // Step ids first, so references can be resolved in any order.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, step) in raw.steps.iter().enumerate() {
        let id = step.id.value.as_str();
        if !is_identifier(id) {
            c.error(
                step.id.pos,
                "invalid-step-id",
                format!("step id `{id}` is not an identifier"),
            )
            .with_width_mut(id.len())
            .help = Some(format!(
                "use letters, digits and `_` so templates can say `steps.{}`",
                id.replace(['-', ' ', '.'], "_")
            ));
        }
        if ids.contains_key(id) {
            c.error(
                step.id.pos,
                "duplicate-step-id",
                format!("step id `{id}` is used more than once"),
            )
            .with_width_mut(id.len());
        } else {
            ids.insert(id, i);
        }
    }

    // Resolve needs.
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); raw.steps.len()];
    for (i, step) in raw.steps.iter().enumerate() {
        let mut seen = HashSet::new();
        for need in &step.needs {
            let width = need.value.len();
            if need.value == step.id.value {
                c.error(
                    need.pos,
                    "self-need",
                    format!("step `{}` needs itself", step.id.value),
                )
                .with_width_mut(width);
                continue;
            }
            match ids.get(need.value.as_str()) {
                Some(&j) => {
                    if seen.insert(j) {
                        needs[i].push(j);
                    }
                }
                None => {
                    let help = did_you_mean(&need.value, ids.keys().copied());
                    c.error(
                        need.pos,
                        "unknown-need",
                        format!(
                            "step `{}` needs `{}`, which does not exist",
                            step.id.value, need.value
                        ),
                    )
                    .with_width_mut(width)
                    .help = help;
                }
            }
        }
    }
    report_cycles(c, &raw.steps, &needs);

    let secrets: Vec<&str> = raw.secrets.iter().map(|s| s.value.as_str()).collect();
    let inputs: Vec<&str> = raw.inputs.keys().map(String::as_str).collect();
    let mut steps = Vec::new();
    for (i, step) in raw.steps.iter().enumerate() {
        let scope = StepScope {
            ids: ids.clone(),
            secrets: secrets.clone(),
            inputs: inputs.clone(),
            current: Some(i),
            current_id: &step.id.value,
            ancestors: ancestors(i, &needs),
        };
        let kind = check_action(c, step);
        for field in step_fields(step) {
            c.check_field(&field, ROOTS, &scope);
        }
        if let Some(when) = &step.when
            && when.value.trim().eq_ignore_ascii_case("false")
        {
            c.warning(
                when.pos,
                "unreachable-step",
                format!("step `{}` never runs: its `when` is `false`", step.id.value),
            );
        }
        if step.http.as_ref().is_some_and(|h| h.insecure) {
            let pos = c
                .index
                .locate_key(step.id.pos, "insecure")
                .unwrap_or(step.id.pos);
            c.warning(
                pos,
                "insecure-tls",
                format!(
                    "step `{}` disables TLS certificate verification",
                    step.id.value
                ),
            )
            .help = Some("remove `insecure: true` or trust the server's CA on this machine".into());
        }
        let timeout = c
            .duration(&format!("steps.{}.timeout", step.id.value), &step.timeout)
            .or(default_timeout)
            .unwrap_or(DEFAULT_STEP_TIMEOUT);
        let retry = match &step.retry {
            Some(r) => c.retry(&format!("steps.{}.retry", step.id.value), r),
            None => default_retry.unwrap_or_default(),
        };
        steps.push(Step {
            raw: step.clone(),
            id: step.id.value.clone(),
            needs: needs[i].clone(),
            kind: kind.unwrap_or(ActionKind::Shell),
            timeout,
            retry,
        });
    }

    check_drill_notify(c, &raw, &secrets, &inputs);
    for s in &raw.secrets {
        if !c.used_secrets.contains(&s.value) {
            c.warning(
                s.pos,
                "unused-secret",
                format!("secret `{}` is declared but never used", s.value),
            )
            .with_width_mut(s.value.len());
        }
    }
    for name in raw.inputs.keys() {
        if !c.used_inputs.contains(name) {
            let pos = key_pos(&c.index, "inputs", &[name]);
            c.warning(
                pos,
                "unused-input",
                format!("input `{name}` is declared but never used"),
            )
            .with_width_mut(name.len());
        }
    }

    let drill = check_drill(c, &raw);
    let test_findings = crate::playtest::check::inline_diagnostics(c.file, c.index.text, &raw);
    c.diags.extend(test_findings);
    Playbook {
        name: raw.name.value.clone(),
        matchers,
        steps,
        timeout,
        drill,
        provenance,
        raw,
    }
}

/// Where the top-level `key:` is written (at the start of a line).
fn top_level_key(index: &LineIndex<'_>, key: &str) -> Option<Pos> {
    let mut from = Pos::new(1, 1);
    loop {
        let at = index.locate_key(from, key)?;
        if at.column == 1 {
            return Some(at);
        }
        from = Pos::new(at.line + 1, 1);
        index.starts.get(from.line as usize - 1)?;
    }
}

/// Where the top-level `top:` and then each key of `path` below it is
/// written (map keys carry no position): the top-level key when a nested one
/// is not found, else 1:1.
fn key_pos(index: &LineIndex<'_>, top: &str, path: &[&str]) -> Pos {
    let Some(start) = top_level_key(index, top) else {
        return Pos::new(1, 1);
    };
    path.iter()
        .try_fold(start, |at, key| index.locate_key(at, key))
        .unwrap_or(start)
}

fn check_drill(c: &mut Checker<'_>, raw: &RawPlaybook) -> Option<Drill> {
    let Some(d) = &raw.drill else {
        c.warning(
            raw.name.pos,
            "no-drill",
            format!("playbook `{}` has no `drill` section", raw.name.value),
        )
        .with_width_mut(raw.name.value.len())
        .help = Some("add `drill:` with a synthetic `incident` so the playbook is exercised before a real outage".into());
        return None;
    };
    if let Some(s) = &d.schedule
        && let Err(e) = crate::schedule::parse(&s.value)
    {
        c.error(
            s.pos,
            "invalid-cron",
            format!("invalid drill schedule `{}`: {e}", s.value),
        )
        .with_width_mut(s.value.len())
        .help = Some(
            "use 5 fields: minute hour day-of-month month day-of-week, e.g. `0 10 * * MON`".into(),
        );
    }
    // Drills never prompt, so a real action behind a question fails every drill.
    for step in raw.steps.iter().filter(|s| !s.simulate_in_drill) {
        if let Some(q) = &step.confirm {
            c.warning(
                q.pos,
                "drill-needs-confirmation",
                format!(
                    "step `{}` asks for confirmation, so the drill fails: drills run unattended and never approve",
                    step.id.value
                ),
            )
            .help = Some("add `simulate_in_drill: true` so drills record the action instead of running it".into());
        }
    }
    let max_duration = c.duration("drill.max_duration", &d.max_duration);
    let incident = match crate::incident::from_value(d.incident.value.clone(), c.file) {
        Ok(incident) => Some(incident),
        Err(e) => {
            c.error(
                d.incident.pos,
                "invalid-drill-incident",
                format!("drill incident: {e}"),
            );
            None
        }
    };
    for name in d.inputs.keys() {
        if !raw.inputs.contains_key(name) {
            let pos = key_pos(&c.index, "drill", &["inputs", name]);
            let help = did_you_mean(name, raw.inputs.keys().map(String::as_str))
                .unwrap_or_else(|| format!("declare it under `inputs:` as `{name}:`"));
            c.error(
                pos,
                "unknown-input",
                format!("drill input `{name}` is not declared in `inputs:`"),
            )
            .with_width_mut(name.len())
            .help = Some(help);
        }
    }
    Some(Drill {
        schedule: d.schedule.as_ref().map(|s| s.value.clone()),
        incident: incident?,
        max_duration,
        inputs: d.inputs.clone(),
        notify: d.notify.clone(),
    })
}

/// Checks `drill.notify` overrides like step fields: template syntax, declared
/// secrets and inputs, and literal URLs. Runs before the unused-secret check
/// so a secret used only by a drill override counts as used.
fn check_drill_notify(c: &mut Checker<'_>, raw: &RawPlaybook, secrets: &[&str], inputs: &[&str]) {
    let Some(notify) = raw.drill.as_ref().and_then(|d| d.notify.as_ref()) else {
        return;
    };
    let scope = StepScope {
        ids: HashMap::new(),
        secrets: secrets.to_vec(),
        inputs: inputs.to_vec(),
        current: None,
        current_id: "",
        ancestors: HashSet::new(),
    };
    let fields = [
        ("slack", &notify.slack, FieldKind::Url),
        ("teams", &notify.teams, FieldKind::Url),
        ("webhook", &notify.webhook, FieldKind::Url),
        ("pagerduty", &notify.pagerduty, FieldKind::Template),
    ];
    for (name, text, kind) in fields {
        if let Some(t) = text {
            let field = text_field(format!("drill.notify.{name}"), t, kind);
            c.check_field(
                &field,
                &["incident", "inputs", "run", "playbook", "secrets"],
                &scope,
            );
        }
    }
}

fn check_action(c: &mut Checker<'_>, step: &RawStep) -> Option<ActionKind> {
    let mut kinds = Vec::new();
    if step.shell.is_some() {
        kinds.push("shell");
    }
    if step.command.is_some() {
        kinds.push("command");
    }
    if step.http.is_some() {
        kinds.push("http");
    }
    if step.notify.is_some() {
        kinds.push("notify");
    }
    let id = &step.id.value;
    match kinds.as_slice() {
        [] => {
            c.error(step.id.pos, "schema", format!("step `{id}` has no action"))
                .with_width_mut(id.len())
                .help = Some("give it one of `shell`, `command`, `http` or `notify`".into());
            return None;
        }
        [_] => {}
        many => {
            let list = many
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}` has more than one action: {list}"),
            )
            .with_width_mut(id.len())
            .help =
                Some("a step does exactly one thing; split it into steps joined by `needs`".into());
            return None;
        }
    }
    let is_process = step.shell.is_some() || step.command.is_some();
    if !is_process && (!step.env.is_empty() || step.cwd.is_some()) {
        c.error(
            step.id.pos,
            "schema",
            format!("step `{id}`: `env` and `cwd` apply only to `shell` and `command`"),
        );
    }
    if let Some(cmd) = &step.command
        && cmd.is_empty()
    {
        c.error(
            step.id.pos,
            "schema",
            format!("step `{id}`: `command` needs at least the program name"),
        );
    }
    if let Some(n) = &step.notify {
        let count = [
            n.slack.is_some(),
            n.teams.is_some(),
            n.pagerduty.is_some(),
            n.webhook.is_some(),
            n.console.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}`: `notify` needs exactly one of `slack`, `teams`, `pagerduty`, `webhook`, `console`, found {count}"),
            );
        }
        if let Some(pd) = &n.pagerduty {
            use crate::playbook::model::PagerdutyAction as A;
            let action = pd.action.value;
            if matches!(action, A::Acknowledge | A::Resolve) && pd.dedup_key.is_none() {
                c.error(
                    pd.action.pos,
                    "schema",
                    format!("step `{id}`: PagerDuty `{action:?}` needs a `dedup_key`")
                        .to_lowercase(),
                );
            }
            if matches!(action, A::Trigger | A::Change) && pd.summary.is_none() {
                c.error(
                    step.id.pos,
                    "schema",
                    format!("step `{id}`: PagerDuty events need a `summary`"),
                );
            }
        }
    }
    if let Some(h) = &step.http {
        if let Some(m) = &h.method {
            let upper = m.value.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
                .contains(&upper.as_str())
            {
                c.error(
                    m.pos,
                    "schema",
                    format!("unsupported HTTP method `{}`", m.value),
                )
                .with_width_mut(m.value.len());
            }
        }
        if h.json.is_some() && h.body.is_some() {
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}`: `http` takes `json` or `body`, not both"),
            );
        }
    }
    Some(if is_process {
        ActionKind::Shell
    } else if step.http.is_some() {
        ActionKind::Http
    } else {
        ActionKind::Notify
    })
}

fn text_field<'a>(label: String, t: &'a Text, kind: FieldKind) -> Field<'a> {
    Field {
        label,
        text: &t.value,
        pos: t.pos,
        kind,
    }
}

/// Every templated value of a step, with its label and position.
fn step_fields(step: &RawStep) -> Vec<Field<'_>> {
    let id = &step.id.value;
    let mut f = Vec::new();
    if let Some(s) = &step.shell {
        f.push(text_field(
            format!("steps.{id}.shell"),
            s,
            FieldKind::Template,
        ));
    }
    if let Some(cmd) = &step.command {
        for (i, a) in cmd.iter().enumerate() {
            f.push(text_field(
                format!("steps.{id}.command[{i}]"),
                a,
                FieldKind::Template,
            ));
        }
    }
    for (k, v) in &step.env {
        f.push(text_field(
            format!("steps.{id}.env.{k}"),
            v,
            FieldKind::Template,
        ));
    }
    if let Some(cwd) = &step.cwd {
        f.push(text_field(
            format!("steps.{id}.cwd"),
            cwd,
            FieldKind::Template,
        ));
    }
    if let Some(w) = &step.when {
        f.push(text_field(
            format!("steps.{id}.when"),
            w,
            FieldKind::Expression,
        ));
    }
    if let Some(q) = &step.confirm {
        f.push(text_field(
            format!("steps.{id}.confirm"),
            q,
            FieldKind::Template,
        ));
    }
    if let Some(h) = &step.http {
        f.push(text_field(
            format!("steps.{id}.http.url"),
            &h.url,
            FieldKind::Url,
        ));
        for (k, v) in h.headers.iter() {
            f.push(text_field(
                format!("steps.{id}.http.headers.{k}"),
                v,
                FieldKind::Template,
            ));
        }
        for (k, v) in h.query.iter() {
            f.push(text_field(
                format!("steps.{id}.http.query.{k}"),
                v,
                FieldKind::Template,
            ));
        }
        if let Some(b) = &h.body {
            f.push(text_field(
                format!("steps.{id}.http.body"),
                b,
                FieldKind::Template,
            ));
        }
        if let Some(j) = &h.json {
            push_json(&mut f, format!("steps.{id}.http.json"), j);
        }
    }
    if let Some(n) = &step.notify {
        if let Some(s) = &n.slack {
            f.push(text_field(
                format!("steps.{id}.notify.slack.webhook"),
                &s.webhook,
                FieldKind::Url,
            ));
            f.push(text_field(
                format!("steps.{id}.notify.slack.text"),
                &s.text,
                FieldKind::Template,
            ));
            if let Some(b) = &s.blocks {
                push_json(&mut f, format!("steps.{id}.notify.slack.blocks"), b);
            }
        }
        if let Some(t) = &n.teams {
            f.push(text_field(
                format!("steps.{id}.notify.teams.webhook"),
                &t.webhook,
                FieldKind::Url,
            ));
            f.push(text_field(
                format!("steps.{id}.notify.teams.text"),
                &t.text,
                FieldKind::Template,
            ));
            if let Some(title) = &t.title {
                f.push(text_field(
                    format!("steps.{id}.notify.teams.title"),
                    title,
                    FieldKind::Template,
                ));
            }
        }
        if let Some(p) = &n.pagerduty {
            f.push(text_field(
                format!("steps.{id}.notify.pagerduty.routing_key"),
                &p.routing_key,
                FieldKind::Template,
            ));
            for (name, t) in [
                ("dedup_key", &p.dedup_key),
                ("summary", &p.summary),
                ("severity", &p.severity),
                ("source", &p.source),
            ] {
                if let Some(t) = t {
                    f.push(text_field(
                        format!("steps.{id}.notify.pagerduty.{name}"),
                        t,
                        FieldKind::Template,
                    ));
                }
            }
            if let Some(e) = &p.endpoint {
                f.push(text_field(
                    format!("steps.{id}.notify.pagerduty.endpoint"),
                    e,
                    FieldKind::Url,
                ));
            }
            if let Some(d) = &p.custom_details {
                push_json(
                    &mut f,
                    format!("steps.{id}.notify.pagerduty.custom_details"),
                    d,
                );
            }
        }
        if let Some(w) = &n.webhook {
            f.push(text_field(
                format!("steps.{id}.notify.webhook.url"),
                &w.url,
                FieldKind::Url,
            ));
            for (k, v) in w.headers.iter() {
                f.push(text_field(
                    format!("steps.{id}.notify.webhook.headers.{k}"),
                    v,
                    FieldKind::Template,
                ));
            }
            if let Some(s) = &w.hmac_secret {
                f.push(text_field(
                    format!("steps.{id}.notify.webhook.hmac_secret"),
                    s,
                    FieldKind::Template,
                ));
            }
            if let Some(j) = &w.json {
                push_json(&mut f, format!("steps.{id}.notify.webhook.json"), j);
            }
        }
        if let Some(cn) = &n.console {
            f.push(text_field(
                format!("steps.{id}.notify.console.text"),
                &cn.text,
                FieldKind::Template,
            ));
        }
    }
    f
}

fn push_json<'a>(out: &mut Vec<Field<'a>>, label: String, v: &'a Spanned<serde_json::Value>) {
    fn walk<'a>(out: &mut Vec<Field<'a>>, label: &str, pos: Pos, v: &'a serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                let kind = if template::single_expression(s).is_some() {
                    FieldKind::Expression
                } else {
                    FieldKind::Template
                };
                let text = match (kind, template::single_expression(s)) {
                    (FieldKind::Expression, Some(e)) => e,
                    _ => s.as_str(),
                };
                out.push(Field {
                    label: label.to_string(),
                    text,
                    pos,
                    kind,
                });
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(out, label, pos, i)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(out, label, pos, i)),
            _ => {}
        }
    }
    walk(out, &label, v.pos, &v.value);
}

/// Steps reachable from `i` through `needs` (its ancestors: guaranteed finished before it).
fn ancestors(i: usize, needs: &[Vec<usize>]) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack: Vec<usize> = needs[i].clone();
    while let Some(j) = stack.pop() {
        if seen.insert(j) {
            stack.extend(needs[j].iter().copied());
        }
    }
    seen
}

fn report_cycles(c: &mut Checker<'_>, steps: &[RawStep], needs: &[Vec<usize>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; steps.len()];
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..steps.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS so a 10,000-step chain cannot overflow the stack.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if *next < needs[node].len() {
                let to = needs[node][*next];
                *next += 1;
                match marks[to] {
                    Mark::New => {
                        marks[to] = Mark::Active;
                        path.push((to, 0));
                    }
                    Mark::Active => {
                        let from = path.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let cycle: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            let mut names: Vec<&str> =
                                cycle.iter().map(|&n| steps[n].id.value.as_str()).collect();
                            names.push(&steps[to].id.value);
                            let first = cycle[0];
                            let second = *cycle.get(1).unwrap_or(&first);
                            let pos = steps[first]
                                .needs
                                .iter()
                                .find(|n| n.value == steps[second].id.value)
                                .map(|n| n.pos)
                                .unwrap_or(steps[first].id.pos);
                            c.error(
                                pos,
                                "cycle",
                                format!("steps form a cycle: {}", names.join(" -> ")),
                            )
                            .help = Some(
                                "remove one of these `needs` so the steps can be ordered".into(),
                            );
                        }
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
            }
        }
    }
}

/// Checks that need every playbook: names unique across files.
pub fn check_set(playbooks: &mut Vec<Playbook>) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut first: HashMap<String, String> = HashMap::new();
    playbooks.retain(|p| match first.get(&p.name) {
        Some(other) => {
            diags.push(
                Diagnostic::error(
                    p.file(),
                    p.raw.name.pos,
                    "duplicate-playbook-name",
                    format!("playbook name `{}` is already used by `{other}`", p.name),
                )
                .with_width(p.name.len())
                .with_help("playbook names are unique in a repository; rename one of them"),
            );
            false
        }
        None => {
            first.insert(p.name.clone(), p.file().to_string());
            true
        }
    });
    diags
}
