//! The postmortem sections read off the record rather than written by
//! people: who responded and in what role, what was communicated where and
//! when, the findings steps marked `report: true`, each alert of a grouped
//! incident, and the facts that seed "lessons learned" and action items.
//!
//! Step output is untrusted text (a command prints whatever it likes), so a
//! finding is quoted the one safe way Markdown has: bounded, stripped of
//! control characters, inside a code fence longer than any run of backticks
//! it holds, so neither Markdown nor HTML in it can end the quote.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Entry, Run, show_time, step_outcomes};
use crate::timeline::{Payload, RecordedAlert};

/// Lines of one finding quoted at most.
pub const FINDING_LINES: usize = 40;
/// Characters of one finding quoted at most.
pub const FINDING_CHARS: usize = 4_000;

/// A person who took part, and the roles the record shows.
#[derive(Clone, Debug, Serialize)]
pub struct Responder {
    /// Who (the actor, note author or approver as recorded).
    pub name: String,
    /// What they did, in order first seen: `ran api-down`, `approved restart`,
    /// `wrote 2 notes`, `marked mitigated`, `resolved`, `recorded detection`.
    pub roles: Vec<String>,
    /// Their first action (RFC 3339 UTC).
    pub first_seen: String,
}

/// One notification a step sent.
#[derive(Clone, Debug, Serialize)]
pub struct Communication {
    /// When (RFC 3339 UTC).
    pub time: String,
    /// The run that sent it.
    pub run: String,
    /// The step.
    pub step: String,
    /// Where: `slack`, `teams`, `pagerduty`, `webhook`, `console`.
    pub target: String,
    /// The service's answer, or `shown` for the console.
    pub status: String,
    /// What the console showed, when recorded.
    pub text: Option<String>,
}

/// A step's output marked `report: true`, quoted.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step: String,
    /// How the step ended.
    pub status: String,
    /// Its output (stdout, else the HTTP body), bounded and without
    /// control characters; quote it between two [`Finding::fence`] lines.
    pub text: String,
    /// A code fence longer than any run of backticks in `text`.
    pub fence: String,
    /// Lines or characters left out (see `irctl timeline` for all of it).
    pub truncated: bool,
}

/// One alert of the incident, for grouped incidents.
#[derive(Clone, Debug, Serialize)]
pub struct AlertDetail {
    /// `firing` or `resolved`, as last recorded.
    pub status: String,
    /// Its own labels, `k=v` space-separated.
    pub labels: String,
    /// When it started.
    pub started: Option<String>,
    /// When it ended.
    pub ended: Option<String>,
    /// The sender's fingerprint.
    pub fingerprint: Option<String>,
}

/// Who did what, from notes, runs, approvals, resolutions and detections.
pub fn responders(entries: &[Entry]) -> Vec<Responder> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    let mut add = |name: &str, role: String, time: String| {
        if name.trim().is_empty() || name.starts_with("irctl") {
            return;
        }
        let r = by.entry(name.to_string()).or_insert_with(|| {
            order.push(name.to_string());
            (Vec::new(), time)
        });
        if !r.0.contains(&role) {
            r.0.push(role);
        }
    };
    let mut notes: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        let time = show_time(e.time);
        match &e.event.payload {
            Payload::RunStarted(p) if !p.drill => {
                add(&p.actor, format!("ran {}", p.playbook), time)
            }
            Payload::RunResumed(p) => add(&p.actor, format!("resumed {}", p.playbook), time),
            Payload::Confirmation(c) => {
                let verb = if c.answer == "yes" {
                    "approved"
                } else {
                    "declined"
                };
                add(&c.by, format!("{verb} `{}`", c.step), time);
            }
            Payload::Note(n) => {
                *notes.entry(n.author.clone()).or_insert(0) += 1;
                add(&n.author, "wrote notes".into(), time.clone());
                if n.mitigated == Some(true) {
                    add(&n.author, "marked mitigated".into(), time);
                }
            }
            Payload::Resolved(r) => add(&r.by, "resolved".into(), time),
            Payload::Detected(d) => add(&d.by, "recorded detection".into(), time),
            _ => {}
        }
    }
    order
        .into_iter()
        .filter_map(|name| {
            let (mut roles, first_seen) = by.remove(&name)?;
            if let Some(&n) = notes.get(&name) {
                for r in roles.iter_mut().filter(|r| *r == "wrote notes") {
                    *r = if n == 1 {
                        "wrote 1 note".into()
                    } else {
                        format!("wrote {n} notes")
                    };
                }
            }
            Some(Responder {
                name,
                roles,
                first_seen,
            })
        })
        .collect()
}

/// Every notification sent, in time order.
pub fn communications(entries: &[Entry]) -> Vec<Communication> {
    entries
        .iter()
        .filter_map(|e| match &e.event.payload {
            Payload::Notification(n) => Some(Communication {
                time: show_time(e.time),
                run: e.event.run_id.to_string(),
                step: n.step.to_string(),
                target: n.target.clone(),
                status: match n.http_status {
                    Some(code) => format!("HTTP {code}"),
                    None => "shown".into(),
                },
                text: n.text.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The quoted output of every step its run's playbook marked `report: true`.
pub fn findings(runs: &[&Run]) -> Vec<Finding> {
    let mut out = Vec::new();
    for run in runs {
        let Some(started) = run.started() else {
            continue;
        };
        for step in &started.report {
            let last = run.events.iter().rev().find_map(|e| match &e.payload {
                Payload::StepFinished(f) if f.step == *step => Some(f),
                _ => None,
            });
            let Some(finished) = last else {
                continue;
            };
            let raw = finished
                .output
                .as_ref()
                .map(|o| {
                    if o.stdout.trim().is_empty() {
                        o.body.clone().unwrap_or_default()
                    } else {
                        o.stdout.clone()
                    }
                })
                .unwrap_or_default();
            let (text, truncated) = bounded(&raw);
            out.push(Finding {
                run_id: run.summary.run_id.clone(),
                step: step.to_string(),
                status: finished.status.as_str().to_string(),
                fence: fence_for(&text),
                text,
                truncated,
            });
        }
    }
    out
}

/// `raw` without control characters (line breaks and tabs kept), at most
/// [`FINDING_LINES`] lines and [`FINDING_CHARS`] characters, trailing blank
/// lines dropped; and whether anything was cut.
pub fn bounded(raw: &str) -> (String, bool) {
    let clean: String = raw
        .replace("\r\n", "\n")
        .chars()
        .map(|c| if c == '\r' { '\n' } else { c })
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        // Bidirectional overrides can make quoted text read differently.
        .filter(|c| !matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect();
    let clean = clean.trim_end();
    let mut text = String::new();
    let mut truncated = false;
    for (i, line) in clean.split('\n').enumerate() {
        if i == FINDING_LINES {
            truncated = true;
            break;
        }
        if i > 0 {
            text.push('\n');
        }
        text.push_str(line);
    }
    if text.chars().count() > FINDING_CHARS {
        text = text.chars().take(FINDING_CHARS).collect();
        truncated = true;
    }
    (text, truncated)
}

/// A backtick fence longer than the longest run of backticks in `text`
/// (and at least three), so nothing inside can close it.
pub fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Each alert the record knows, by fingerprint (else labels), as last recorded.
pub fn alerts(entries: &[Entry]) -> Vec<AlertDetail> {
    let mut seen: Vec<(String, AlertDetail)> = Vec::new();
    for e in entries {
        let Some(incident) = e.event.payload.recorded_incident() else {
            continue;
        };
        for a in &incident.alerts {
            let detail = alert_detail(a);
            let key = a
                .fingerprint
                .clone()
                .unwrap_or_else(|| detail.labels.clone());
            match seen.iter_mut().find(|(k, _)| *k == key) {
                Some((_, d)) => *d = detail,
                None => seen.push((key, detail)),
            }
        }
    }
    seen.into_iter().map(|(_, d)| d).collect()
}

fn alert_detail(a: &RecordedAlert) -> AlertDetail {
    let time = |t: &Option<String>| t.as_deref().and_then(super::parse_time).map(show_time);
    AlertDetail {
        status: a.status.clone(),
        labels: a
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        started: time(&a.starts_at),
        ended: time(&a.ends_at),
        fingerprint: a.fingerprint.clone(),
    }
}

/// Facts from the record that seed "lessons learned": what went well and
/// what went wrong, each literally true of the runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Lessons {
    /// Steps and runs that succeeded, chains intact.
    pub went_well: Vec<String>,
    /// Steps that failed, timed out or were cancelled; runs that did not finish.
    pub went_wrong: Vec<String>,
}

/// One follow-up to consider.
#[derive(Clone, Debug, Serialize)]
pub struct ActionItem {
    /// What to do.
    pub action: String,
    /// Who, when the record suggests it (the playbook's owner).
    pub owner: Option<String>,
}

/// The lessons and action items the runs suggest.
pub fn lessons(runs: &[&Run]) -> (Lessons, Vec<ActionItem>) {
    let mut lessons = Lessons::default();
    let mut items = Vec::new();
    for run in runs {
        let s = &run.summary;
        let owner = run.started().and_then(|p| p.owner.clone());
        let outcomes = step_outcomes(run);
        let ok: Vec<String> = outcomes
            .iter()
            .filter(|o| o.status == "succeeded")
            .map(|o| format!("`{}`", o.id))
            .collect();
        if s.status == "succeeded" {
            lessons
                .went_well
                .push(format!("run {} of {} succeeded", s.run_id, s.playbook));
        } else if !ok.is_empty() {
            let noun = if ok.len() == 1 { "step" } else { "steps" };
            lessons.went_well.push(format!(
                "{noun} {} of {} succeeded in run {}",
                ok.join(", "),
                s.playbook,
                s.run_id
            ));
        }
        for o in &outcomes {
            if !matches!(o.status.as_str(), "failed" | "timed_out" | "cancelled") {
                continue;
            }
            let why = o.reason.as_deref().unwrap_or("no reason recorded");
            lessons.went_wrong.push(format!(
                "step `{}` of {} {} in run {}: {why}",
                o.id, s.playbook, o.status, s.run_id
            ));
            items.push(ActionItem {
                action: format!(
                    "find out why step `{}` of {} {} ({why}) and fix the step or the playbook",
                    o.id, s.playbook, o.status
                ),
                owner: owner.clone(),
            });
        }
        if s.status == super::UNFINISHED {
            lessons.went_wrong.push(format!(
                "run {} of {} never finished (killed, or still running)",
                s.run_id, s.playbook
            ));
        }
    }
    (lessons, items)
}
