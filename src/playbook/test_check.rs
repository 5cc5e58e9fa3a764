//! Checking playbook tests against their checked playbook before anything runs:
//! unknown steps, inputs and secrets, bad incidents and regexes, checks that
//! cannot apply to a step's kind. Every problem is a [`Diagnostic`] with the
//! file, line and column, like the playbook's own findings, so `irctl
//! validate` (inline tests) and `irctl test` (all tests) report them alike.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::incident::Incident;
use crate::secret::Secret;
use crate::yaml::{self, Locator, Pos};

use super::test_format::{
    CannedAttempt, ExpectedRun, ExpectedStep, RawTest, RawTestFile, StepExpect, StrOrMap, TextCheck,
};
use super::{Playbook, Step, StepAction, StepId};

/// A checked text check: the regex compiled.
#[derive(Clone, Debug)]
pub struct Check {
    /// Exact text (trimmed on both sides).
    pub equals: Option<String>,
    /// A part of the text.
    pub contains: Option<String>,
    /// A pattern found somewhere in the text.
    pub regex: Option<regex::Regex>,
}

/// Checks on a rendered request.
#[derive(Clone, Debug, Default)]
pub struct RequestChecks {
    /// Method.
    pub method: Option<Check>,
    /// URL.
    pub url: Option<Check>,
    /// Body.
    pub body: Option<Check>,
    /// Header values by lowercase name.
    pub headers: Vec<(String, Check)>,
}

/// The checks on one step.
#[derive(Clone, Debug)]
pub struct StepChecks {
    /// Step id.
    pub step: crate::id::StepId,
    /// Final status.
    pub status: Option<ExpectedStep>,
    /// Why it was skipped or failed.
    pub reason: Option<Check>,
    /// Attempts made.
    pub attempts: Option<u32>,
    /// Rendered command.
    pub command: Option<Check>,
    /// Rendered request.
    pub request: Option<RequestChecks>,
    /// Rendered notification text.
    pub notification: Option<Check>,
    /// The teams a team step reached, canonical (`group:default/dba`).
    pub teams: Option<std::collections::BTreeSet<String>>,
    /// The channels it reached, `kind:SECRET_NAME`.
    pub channels: Option<std::collections::BTreeSet<String>>,
}

/// One runnable test.
#[derive(Clone, Debug)]
pub struct Case {
    /// The playbook it tests.
    pub playbook: String,
    /// Its name.
    pub name: String,
    /// The file it is written in.
    pub file: String,
    /// Where its `name` is written.
    pub pos: Pos,
    /// The incident.
    pub incident: Incident,
    /// Input values as `--input` gives them.
    pub inputs: Vec<(String, String)>,
    /// Secret values.
    pub secrets: BTreeMap<String, Secret>,
    /// Run as a drill.
    pub drill: bool,
    /// Answers to `confirm` by step id.
    pub confirm: HashMap<StepId, bool>,
    /// Canned attempts by step id, and whether one value answers every attempt.
    pub results: HashMap<StepId, (Vec<CannedAttempt>, bool)>,
    /// Expected run status.
    pub status: Option<ExpectedRun>,
    /// Step checks, in the order written.
    pub steps: Vec<StepChecks>,
}

struct Checker<'a> {
    file: &'a str,
    index: Locator<'a>,
    playbook: &'a Playbook,
    diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Where `key:` is written after `from` (map keys carry no position), else `from`.
    fn key(&self, from: Pos, key: &str) -> Pos {
        self.index.locate_key(from, key).unwrap_or(from)
    }

    fn error(&mut self, pos: Pos, code: &'static str, msg: String, help: Option<String>) {
        self.diags
            .push(Diagnostic::error(self.file, pos, code, msg).with_optional_help(help));
    }

    fn step_help(&self, id: &str) -> Option<String> {
        let steps = &self.playbook.steps;
        did_you_mean(id, steps.iter().map(|s| s.id.as_str())).or_else(|| {
            Some(format!(
                "the playbook's steps are {}",
                steps
                    .iter()
                    .map(|s| format!("`{}`", s.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn text_check(&mut self, what: &str, t: &TextCheck, at: Pos) -> Option<Check> {
        if t.equals.is_none() && t.contains.is_none() && t.regex.is_none() {
            self.error(
                at,
                "test-schema",
                format!("{what}: the check is empty"),
                Some("give `equals`, `contains` or `regex`".into()),
            );
            return None;
        }
        let regex = match &t.regex {
            Some(r) => match regex::Regex::new(&r.value) {
                Ok(re) => Some(re),
                Err(e) => {
                    let msg = e.to_string();
                    let last = msg.lines().last().unwrap_or("").trim();
                    let first = last.strip_prefix("error: ").unwrap_or(last).to_string();
                    self.error(
                        r.pos,
                        "invalid-regex",
                        format!("{what}: invalid regex `{}`: {first}", r.value),
                        None,
                    );
                    return None;
                }
            },
            None => None,
        };
        Some(Check {
            equals: t.equals.clone(),
            contains: t.contains.clone(),
            regex,
        })
    }

    fn case(&mut self, t: &RawTest, drill_incident: Option<&Incident>) -> Option<Case> {
        let before = self.diags.len();
        let name = &t.name.value;
        let at = t.name.pos;
        let incident = match &t.incident {
            Some(v) => match crate::incident::from_value(v.value.clone(), self.file) {
                Ok(i) => Some(i),
                Err(e) => {
                    self.error(
                        v.pos,
                        "test-incident",
                        format!("test `{name}`: incident: {e}"),
                        None,
                    );
                    None
                }
            },
            None => {
                if drill_incident.is_none() {
                    self.error(
                        at,
                        "test-incident",
                        format!("test `{name}` has no `incident` and the playbook has no drill incident to use"),
                        Some("add `incident:` with the alert's labels".into()),
                    );
                }
                drill_incident.cloned()
            }
        };
        let playbook = self.playbook;
        let mut inputs = Vec::new();
        for (k, v) in &t.inputs {
            if !playbook.inputs.contains_key(k) {
                let help = did_you_mean(k, playbook.inputs.keys().map(String::as_str));
                let pos = self.key(at, k);
                self.error(
                    pos,
                    "unknown-input",
                    format!("test `{name}`: input `{k}` is not declared in `inputs:`"),
                    help,
                );
            }
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            inputs.push((k.clone(), text));
        }
        let declared: Vec<&str> = playbook.secrets.iter().map(String::as_str).collect();
        // A `team: owner|impacted` step reaches channels by secrets the
        // playbook need not declare (teams.yaml does); `irctl test` checks
        // those names against the teams file ([`crate::playtest::collect`]).
        let routes = playbook
            .steps
            .iter()
            .chain(&playbook.on_resolved)
            .any(|s| team_keyword(s).is_some());
        for k in t.secrets.keys() {
            if !declared.contains(&k.as_str()) && !routes {
                let pos = self.key(at, k);
                self.error(
                    pos,
                    "undeclared-secret",
                    format!("test `{name}`: secret `{k}` is not declared in `secrets:`"),
                    did_you_mean(k, declared.iter().copied()),
                );
            }
        }
        let mut secrets: BTreeMap<String, Secret> = declared
            .iter()
            .map(|s| {
                let value = t
                    .secrets
                    .get(*s)
                    .cloned()
                    .unwrap_or_else(|| format!("test-secret-{s}"));
                (s.to_string(), Secret::new(value))
            })
            .collect();
        if routes {
            for (k, v) in &t.secrets {
                secrets
                    .entry(k.clone())
                    .or_insert_with(|| Secret::new(v.clone()));
            }
        }
        let find = |id: &str| playbook.steps.iter().find(|s| s.id == id);
        let mut confirm = HashMap::new();
        for (id, answer) in &t.confirm {
            match find(id) {
                None => {
                    let help = self.step_help(id);
                    self.error(
                        answer.pos,
                        "test-unknown-step",
                        format!("test `{name}`: confirm answer for unknown step `{id}`"),
                        help,
                    );
                }
                Some(s) if s.confirm.is_none() => self.error(
                    answer.pos,
                    "test-schema",
                    format!("test `{name}`: step `{id}` has no `confirm` question to answer"),
                    None,
                ),
                Some(_) => {
                    confirm.insert(StepId::from(id.as_str()), answer.value);
                }
            }
        }
        let mut results = HashMap::new();
        for (id, canned) in &t.results {
            if find(id).is_none() {
                let help = self.step_help(id);
                self.error(
                    canned.pos,
                    "test-unknown-step",
                    format!("test `{name}`: canned result for unknown step `{id}`"),
                    help,
                );
                continue;
            }
            results.insert(
                StepId::from(id.as_str()),
                (canned.value.attempts.clone(), canned.value.each),
            );
        }
        let mut steps = Vec::new();
        for (id, e) in &t.expect.steps {
            let Some(step) = find(id) else {
                let help = self.step_help(id);
                self.error(
                    e.pos,
                    "test-unknown-step",
                    format!("test `{name}`: expectation for unknown step `{id}`"),
                    help,
                );
                continue;
            };
            if let Some(c) = self.step_checks(name, id, step, &e.value.0, e.pos, t.drill) {
                steps.push(c);
            }
        }
        if self.diags.len() > before {
            return None;
        }
        Some(Case {
            playbook: playbook.name.clone(),
            name: name.clone(),
            file: self.file.to_string(),
            pos: at,
            incident: incident?,
            inputs,
            secrets,
            drill: t.drill,
            confirm,
            results,
            status: t.expect.status.as_ref().map(|s| s.value),
            steps,
        })
    }

    fn step_checks(
        &mut self,
        name: &str,
        id: &str,
        step: &Step,
        e: &StepExpect,
        at: Pos,
        drill: bool,
    ) -> Option<StepChecks> {
        let what = |field: &str| format!("test `{name}`: step `{id}` {field}");
        let is_process = matches!(step.action, StepAction::Process(_));
        let posts = step.action.posts();
        if e.status == Some(ExpectedStep::Simulated) && !(drill && step.simulate_in_drill) {
            self.error(
                at,
                "test-schema",
                what("can only be `simulated` in a drill test of a `simulate_in_drill` step"),
                Some(
                    "set `drill: true` on the test, and `simulate_in_drill: true` on the step"
                        .into(),
                ),
            );
        }
        let bad_kind = |c: &mut Self, field: &str, kind: &str| {
            c.error(
                c.key(at, field),
                "test-schema",
                what(&format!("has no {kind} to check with `{field}`")),
                None,
            );
        };
        if e.command.is_some() && !is_process {
            bad_kind(self, "command", "shell command");
        }
        if e.request.is_some() && !posts {
            bad_kind(self, "request", "HTTP request");
        }
        if e.notification.is_some() && !matches!(step.action, StepAction::Notify(_)) {
            bad_kind(self, "notification", "notification");
        }
        let team_step = matches!(&step.action, StepAction::Notify(n) if n.team.is_some());
        if e.teams.is_some() && !team_step {
            bad_kind(self, "teams", "`notify: { team }`");
        }
        if e.channels.is_some() && !team_step {
            bad_kind(self, "channels", "`notify: { team }`");
        }
        let teams = e.teams.as_ref().map(|list| {
            list.iter()
                .filter_map(|t| match crate::teams::EntityRef::team(&t.value) {
                    Ok(r) => Some(r.to_string()),
                    Err(m) => {
                        self.error(t.pos, "test-schema", what(&format!("teams: {m}")), None);
                        None
                    }
                })
                .collect()
        });
        let channels = e.channels.as_ref().map(|list| {
            list.iter()
                .filter_map(|c| match channel_name(&c.value) {
                    Ok(name) => Some(name),
                    Err(m) => {
                        self.error(
                            c.pos,
                            "test-schema",
                            what(&format!("channels: {m}")),
                            Some("write a channel as `KIND:SECRET_NAME`, e.g. `slack:SLACK_DBA_WEBHOOK`".into()),
                        );
                        None
                    }
                })
                .collect()
        });
        let reason = e
            .reason
            .as_ref()
            .and_then(|t| self.text_check(&what("reason"), t, self.key(at, "reason")));
        let command = e
            .command
            .as_ref()
            .and_then(|t| self.text_check(&what("command"), t, self.key(at, "command")));
        let notification = e
            .notification
            .as_ref()
            .and_then(|t| self.text_check(&what("notification"), t, self.key(at, "notification")));
        let request = e.request.as_ref().map(|r| {
            let rat = self.key(at, "request");
            let one = |c: &mut Self, field: &str, t: &Option<StrOrMap<TextCheck>>| {
                t.as_ref().and_then(|t| {
                    c.text_check(&what(&format!("request {field}")), t, c.key(rat, field))
                })
            };
            RequestChecks {
                method: one(self, "method", &r.method),
                url: one(self, "url", &r.url),
                body: one(self, "body", &r.body),
                headers: r
                    .headers
                    .iter()
                    .filter_map(|(k, t)| {
                        self.text_check(&what(&format!("request header `{k}`")), t, rat)
                            .map(|c| (k.to_ascii_lowercase(), c))
                    })
                    .collect(),
            }
        });
        Some(StepChecks {
            step: StepId::from(id),
            status: e.status,
            reason,
            attempts: e.attempts,
            command,
            request,
            notification,
            teams,
            channels,
        })
    }
}

/// `owner` or `impacted` for a step that notifies a team through the catalog.
pub fn team_keyword(step: &Step) -> Option<&'static str> {
    let StepAction::Notify(n) = &step.action else {
        return None;
    };
    let written = n.team.as_ref()?.value.trim();
    crate::teams::KEYWORDS
        .iter()
        .copied()
        .find(|k| *k == written)
}

/// A channel as written in an expectation (`Slack: X` → `slack:X`), or why it is not one.
fn channel_name(text: &str) -> Result<String, String> {
    let (kind, secret) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `KIND:SECRET_NAME`"))?;
    let kind = kind.trim().to_ascii_lowercase();
    let secret = secret.trim();
    if !["slack", "teams", "pagerduty", "webhook"].contains(&kind.as_str()) {
        return Err(format!(
            "unknown channel kind `{kind}` (slack, teams, pagerduty or webhook)"
        ));
    }
    if secret.is_empty() {
        return Err(format!("`{text}` names no secret"));
    }
    Ok(format!("{kind}:{secret}"))
}

/// Checks `tests` (written in `file`, whose text is `text`) against the
/// playbook; returns the runnable cases and every finding.
pub fn compile(
    file: &str,
    text: &str,
    playbook: &Playbook,
    tests: &[RawTest],
) -> (Vec<Case>, Vec<Diagnostic>) {
    let mut c = Checker {
        file,
        index: Locator::new(text),
        playbook,
        diags: Vec::new(),
    };
    // An invalid drill incident is the playbook's own finding; tests just lack a default.
    let drill_incident = playbook.drill.as_ref().map(|d| &d.incident);
    let mut seen: HashSet<&str> = HashSet::new();
    let mut cases = Vec::new();
    for t in tests {
        if !seen.insert(t.name.value.as_str()) {
            c.error(
                t.name.pos,
                "duplicate-test",
                format!(
                    "playbook `{}` has two tests named `{}`",
                    playbook.name, t.name.value
                ),
                Some("give each test its own name".into()),
            );
            continue;
        }
        if let Some(case) = c.case(t, drill_incident) {
            cases.push(case);
        }
    }
    let mut diags = c.diags;
    diags.sort_by_key(|d| (d.line, d.column));
    (cases, diags)
}

/// Parses a `NAME.test.yaml` file; a YAML or shape problem is one finding.
pub fn parse_file(file: &str, text: &str) -> Result<RawTestFile, Diagnostic> {
    yaml::from_str::<RawTestFile>(text).map_err(|e| Diagnostic::from_yaml(file, e, "test-schema"))
}
