//! What `irctl test` shows: the expected-against-actual diff of a failed
//! test, JUnit XML for CI, and the coverage of steps and branches.

use std::fmt::Write as _;

use crate::diagnostic::xml_escape;
use crate::engine::context::StepStatus;
use crate::playbook::Playbook;
use crate::playbook::model::Trigger;

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
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if let Some(status) = o.status {
            let _ = writeln!(out, "    run {}", status.as_str());
        }
    }
    out
}

/// JUnit XML: one testsuite per playbook, one testcase per test.
pub fn render_junit(outcomes: &[Outcome]) -> String {
    let mut suites: Vec<(&str, Vec<&Outcome>)> = Vec::new();
    for o in outcomes {
        match suites.iter_mut().find(|(p, _)| *p == o.case.playbook) {
            Some((_, list)) => list.push(o),
            None => suites.push((o.case.playbook.as_str(), vec![o])),
        }
    }
    let count =
        |list: &[&Outcome], f: fn(&Verdict) -> bool| list.iter().filter(|o| f(&o.verdict)).count();
    let is_failure = |v: &Verdict| matches!(v, Verdict::Failed(_));
    let is_error = |v: &Verdict| matches!(v, Verdict::Error(_));
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let secs = |list: &[&Outcome]| list.iter().map(|o| o.duration.as_secs_f64()).sum::<f64>();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"irctl test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        all.len(),
        count(&all, is_failure),
        count(&all, is_error),
        secs(&all)
    );
    for (playbook, list) in &suites {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
            xml_escape(playbook),
            list.len(),
            count(list, is_failure),
            count(list, is_error),
            secs(list)
        );
        for o in list {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                xml_escape(&format!("irctl.test.{playbook}")),
                xml_escape(&o.case.name),
                xml_escape(&o.case.file),
                o.case.pos.line,
                o.duration.as_secs_f64()
            );
            match &o.verdict {
                Verdict::Passed => out.push_str("/>\n"),
                Verdict::Failed(m) => {
                    let first = m
                        .first()
                        .map(|m| format!("{}: expected {}", m.what, m.expected))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"expectation\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&first),
                        xml_escape(&render_failure(o))
                    );
                }
                Verdict::Error(msg) => {
                    let _ = writeln!(
                        out,
                        ">\n      <error type=\"test-error\" message=\"{}\">{}</error>\n    </testcase>",
                        xml_escape(msg),
                        xml_escape(&render_failure(o))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// One branch of a playbook that tests can exercise.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    /// Playbook name.
    pub playbook: String,
    /// Step id.
    pub step: String,
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
        let trigger = step.raw.trigger.value;
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
        if let Some(when) = &step.raw.when {
            let expr = when.value.trim();
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
