//! Running one test: the real engine ([`crate::engine::run`]) with a canned
//! executor in place of shell, HTTP and notify, then comparing what happened
//! with what the test expects.
//!
//! Nothing leaves the process: every attempt is answered from the test's
//! canned results, confirmations from its `confirm` answers, and the
//! timeline goes to a throwaway state directory the caller owns. A canned
//! result is only a response (an exit code and output, a status and body, a
//! timeout); the engine's judge decides what it means, exactly as for a
//! real process or server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::engine::notify::{Notification, Post};
use crate::engine::response::{
    Captured, Exit, HttpReply, ProcessRun, Response, StepError, Stopped,
};
use crate::engine::{self, Action, Confirmer, Executor, Observer, RunOptions, StepReport};
use crate::playbook::{Playbook, Step};

use crate::playbook::test_check::{Case, Check};
use crate::playbook::test_format::CannedAttempt;

use super::aim::{Reach, Routing, aim};

/// One attempt the engine asked for, with the step's rendered action.
#[derive(Clone, Debug)]
pub struct Call {
    /// Step id.
    pub step: crate::id::StepId,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The rendered action.
    pub action: Action,
}

/// One expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What was checked (`step `page` notification`).
    pub what: String,
    /// What the test expects.
    pub expected: String,
    /// What happened.
    pub actual: String,
}

/// How a test ended.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Every expectation held.
    Passed,
    /// Some expectations did not hold.
    Failed(Vec<Mismatch>),
    /// The test itself is broken (a step ran without a canned result, bad inputs).
    Error(String),
}

/// A finished test.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The test.
    pub case: Case,
    /// Its verdict.
    pub verdict: Verdict,
    /// Wall time.
    pub duration: Duration,
    /// The run's status, when the run happened.
    pub status: Option<engine::RunStatus>,
    /// Per step, in playbook order.
    pub steps: Vec<StepReport>,
    /// Every attempt, in the order they were made.
    pub calls: Vec<Call>,
    /// Whom each `notify: { team }` step sent to (nobody when it did not run).
    pub reached: BTreeMap<crate::id::StepId, Reach>,
    /// Teams nobody could tell and channels skipped, as a run warns of them.
    pub notes: Vec<String>,
}

/// Answers attempts from the canned results; remembers every call and every gap.
struct CannedExecutor {
    results: HashMap<crate::id::StepId, (Vec<CannedAttempt>, bool)>,
    calls: Mutex<Vec<Call>>,
    missing: Mutex<Vec<String>>,
}

impl CannedExecutor {
    fn gap(&self, msg: String) -> Response {
        if let Ok(mut m) = self.missing.lock() {
            m.push(msg.clone());
        }
        Response::failed(StepError::Unanswered(msg), Duration::ZERO)
    }
}

impl Executor for CannedExecutor {
    fn execute(&self, step: &Step, attempt: u32, action: &Action) -> Response {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call {
                step: step.id.clone(),
                attempt,
                action: action.clone(),
            });
        }
        let Some((list, each)) = self.results.get(&step.id) else {
            return self.gap(format!(
                "step `{}` ran but the test has no canned result for it (add `results: {{ {}: ok }}`)",
                step.id, step.id
            ));
        };
        let canned = if *each {
            list.first()
        } else {
            list.get(attempt as usize - 1)
        };
        let Some(canned) = canned else {
            return self.gap(format!(
                "step `{}` made attempt {attempt} but the test gives canned results for {} attempt{}",
                step.id,
                list.len(),
                if list.len() == 1 { "" } else { "s" }
            ));
        };
        respond(step, action, canned)
    }
}

/// What the real executor would have observed had the step's process or
/// server behaved as the canned result says; the engine's judge decides the rest.
fn respond(step: &Step, action: &Action, c: &CannedAttempt) -> Response {
    match action {
        Action::Process(_) => {
            let end = if c.timeout {
                Err(Stopped {
                    error: StepError::Timeout {
                        after: step.timeout,
                    },
                    exit: None,
                })
            } else {
                Ok(Exit {
                    code: Some(c.exit_code.unwrap_or(0)),
                    signal: None,
                })
            };
            Response::Process(ProcessRun {
                end,
                stdout: Captured::text(&c.stdout),
                stderr: Captured::text(&c.stderr),
                duration: Duration::ZERO,
            })
        }
        Action::Notify(Notification::Console(_)) if c.timeout => Response::failed(
            StepError::Timeout {
                after: step.timeout,
            },
            Duration::ZERO,
        ),
        Action::Notify(Notification::Console(_)) => Response::Shown,
        Action::Notify(Notification::Team(_)) => match c.http_status {
            Some(status) if !(200..300).contains(&status) => Response::failed(
                StepError::Undelivered(format!("the team's channels answered HTTP {status}")),
                Duration::ZERO,
            ),
            _ if c.timeout => Response::failed(
                StepError::Timeout {
                    after: step.timeout,
                },
                Duration::ZERO,
            ),
            _ => Response::Shown,
        },
        Action::Http(req) | Action::Notify(Notification::Post(Post { request: req, .. })) => {
            if c.timeout {
                return Response::failed(
                    StepError::RequestTimeout {
                        host: req.host(),
                        cause: None,
                    },
                    Duration::ZERO,
                );
            }
            let body = match (&c.body, &c.json) {
                (Some(b), _) => b.clone(),
                (None, Some(j)) => j.to_string(),
                (None, None) => String::new(),
            };
            Response::Http(HttpReply {
                status: c.http_status.unwrap_or(200),
                // The transport reports header names in lowercase.
                headers: c
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                body: body.into_bytes(),
                truncated: false,
                duration: Duration::ZERO,
            })
        }
    }
}

struct CannedConfirmer(HashMap<crate::id::StepId, bool>);

impl Confirmer for CannedConfirmer {
    fn confirm(&self, step: &str, _question: &str) -> Option<bool> {
        Some(self.0.get(step).copied().unwrap_or(true))
    }
}

struct Silent;

impl Observer for Silent {
    fn on_event(&self, _event: &crate::timeline::Event) {}
}

/// Describes how `actual` fails `check`, or `None` when it passes.
pub fn failed_check(check: &Check, actual: &str) -> Option<String> {
    if let Some(e) = &check.equals
        && e.trim() != actual.trim()
    {
        return Some(format!("equals {e:?}"));
    }
    if let Some(c) = &check.contains
        && !actual.contains(c.as_str())
    {
        return Some(format!("contains {c:?}"));
    }
    if let Some(r) = &check.regex
        && !r.is_match(actual)
    {
        return Some(format!("matches /{}/", r.as_str()));
    }
    None
}

/// Everything `check` asks for, for when there is no text to compare.
pub fn describe_check(check: &Check) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &check.equals {
        parts.push(format!("equals {e:?}"));
    }
    if let Some(c) = &check.contains {
        parts.push(format!("contains {c:?}"));
    }
    if let Some(r) = &check.regex {
        parts.push(format!("matches /{}/", r.as_str()));
    }
    parts.join(" and ")
}

/// Runs one test, its team steps aimed by `routing`; the timeline goes under `state_dir`.
pub async fn run_case(
    playbook: &Playbook,
    case: &Case,
    routing: Routing<'_>,
    state_dir: &Path,
) -> Outcome {
    let started = Instant::now();
    let aimed = aim(playbook, case, routing);
    let playbook = aimed.playbook.as_ref().unwrap_or(playbook);
    let incident = aimed.incident.as_ref().unwrap_or(&case.incident);
    let executor = Arc::new(CannedExecutor {
        results: case.results.clone(),
        calls: Mutex::new(Vec::new()),
        missing: Mutex::new(Vec::new()),
    });
    let opts = RunOptions {
        state_dir: state_dir.to_path_buf(),
        concurrency: 4,
        yes: false,
        verbose: false,
        drill: case.drill,
        executor: Some(executor.clone()),
        inputs: case.inputs.clone(),
        secrets: aimed.secrets.clone(),
        match_warning: None,
        actor: "irctl test".into(),
        deadline: None,
        resume: None,
        clock: crate::clock::Clock::System,
        timeline_key: None,
    };
    let (_cancel_tx, cancel_rx) = watch::channel(None);
    let result = engine::run(
        playbook,
        incident,
        opts,
        Arc::new(Silent),
        Arc::new(CannedConfirmer(case.confirm.clone())),
        cancel_rx,
    )
    .await;
    let calls = executor.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let missing = executor
        .missing
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    let mut outcome = Outcome {
        case: case.clone(),
        verdict: Verdict::Passed,
        duration: Duration::ZERO,
        status: None,
        steps: Vec::new(),
        reached: aimed
            .reach
            .into_iter()
            .map(|(step, r)| {
                // A step that never ran sent nothing.
                let ran = calls.iter().any(|c| c.step == step);
                (step, if ran { r } else { Reach::default() })
            })
            .collect(),
        calls,
        notes: aimed.notes,
    };
    match result {
        Err(e) => outcome.verdict = Verdict::Error(format!("the run could not start: {e:#}")),
        Ok(r) => {
            outcome.status = Some(r.status);
            outcome.steps = r.steps;
            outcome.verdict = if !missing.is_empty() {
                Verdict::Error(missing.join("; "))
            } else {
                let mismatches = compare(&outcome);
                if mismatches.is_empty() {
                    Verdict::Passed
                } else {
                    Verdict::Failed(mismatches)
                }
            };
        }
    }
    outcome.duration = started.elapsed();
    outcome
}

/// A set as the diff shows it: `a, b`, or `nobody`.
fn listed(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "nobody".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn describe_step(r: &StepReport) -> String {
    let mut s = r.status.as_str().to_string();
    if r.attempts > 1 {
        s.push_str(&format!(" after {} attempts", r.attempts));
    }
    if let Some(reason) = &r.reason {
        s.push_str(&format!(" ({reason})"));
    }
    s
}

/// Every expectation of the test that the run did not meet.
fn compare(o: &Outcome) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let case = &o.case;
    if let (Some(expected), Some(actual)) = (case.status, o.status)
        && expected.as_str() != actual.as_str()
    {
        out.push(Mismatch {
            what: "run status".into(),
            expected: expected.as_str().into(),
            actual: actual.as_str().into(),
        });
    }
    for sc in &case.steps {
        let Some(report) = o.steps.iter().find(|r| r.id == sc.step) else {
            continue;
        };
        let name = format!("step `{}`", sc.step);
        if let Some(st) = sc.status
            && st.as_str() != report.status.as_str()
        {
            out.push(Mismatch {
                what: format!("{name} status"),
                expected: st.as_str().into(),
                actual: describe_step(report),
            });
        }
        if let Some(n) = sc.attempts
            && n != report.attempts
        {
            out.push(Mismatch {
                what: format!("{name} attempts"),
                expected: n.to_string(),
                actual: report.attempts.to_string(),
            });
        }
        if let Some(r) = o.reached.get(&sc.step) {
            let notes: Vec<&str> = o
                .notes
                .iter()
                .filter(|n| n.starts_with(&format!("step `{}`:", sc.step)))
                .map(String::as_str)
                .collect();
            let mut set =
                |field: &str, expected: &Option<BTreeSet<String>>, actual: &BTreeSet<String>| {
                    if let Some(expected) = expected
                        && expected != actual
                    {
                        let mut shown = listed(actual);
                        for n in &notes {
                            shown.push_str(&format!("\n({n})"));
                        }
                        out.push(Mismatch {
                            what: format!("{name} {field}"),
                            expected: listed(expected),
                            actual: shown,
                        });
                    }
                };
            set("teams", &sc.teams, &r.teams);
            set("channels", &sc.channels, &r.channels);
        }
        let mut text = |field: &str, check: &Option<Check>, actual: Option<String>| {
            let Some(check) = check else { return };
            match actual {
                None => out.push(Mismatch {
                    what: format!("{name} {field}"),
                    expected: describe_check(check),
                    actual: format!("nothing: the step {}", describe_step(report)),
                }),
                Some(actual) => {
                    if let Some(expected) = failed_check(check, &actual) {
                        out.push(Mismatch {
                            what: format!("{name} {field}"),
                            expected,
                            actual,
                        });
                    }
                }
            }
        };
        text("reason", &sc.reason, report.reason.clone());
        let last = o.calls.iter().rev().find(|c| c.step == sc.step);
        let action = last.map(|c| &c.action);
        text(
            "command",
            &sc.command,
            action.and_then(Action::command_line),
        );
        text(
            "notification",
            &sc.notification,
            action.and_then(Action::notification_text),
        );
        if let Some(rc) = &sc.request {
            let request = action.and_then(Action::request);
            text(
                "request method",
                &rc.method,
                request.map(|r| r.method.clone()),
            );
            text("request url", &rc.url, request.map(|r| r.url.clone()));
            text(
                "request body",
                &rc.body,
                action.map(|_| {
                    request
                        .and_then(|r| r.body.as_ref())
                        .map(ToString::to_string)
                        .unwrap_or_default()
                }),
            );
            for (h, check) in &rc.headers {
                let value = request.and_then(|r| r.header(h)).map(str::to_string);
                text(
                    &format!("request header `{h}`"),
                    &Some(check.clone()),
                    value,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_check_must_hold() {
        let check = Check {
            equals: None,
            contains: Some("db-1".into()),
            regex: Some(regex::Regex::new("^restart").unwrap()),
        };
        assert_eq!(failed_check(&check, "restart db-1"), None);
        assert_eq!(
            failed_check(&check, "restart db-2").as_deref(),
            Some("contains \"db-1\"")
        );
        assert_eq!(
            failed_check(&check, "please restart db-1").as_deref(),
            Some("matches /^restart/")
        );
        let exact = Check {
            equals: Some("ok".into()),
            contains: None,
            regex: None,
        };
        assert_eq!(failed_check(&exact, "  ok\n"), None);
        assert_eq!(
            describe_check(&check),
            "contains \"db-1\" and matches /^restart/"
        );
    }
}
