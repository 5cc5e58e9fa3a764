//! Running one test: the real engine ([`crate::engine::run`]) with a canned
//! executor in place of shell, HTTP and notify, then comparing what happened
//! with what the test expects.
//!
//! Nothing leaves the process: every attempt is answered from the test's
//! canned results, confirmations from its `confirm` answers, and the
//! timeline goes to a throwaway state directory the caller owns.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::engine::context::{StepOutput, StepStatus};
use crate::engine::notify::{self, Service};
use crate::engine::{self, Attempt, Confirmer, Executor, Observer, RunOptions, StepReport};
use crate::playbook::{ActionKind, Playbook, Step};

use super::check::{Case, Check};
use super::model::CannedAttempt;

/// One attempt the engine asked for, with the step's rendered action.
#[derive(Clone, Debug)]
pub struct Call {
    /// Step id.
    pub step: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The rendered action, as the timeline records it.
    pub action: serde_json::Value,
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
}

/// Answers attempts from the canned results; remembers every call and every gap.
struct CannedExecutor {
    results: HashMap<String, (Vec<CannedAttempt>, bool)>,
    calls: Mutex<Vec<Call>>,
    missing: Mutex<Vec<String>>,
}

impl CannedExecutor {
    fn gap(&self, msg: String) -> Attempt {
        if let Ok(mut m) = self.missing.lock() {
            m.push(msg.clone());
        }
        Attempt::failed(StepOutput::empty(StepStatus::Failed), msg, false)
    }
}

impl Executor for CannedExecutor {
    fn execute(&self, step: &Step, attempt: u32, action: &serde_json::Value) -> Attempt {
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
        answer(step, action, canned)
    }
}

/// The attempt a canned result stands for, as the real executor would report it.
fn answer(step: &Step, action: &serde_json::Value, c: &CannedAttempt) -> Attempt {
    let mut out = StepOutput::empty(StepStatus::Failed);
    out.stdout = c.stdout.clone();
    out.stderr = c.stderr.clone();
    if c.timeout {
        out.status = StepStatus::TimedOut;
        let msg = format!("timed out after {}", crate::duration::format(step.timeout));
        let mut a = Attempt::failed(out, msg, true);
        a.status = StepStatus::TimedOut;
        return a;
    }
    let console = action.get("notify").and_then(|n| n.as_str()) == Some("console");
    if step.kind == ActionKind::Shell {
        let code = c.exit_code.unwrap_or(0);
        out.exit_code = Some(code);
        return if code == 0 {
            Attempt::ok(out)
        } else {
            Attempt::failed(out, format!("exited with status {code}"), true)
        };
    }
    if console {
        out.stdout = action
            .get("text")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        return Attempt::ok(out);
    }
    let status = c.http_status.unwrap_or(200);
    out.http_status = Some(status);
    out.headers = c
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    out.body = match (&c.body, &c.json) {
        (Some(b), _) => b.clone(),
        (None, Some(j)) => j.to_string(),
        (None, None) => String::new(),
    };
    out.json = serde_json::from_str(&out.body).unwrap_or(serde_json::Value::Null);
    let expect: &[u16] = step
        .raw
        .http
        .as_ref()
        .and_then(|h| h.expect.as_deref())
        .unwrap_or(&[]);
    let accepted = if expect.is_empty() {
        (200..300).contains(&status)
    } else {
        expect.contains(&status)
    };
    if accepted {
        return Attempt::ok(out);
    }
    let host = action
        .get("url")
        .and_then(|u| u.as_str())
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the server".into());
    let expected = if expect.is_empty() {
        "2xx".to_string()
    } else {
        expect
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let snippet: String = out.body.chars().take(200).collect();
    let mut msg = format!("{host} answered HTTP {status} (expected {expected})");
    if !snippet.trim().is_empty() {
        msg.push_str(": ");
        msg.push_str(snippet.trim());
    }
    let service = match action.get("notify").and_then(|n| n.as_str()) {
        Some("slack") => Some(Service::Slack),
        Some("teams") => Some(Service::Teams),
        Some("pagerduty") => Some(Service::Pagerduty),
        Some("webhook") => Some(Service::Webhook),
        _ => None,
    };
    if let Some(explained) =
        service.and_then(|s| notify::explain_failure(s, Some(status), &out.body, &out.json))
    {
        msg = explained;
    }
    let retryable = status == 429 || status >= 500;
    Attempt::failed(out, msg, retryable)
}

struct CannedConfirmer(HashMap<String, bool>);

impl Confirmer for CannedConfirmer {
    fn confirm(&self, step: &str, _question: &str) -> Option<bool> {
        Some(self.0.get(step).copied().unwrap_or(true))
    }
}

struct Silent;

impl Observer for Silent {
    fn on_event(&self, _event: &crate::timeline::Event) {}
}

/// The rendered command of a `shell`/`command` action.
pub fn command_text(action: &serde_json::Value) -> Option<String> {
    if let Some(s) = action.get("shell").and_then(|s| s.as_str()) {
        return Some(s.to_string());
    }
    let argv = action.get("command")?.as_array()?;
    Some(
        argv.iter()
            .map(|a| a.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The text a notification carries: the message, card text, summary, or the webhook body.
pub fn notification_text(action: &serde_json::Value) -> Option<String> {
    let target = action.get("notify")?.as_str()?;
    if target == "console" {
        return action.get("text")?.as_str().map(str::to_string);
    }
    let body = action.get("body")?.as_str()?;
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = match target {
        "slack" => json
            .get("text")
            .and_then(|t| t.as_str())
            .map(str::to_string),
        "teams" => json
            .pointer("/attachments/0/content/body")
            .and_then(|b| b.as_array())
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        "pagerduty" => json
            .pointer("/payload/summary")
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    };
    Some(text.unwrap_or_else(|| body.to_string()))
}

fn header(action: &serde_json::Value, name: &str) -> Option<String> {
    action.get("headers")?.as_array()?.iter().find_map(|pair| {
        let k = pair.get(0)?.as_str()?;
        let v = pair.get(1)?.as_str()?;
        k.eq_ignore_ascii_case(name).then(|| v.to_string())
    })
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

/// Runs one test; the timeline goes under `state_dir`.
pub async fn run_case(playbook: &Playbook, case: &Case, state_dir: &Path) -> Outcome {
    let started = Instant::now();
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
        secrets: case.secrets.clone(),
        match_warning: None,
        actor: "irctl test".into(),
        deadline: None,
        resume: None,
    };
    let (_cancel_tx, cancel_rx) = watch::channel(None);
    let result = engine::run(
        playbook,
        &case.incident,
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
        calls,
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
        text("command", &sc.command, action.and_then(command_text));
        text(
            "notification",
            &sc.notification,
            action.and_then(notification_text),
        );
        if let Some(rc) = &sc.request {
            let field = |key: &str| {
                action
                    .and_then(|a| a.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            text("request method", &rc.method, field("method"));
            text("request url", &rc.url, field("url"));
            text(
                "request body",
                &rc.body,
                action.map(|a| {
                    a.get("body")
                        .and_then(|b| b.as_str())
                        .unwrap_or_default()
                        .to_string()
                }),
            );
            for (h, check) in &rc.headers {
                let value = action.and_then(|a| header(a, h));
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
    use serde_json::json;

    fn http(notify: &str, body: serde_json::Value) -> serde_json::Value {
        json!({ "notify": notify, "method": "POST", "url": "https://x", "body": body.to_string() })
    }

    #[test]
    fn notification_text_is_what_people_read() {
        assert_eq!(
            notification_text(&json!({ "notify": "console", "text": "hi" })).as_deref(),
            Some("hi")
        );
        assert_eq!(
            notification_text(&http("slack", json!({ "text": "db down" }))).as_deref(),
            Some("db down")
        );
        let card = json!({ "attachments": [{ "content": { "body": [{ "text": "Title" }, { "text": "Body" }] } }] });
        assert_eq!(
            notification_text(&http("teams", card)).as_deref(),
            Some("Title\nBody")
        );
        assert_eq!(
            notification_text(&http(
                "pagerduty",
                json!({ "payload": { "summary": "sum" } })
            ))
            .as_deref(),
            Some("sum")
        );
        assert_eq!(
            notification_text(&http("webhook", json!({ "a": 1 }))).as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(notification_text(&json!({ "shell": "echo" })), None);
    }

    #[test]
    fn command_text_joins_argv() {
        assert_eq!(
            command_text(&json!({ "command": ["kubectl", "get", "pods"] })).as_deref(),
            Some("kubectl get pods")
        );
        assert_eq!(
            command_text(&json!({ "shell": "echo hi" })).as_deref(),
            Some("echo hi")
        );
    }

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
