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
//! a working directory).

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Diagnostic, backticked, did_you_mean};
use crate::playbook::matcher::{Matcher, MatcherError};
use crate::playbook::model::{RawPlaybook, RawStep};
use crate::playbook::{
    DEFAULT_STEP_TIMEOUT, Playbook, Process, Program, Provenance, Step, StepAction, StepId,
};
use crate::template::{ROOTS, TEAM_MESSAGE_ROOTS};
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
mod tree;

use action::*;
use drill::*;
use fields::*;
use graph::*;

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

/// What every step of a playbook shares.
struct StepDefaults<'a> {
    secrets: &'a [&'a str],
    inputs: &'a [&'a str],
    allowed_hosts: &'a [Spanned<String>],
    timeout: Option<std::time::Duration>,
    retry: Option<crate::playbook::RetryPolicy>,
}

/// Checks one list of steps (`steps` or `on_resolved`) as a DAG of its own.
fn check_steps(
    c: &mut Checker<'_>,
    steps_raw: &[RawStep],
    defaults: &StepDefaults<'_>,
) -> Vec<Step> {
    let StepDefaults {
        secrets,
        inputs,
        allowed_hosts,
        timeout: default_timeout,
        retry: default_retry,
    } = *defaults;
    // Step ids first, so references can be resolved in any order.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, step) in steps_raw.iter().enumerate() {
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
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); steps_raw.len()];
    for (i, step) in steps_raw.iter().enumerate() {
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
    report_cycles(c, steps_raw, &needs);

    let ancestry = Ancestry::new(&needs);
    let mut steps = Vec::new();
    for (i, step) in steps_raw.iter().enumerate() {
        let scope = StepScope {
            ids: &ids,
            secrets,
            inputs,
            current: Some(i),
            current_id: &step.id.value,
            ancestry: Some(&ancestry),
        };
        check_action(c, step);
        c.step_reads.clear();
        c.reads_all_steps = false;
        for field in step_fields(step) {
            // A team's message also sees the team it is for.
            let roots: &[&str] = if field.label.ends_with(".notify.text")
                || field.label.ends_with(".notify.title")
            {
                TEAM_MESSAGE_ROOTS
            } else {
                ROOTS
            };
            c.check_field(&field, roots, &scope);
        }
        if let Some(argv) = &step.command {
            c.check_argv(&step.id.value, argv);
        }
        c.check_sinks(step, allowed_hosts);
        let reads = if c.reads_all_steps {
            None
        } else {
            let mut r: Vec<usize> = c
                .step_reads
                .iter()
                .filter_map(|n| ids.get(n.as_str()).copied())
                .collect();
            r.sort_unstable();
            Some(r)
        };
        if let Some(when) = &step.when
            && when.value.trim().eq_ignore_ascii_case("false")
        {
            c.warning(
                when.pos,
                "unreachable-step",
                format!("step `{}` never runs: its `when` is `false`", step.id.value),
            );
        }
        if step.report && step.notify.is_some() {
            let pos = c
                .index
                .locate_key(step.id.pos, "report")
                .unwrap_or(step.id.pos);
            c.warning(
                pos,
                "report-without-output",
                format!(
                    "step `{}` is a notification: it has no output for the postmortem to quote",
                    step.id.value
                ),
            )
            .help = Some("mark the step whose output is the finding (`shell`, `command` or `http`) with `report: true`".into());
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
            id: StepId::from(step.id.value.as_str()),
            action: step_action(step, allowed_hosts),
            needs: needs[i].clone(),
            reads,
            trigger: step.trigger.value,
            when: step.when.as_ref().map(|w| w.value.clone()),
            confirm: step.confirm.as_ref().map(|q| q.value.clone()),
            confirm_timeout: approvals::confirm_timeout(c, step),
            timeout,
            retry,
            continue_on_error: step.continue_on_error,
            simulate_in_drill: step.simulate_in_drill,
            idempotent: step.idempotent,
            report: step.report,
        });
    }

    steps
}

/// The step's one action. A step written with none or several is already an
/// error, and its playbook never leaves [`check_file`]; it gets the first
/// written (or an empty script) so the rest of the file is still checked.
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

fn step_action(step: &RawStep, allowed_hosts: &[Spanned<String>]) -> StepAction {
    let text = |t: &crate::playbook::model::Text| t.value.clone();
    if step.shell.is_none() && step.command.is_none() {
        if let Some(h) = &step.http {
            let mut h = h.clone();
            h.allowed_hosts.extend(allowed_hosts.iter().cloned());
            return StepAction::Http(Box::new(h));
        }
        if let Some(n) = &step.notify {
            return StepAction::Notify(Box::new(n.clone()));
        }
    }
    let program = match (&step.shell, &step.command) {
        (None, Some(argv)) => Program::Command(argv.iter().map(text).collect()),
        (script, _) => Program::Shell(script.as_ref().map(text).unwrap_or_default()),
    };
    StepAction::Process(Process {
        program,
        env: step.env.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        cwd: step.cwd.as_ref().map(text),
        interpreter: step.shell_interpreter.clone(),
    })
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
