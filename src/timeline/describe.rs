//! Events in words: the one description of each event type, shared by the
//! timeline views, postmortems, and the live progress of runs and drills
//! (which add their own symbols and colour around it).

use std::time::Duration;

use serde_json::Value;

use super::{Event, Payload, short_id};

fn took(ms: u64) -> String {
    crate::duration::format(Duration::from_millis(ms))
}

/// What happened, in one or more lines of words (a console notification's
/// text and a multi-line script keep their lines; tables flatten them).
/// Unknown event types have no description.
pub fn describe(e: &Event) -> String {
    match &e.payload {
        Payload::RunStarted(p) => {
            let commit = p
                .provenance
                .commit
                .as_deref()
                .map(|c| format!("@{}", short_id(c, 8)))
                .unwrap_or_default();
            let drill = if p.drill { " (drill)" } else { "" };
            format!("playbook {}{commit}{drill} by {}", p.playbook, p.actor)
        }
        Payload::RunResumed(p) => {
            let reused = if p.reused.is_empty() {
                "nothing".to_string()
            } else {
                p.reused.join(", ")
            };
            let mut out = format!("attempt {} by {}, reusing {reused}", p.attempt, p.actor);
            if p.note.forced == Some(true) {
                out.push_str(", forced over a changed playbook");
            }
            if p.note.chain_broken.is_some() {
                out.push_str(", over a broken hash chain");
            }
            out
        }
        Payload::Warning(p) => p.message.clone(),
        Payload::StepStarted(p) => format!("attempt {}: {}", p.attempt, action_text(&p.action)),
        Payload::StepRetrying(p) => {
            let why = p
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!(
                "attempt {} failed{why}; retrying in {}",
                p.attempt,
                took(p.delay_ms)
            )
        }
        Payload::StepFinished(p) => {
            let mut out = format!("{} in {}", p.status.as_str(), took(p.duration_ms));
            if let Some(err) = p.error.as_deref().filter(|e| !e.is_empty()) {
                out.push_str(&format!(": {err}"));
            }
            out
        }
        Payload::StepSkipped(p) => format!("{}: {}", p.status.as_str(), p.reason),
        Payload::StepSimulated(_) => "simulated (drill)".to_string(),
        Payload::Confirmation(p) => match p.reason.as_deref().filter(|r| !r.is_empty()) {
            Some(reason) => format!("{} by {} ({}): {reason}", p.answer, p.by, p.via),
            None => format!("{} by {} ({})", p.answer, p.by, p.via),
        },
        Payload::ApprovalRequested(p) => format!(
            "waiting up to {} for approval: {}\n  approve: {}\n  deny:    {}",
            took(p.timeout_ms),
            p.question,
            p.approve,
            p.deny
        ),
        Payload::Notification(p) => match &p.text {
            Some(text) => format!("sent to {}:\n{text}", p.target),
            None => format!("sent to {}", p.target),
        },
        Payload::RunCancelled(p) => format!("cancelled by {}", p.signal),
        Payload::RunFinished(p) => p.status.as_str().to_string(),
        Payload::EngineError(p) => format!("internal error: {}", p.error),
        Payload::Note(p) => {
            let mitigated = if p.mitigated == Some(true) {
                " [mitigated]"
            } else {
                ""
            };
            format!("{}: {}{mitigated}", p.author, p.text)
        }
        Payload::Detected(p) => format!("{} ({}, via {})", p.title, p.severity, p.source),
        Payload::Resolved(p) => {
            let mut out = format!("by {} via {}", p.by, p.source);
            if let Some(summary) = p.summary.as_deref().filter(|s| !s.is_empty()) {
                out.push_str(&format!(": {summary}"));
            }
            out
        }
        Payload::Acknowledged(p) => format!("by {} via {}", p.by, p.source),
        Payload::AlertRepeated(p) => match &p.earlier_run {
            Some(run) => format!(
                "{} payload again; playbook {} already ran ({run}), not run again",
                p.source, p.playbook
            ),
            None => format!(
                "{} payload again; playbook {} is being run, not run again",
                p.source, p.playbook
            ),
        },
        Payload::RunThrottled(p) => {
            let next = p
                .next_run_at
                .as_deref()
                .map(|t| format!("; next run allowed from {t}"))
                .unwrap_or_default();
            format!(
                "{} payload; playbook {} throttled by `{}`, not run{next}",
                p.source, p.playbook, p.rule
            )
        }
        Payload::Handoff(p) => {
            let mut out = format!(
                "{} handed the incident to {} ({})",
                p.by,
                p.to,
                sent(&p.sent)
            );
            if let Some(m) = p.message.as_deref().filter(|m| !m.is_empty()) {
                out.push_str(&format!(": {m}"));
            }
            out
        }
        Payload::HandoffAccepted(p) => format!(
            "{} accepted for {}{} after {}; {} owns the incident",
            p.by,
            p.team,
            p.via
                .as_deref()
                .map(|v| format!(" (via {v})"))
                .unwrap_or_default(),
            took(p.latency_ms),
            p.team
        ),
        Payload::HandoffReminded(p) => format!(
            "hand-off to {} not accepted: {} {} ({})",
            p.team,
            if p.escalated { "escalated" } else { "reminder" },
            p.reminder,
            sent(&p.sent)
        ),
        Payload::ImpactNotice(p) => {
            let mut out = format!(
                "impact notice to {} (playbook {}, step {}): {}",
                p.team,
                p.playbook,
                p.step,
                if p.sent.is_empty() {
                    "not sent".to_string()
                } else {
                    p.sent.join(", ")
                }
            );
            if !p.skipped.is_empty() {
                out.push_str(&format!("; skipped: {}", p.skipped.join("; ")));
            }
            out
        }
        Payload::Other { .. } => String::new(),
    }
}

/// `slack HTTP 200, pagerduty failed` for the channels a message went to.
fn sent(list: &[super::Sent]) -> String {
    if list.is_empty() {
        return "no channel".into();
    }
    list.iter()
        .map(|s| match (&s.error, s.http_status) {
            (Some(_), _) => format!("{} failed", s.target),
            (None, Some(code)) => format!("{} HTTP {code}", s.target),
            (None, None) => s.target.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A recorded action (`step_started`, `step_simulated`) as a command line or
/// a request line.
pub fn action_text(a: &Value) -> String {
    if let Some(s) = a.get("shell").and_then(Value::as_str) {
        return s.to_string();
    }
    if let Some(argv) = a.get("command").and_then(Value::as_array) {
        return argv
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ");
    }
    let method = a.get("method").and_then(Value::as_str).unwrap_or("");
    let url = a.get("url").and_then(Value::as_str).unwrap_or("");
    match a.get("notify").and_then(Value::as_str) {
        Some(service) => format!("{service} {method} {url}").trim().to_string(),
        None => format!("{method} {url}").trim().to_string(),
    }
}
