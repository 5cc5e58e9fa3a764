//! Checking playbooks: every mistake that can be found without running
//! anything, all collected (never just the first), each pointing at the
//! offending node.
//!
//! [`check_file`] compiles one file into a [`Playbook`] (only when it has no
//! errors); [`check_set`] runs the checks that need every playbook at once.
//! One concern per file: `checker.rs` (reporting and template-field
//! analysis), `action.rs` (a step's one action), `fields.rs` (every templated
//! value of a step), `graph.rs` (`needs` and cycles), `drill.rs` (the drill
//! section), `injection.rs` (untrusted data in shell contexts and argv),
//! `schema.rs` and `tree.rs` (every schema error of a file at once, where
//! serde stops at the first),
//! `sink.rs` (untrusted data choosing a request's host, a JSON text body,
//! a working directory), `step.rs` (one list of steps, compiled).

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Diagnostic, backticked};
use crate::playbook::matcher::{Matcher, MatcherError};
use crate::playbook::model::{RawPlaybook, RawStep};
use crate::playbook::{Playbook, Provenance};
use crate::yaml::{self, Locator, Pos, Spanned};

mod action;
mod approvals;
mod checker;
mod drill;
mod fields;
mod graph;
mod injection;
mod limit;
mod schema;
mod sink;
mod step;
mod tree;

use action::*;
use drill::*;
use fields::*;
use graph::*;
use step::{StepDefaults, check_steps};
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

const RUN_FIELDS: &[&str] = &["id", "started_at", "drill", "dry_run", "timeline_hash"];
const PLAYBOOK_FIELDS: &[&str] = &["name", "title", "owner", "commit", "path", "blob", "repo"];

/// What a template field is, which decides how it is parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Template,
    /// A `shell:` script, whose placeholders are checked against their shell context.
    Shell,
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
    index: Locator<'a>,
    diags: Vec<Diagnostic>,
    used_secrets: HashSet<String>,
    used_inputs: HashSet<String>,
    /// Steps the current step's templates read by name (`steps.NAME`).
    step_reads: HashSet<String>,
    /// Whether a template of the current step reads `steps` as a whole.
    reads_all_steps: bool,
    /// Which values carry outside data.
    trust: crate::template::Trust,
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

/// What a step's templates can see.
struct StepScope<'a> {
    ids: &'a HashMap<&'a str, usize>,
    secrets: &'a [&'a str],
    inputs: &'a [&'a str],
    current: Option<usize>,
    current_id: &'a str,
    /// Who finished before whom; `None` outside steps.
    ancestry: Option<&'a Ancestry<'a>>,
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
            let collects = matches!(
                e.kind,
                yaml::YamlErrorKind::Schema | yaml::YamlErrorKind::UnknownField { .. }
            );
            let d = Diagnostic::from_yaml(file, e, "schema");
            if collects {
                return (None, schema::collect(file, text, d));
            }
            return (None, vec![d]);
        }
    };
    let mut c = Checker {
        file,
        index: Locator::new(text),
        diags: Vec::new(),
        used_secrets: HashSet::new(),
        used_inputs: HashSet::new(),
        step_reads: HashSet::new(),
        reads_all_steps: false,
        trust: crate::template::Trust::default(),
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
        ids: &HashMap::new(),
        secrets: &[],
        inputs: &[],
        current: None,
        current_id: "",
        ancestry: None,
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

    c.trust = injection::trust(&raw);
    c.check_allowed_hosts(&raw.allowed_hosts);

    if raw.steps.is_empty() {
        c.error(
            raw.name.pos,
            "schema",
            "a playbook needs at least one step in `steps:`",
        );
    }

    let secrets: Vec<&str> = raw.secrets.iter().map(|s| s.value.as_str()).collect();
    let inputs: Vec<&str> = raw.inputs.keys().map(String::as_str).collect();
    let defaults = StepDefaults {
        secrets: &secrets,
        inputs: &inputs,
        allowed_hosts: &raw.allowed_hosts,
        timeout: default_timeout,
        retry: default_retry,
    };
    let steps = check_steps(c, &raw.steps, &defaults);
    // A separate DAG: `needs` and `steps.ID` refer to `on_resolved` steps only.
    let on_resolved = check_steps(c, &raw.on_resolved, &defaults);

    check_drill_notify(c, &raw, &secrets, &inputs);
    let approvals = approvals::check_approvals(c, &raw, &secrets, &inputs);
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
            let pos = c.index.key_path("inputs", &[name]);
            c.warning(
                pos,
                "unused-input",
                format!("input `{name}` is declared but never used"),
            )
            .with_width_mut(name.len());
        }
    }

    check_auto(c, &raw);
    let limits = limit::check(c, &raw);
    let drill = check_drill(c, &raw);
    let match_ = raw.match_.unwrap_or_default();
    let mut playbook = Playbook {
        name: raw.name.value,
        name_pos: raw.name.pos,
        title: raw.title,
        owner: raw.owner,
        priority: raw.priority,
        auto: raw.auto,
        kind: raw.kind,
        limits,
        matchers,
        labels: match_.labels.into_iter().map(|l| l.value).collect(),
        when: match_.when.map(|w| w.value),
        per_alert: match_.per_alert,
        inputs: raw.inputs,
        secrets: raw.secrets.into_iter().map(|s| s.value).collect(),
        steps,
        on_resolved,
        timeout,
        drill,
        approvals,
        cancel_on_resolve: raw.cancel_on_resolve,
        tests: Vec::new(),
        provenance,
    };
    if !raw.tests.is_empty() {
        let (cases, findings) =
            crate::playbook::test_check::compile(c.file, c.index.text(), &playbook, &raw.tests);
        c.diags.extend(findings);
        playbook.tests = cases;
    }
    playbook
}

/// An `auto` playbook runs with nobody watching: each step it marks as
/// changing things (`simulate_in_drill: true` or `idempotent: false`)
/// should be guarded by a `when` condition or a `confirm` question.
fn check_auto(c: &mut Checker<'_>, raw: &RawPlaybook) {
    if !raw.auto {
        return;
    }
    for step in &raw.steps {
        let remediation = step.simulate_in_drill || !step.idempotent;
        if remediation && step.when.is_none() && step.confirm.is_none() {
            c.warning(
                step.id.pos,
                "unguarded-auto-remediation",
                format!(
                    "step `{}` changes things and runs unattended under `irctl serve` (`auto: true`) with neither `when` nor `confirm`",
                    step.id.value
                ),
            )
            .help = Some(
                "add a `when` condition that proves the remediation is needed, or a `confirm` question".into(),
            );
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
                    p.name_pos,
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
