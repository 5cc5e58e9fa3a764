//! What `irctl test` shows: the expected-against-actual diff of a failed
//! test, its JUnit test cases for CI (written by [`crate::report`]), and the
//! coverage of steps and branches.

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::context::StepStatus;
use crate::playbook::Playbook;
use crate::playbook::model::Trigger;
use crate::report::junit;

use super::run::{Outcome, Verdict};

/// Indents every line after the first of a multi-line value under its label.
fn block(value: &str, indent: &str) -> String {
    let value = value.trim_end_matches('\n');
    if value.is_empty() {
        return "\"\"".to_string();
    }
    value
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_string()
            } else {
                format!("{indent}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The readable diff of a failed (or broken) test: each expectation that
/// did not hold, then what every step did.
pub fn render_failure(o: &Outcome) -> String {
    let mut out = String::new();
    let label = match o.verdict {
        Verdict::Error(_) => "ERROR",
        _ => "FAIL",
    };
    let _ = writeln!(out, "{label} {} › {}", o.case.playbook, o.case.name);
    let _ = writeln!(
        out,
        "  --> {}:{}:{}",
        o.case.file, o.case.pos.line, o.case.pos.column
    );
    match &o.verdict {
        Verdict::Passed => {}
        Verdict::Error(msg) => {
            let _ = writeln!(out, "  error: {msg}");
        }
        Verdict::Failed(mismatches) => {
            for m in mismatches {
                let _ = writeln!(out, "  {}", m.what);
                let _ = writeln!(
                    out,
                    "    - expected: {}",
                    block(&m.expected, "                ")
                );
                let _ = writeln!(
                    out,
                    "    + actual:   {}",
                    block(&m.actual, "                ")
                );
            }
        }
    }
    if !o.steps.is_empty() {
        let _ = writeln!(out, "  what happened:");
        let width = o.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
        for s in &o.steps {
            let mut line = format!("    {:width$}  {}", s.id, s.status.as_str());
            if s.attempts > 1 {
                let _ = write!(line, ", {} attempts", s.attempts);
            }
            if let Some(reason) = &s.reason {
                let _ = write!(line, ": {}", reason.lines().next().unwrap_or_default());
            }
            if let Some(r) = o.reached.get(&s.id)
                && o.calls.iter().any(|c| c.step == s.id)
            {
                let teams: Vec<&str> = r.teams.iter().map(String::as_str).collect();
                let _ = write!(
                    line,
                    " → {}",
                    if teams.is_empty() {
                        "nobody".to_string()
                    } else {
                        teams.join(", ")
                    }
                );
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if let Some(status) = o.status {
            let _ = writeln!(out, "    run {}", status.as_str());
        }
    }
    out
}

/// JUnit XML: one testsuite per playbook (in the order their tests ran),
/// one testcase per test; a failed expectation is a `<failure>` whose message
/// names the first one, a test that could not be judged an `<error>`; both
/// carry the whole readable diff.
pub fn render_junit(outcomes: &[Outcome]) -> anyhow::Result<String> {
    let mut suites: Vec<junit::Suite> = Vec::new();
    for o in outcomes {
        let playbook = &o.case.playbook;
        let index = match suites.iter().position(|s| &s.name == playbook) {
            Some(i) => i,
            None => {
                suites.push(junit::Suite {
                    name: playbook.clone(),
                    time: Some(Duration::ZERO),
                    cases: Vec::new(),
                });
                suites.len() - 1
            }
        };
        let suite = &mut suites[index];
        suite.time = suite.time.map(|t| t + o.duration);
        suite.cases.push(case(o));
    }
    junit::Report {
        name: "irctl test".into(),
        time: Some(outcomes.iter().map(|o| o.duration).sum()),
        suites,
    }
    .to_xml()
}

fn case(o: &Outcome) -> junit::Case {
    let verdict = match &o.verdict {
        Verdict::Passed => junit::Verdict::Passed,
        Verdict::Failed(m) => junit::Verdict::Failed(junit::Problem {
            kind: "expectation".into(),
            message: m
                .first()
                .map(|m| format!("{}: expected {}", m.what, m.expected))
                .unwrap_or_default(),
            detail: render_failure(o),
        }),
        Verdict::Error(msg) => junit::Verdict::Broken(junit::Problem {
            kind: "test-error".into(),
            message: msg.clone(),
            detail: render_failure(o),
        }),
    };
    junit::Case {
        file: Some(o.case.file.clone()),
        line: Some(o.case.pos.line),
        time: Some(o.duration),
        ..junit::Case::new(
            format!("irctl.test.{}", o.case.playbook),
            o.case.name.as_str(),
            verdict,
        )
    }
}

/// One branch of a playbook that tests can exercise.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    /// Playbook name.
    pub playbook: String,
    /// Step id.
    pub step: crate::id::StepId,
    /// Which branch: `runs`, `on_failure fires`, `when false`, …
    pub branch: String,
    /// Why it matters when nobody exercised it.
    pub hint: String,
    /// Whether some test exercised it.
    pub covered: bool,
}

/// How a step ended in one run, for coverage.
enum Seen {
    Ran,
    HeldBack,
    WhenFalse,
}

fn seen(status: StepStatus, reason: Option<&str>) -> Option<Seen> {
    match status {
        StepStatus::Skipped if reason.is_some_and(|r| r.starts_with("when was false")) => {
            Some(Seen::WhenFalse)
        }
        StepStatus::Skipped => Some(Seen::HeldBack),
        StepStatus::Cancelled => None,
        _ => Some(Seen::Ran),
    }
}

/// Every step and `trigger`/`when` branch of `playbook`, and whether any of
/// `outcomes` (its tests' runs) exercised it.
pub fn coverage(playbook: &Playbook, outcomes: &[&Outcome]) -> Vec<Branch> {
    let mut out = Vec::new();
    for (i, step) in playbook.steps.iter().enumerate() {
        let seen_all: Vec<Seen> = outcomes
            .iter()
            .filter_map(|o| o.steps.get(i))
            .filter(|r| r.id == step.id)
            .filter_map(|r| seen(r.status, r.reason.as_deref()))
            .collect();
        let ran = seen_all.iter().any(|s| matches!(s, Seen::Ran));
        let held = seen_all.iter().any(|s| matches!(s, Seen::HeldBack));
        let when_false = seen_all.iter().any(|s| matches!(s, Seen::WhenFalse));
        let mut push = |branch: &str, hint: String, covered: bool| {
            out.push(Branch {
                playbook: playbook.name.clone(),
                step: step.id.clone(),
                branch: branch.to_string(),
                hint,
                covered,
            });
        };
        let trigger = step.trigger;
        if trigger == Trigger::OnFailure {
            push(
                "on_failure fires",
                "no test made one of its needs fail".into(),
                ran,
            );
            push(
                "on_failure holds back",
                "no test let all of its needs succeed".into(),
                held,
            );
        } else {
            push("runs", "no test ran this step".into(), ran);
        }
        if let Some(keyword) = crate::playbook::test_check::team_keyword(step) {
            let reached = outcomes
                .iter()
                .any(|o| o.reached.get(&step.id).is_some_and(|r| !r.teams.is_empty()));
            push(
                "reaches a team",
                format!(
                    "no test's incident had an {keyword} team to tell (catalog, teams.yaml, a channel secret in `secrets:`)"
                ),
                reached,
            );
        }
        if let Some(when) = &step.when {
            let expr = when.trim();
            push("when true", format!("`{expr}` was never true"), ran);
            push(
                "when false",
                format!("`{expr}` was never false"),
                when_false,
            );
        }
    }
    out
}
