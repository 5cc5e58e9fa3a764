//! The hand-off packet: the incident's story for the team that takes it
//! over, as Markdown.
//!
//! Everything comes from the postmortem's reading of the record
//! ([`crate::record::postmortem::build`]), so the packet and the
//! postmortem never disagree on what fired, what ran or when. The record is
//! already redacted as written; the caller redacts the packet again with
//! the secrets it can see before sending or writing it.

use std::fmt::Write as _;

use crate::record::postmortem::Postmortem;
use crate::record::{UNFINISHED, short_incident_id};
use crate::teams::Team;

/// A packet: a title for chat and pagers, and the Markdown.
#[derive(Clone, Debug)]
pub struct Packet {
    /// One line: the team and the incident.
    pub title: String,
    /// The whole story.
    pub markdown: String,
}

/// Who hands off, to whom, and why.
pub struct Request<'a> {
    /// The receiving team.
    pub team: &'a Team,
    /// Who hands off.
    pub by: &'a str,
    /// What they add.
    pub message: Option<&'a str>,
    /// When (RFC 3339).
    pub at: &'a str,
}

/// Builds the packet of `pm` for `req`.
pub fn build(pm: &Postmortem, req: &Request<'_>) -> Packet {
    let short = short_incident_id(&pm.incident.id);
    let team = req.team.display_name();
    let title = format!("Hand-off to {team}: {}", pm.incident.title);
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# {title}\n");
    let _ = writeln!(
        w,
        "{} hands incident `{}` (short id `{short}`) to **{team}** (`{}`) at {}. It is yours once you accept it.",
        req.by, pm.incident.id, req.team.reference, req.at
    );
    if let Some(m) = req.message.filter(|m| !m.trim().is_empty()) {
        let _ = writeln!(w);
        for line in m.lines() {
            let _ = writeln!(w, "> {line}");
        }
    }

    let _ = writeln!(w, "\n## What fired\n");
    let i = &pm.incident;
    let _ = writeln!(
        w,
        "- **{}** ({} severity, from {}), {}",
        i.title, i.severity, i.source, i.status
    );
    if let Some(t) = &pm.times.started {
        let _ = writeln!(w, "- Started: {t}");
    }
    if let Some(t) = &pm.times.detected {
        let _ = writeln!(w, "- Detected: {t}");
    }
    if let Some(o) = &i.owner {
        let _ = writeln!(w, "- Owner so far: {o}");
    }
    if !i.labels.is_empty() {
        let labels: Vec<String> = i.labels.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        let _ = writeln!(w, "- Labels: {}", labels.join(" "));
    }
    if let Some(u) = &i.url {
        let _ = writeln!(w, "- Link: {u}");
    }
    for a in &pm.alerts {
        let _ = writeln!(w, "- Alert ({}): {}", a.status, a.labels);
    }

    let _ = writeln!(w, "\n## What ran\n");
    if pm.runs.is_empty() {
        let _ = writeln!(w, "No playbook ran.");
    }
    for r in &pm.runs {
        let version = pm
            .playbooks
            .iter()
            .find(|p| p.name == r.playbook)
            .map(|p| {
                let mut v = format!("`{}`", p.path);
                if let Some(c) = &p.commit {
                    let _ = write!(v, " at commit `{c}`");
                }
                if let Some(repo) = &p.repo {
                    let _ = write!(v, " in {repo}");
                }
                v
            })
            .unwrap_or_default();
        let _ = writeln!(
            w,
            "### Playbook {} ({}), run `{}`\n\n{version}; started {}, took {}.\n",
            r.playbook,
            r.status,
            r.run_id,
            r.started.as_deref().unwrap_or("at an unknown time"),
            r.duration.as_deref().unwrap_or("an unknown time")
        );
        let _ = writeln!(
            w,
            "| Step | Status | Duration | Reason |\n| --- | --- | --- | --- |"
        );
        for s in &r.steps {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                s.id,
                s.status,
                s.duration.as_deref().unwrap_or(""),
                crate::record::postmortem::cell(s.reason.clone().unwrap_or_default())
            );
        }
        for f in pm.findings.iter().filter(|f| f.run_id == r.run_id) {
            let _ = writeln!(
                w,
                "\nOutput of `{}` ({}):\n\n{}\n{}\n{}",
                f.step, f.status, f.fence, f.text, f.fence
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Notes so far\n");
    if pm.notes.is_empty() {
        let _ = writeln!(w, "No notes yet.");
    }
    for n in &pm.notes {
        let _ = writeln!(w, "- {}: {}", n.time, n.text.replace('\n', " "));
    }

    let _ = writeln!(w, "\n## Still open\n");
    let mut open = Vec::new();
    if pm.times.resolved.is_none() {
        open.push("The incident is not resolved.".to_string());
    }
    for r in pm.runs.iter().filter(|r| r.status != "succeeded") {
        let failed: Vec<String> = r
            .steps
            .iter()
            .filter(|s| !matches!(s.status.as_str(), "succeeded" | "skipped" | "simulated"))
            .map(|s| format!("`{}` {}", s.id, s.status))
            .collect();
        open.push(format!(
            "Run `{}` ({}) is {}{}.",
            r.run_id,
            r.playbook,
            r.status,
            if failed.is_empty() {
                String::new()
            } else {
                format!(": {}", failed.join(", "))
            }
        ));
    }
    if open.is_empty() {
        open.push("Nothing: every run succeeded and the incident is resolved.".into());
    }
    for o in open {
        let _ = writeln!(w, "- {o}");
    }

    let _ = writeln!(w, "\n## How to continue\n");
    let _ = writeln!(
        w,
        "- Accept: `irctl handoff accept --incident {short} --as NAME`"
    );
    let _ = writeln!(
        w,
        "- The whole timeline: `irctl timeline --incident {short}`"
    );
    for r in pm
        .runs
        .iter()
        .filter(|r| matches!(r.status.as_str(), "failed" | "cancelled") || r.status == UNFINISHED)
    {
        let _ = writeln!(
            w,
            "- Continue run `{}`: `irctl resume {}`",
            r.run_id, r.run_id
        );
    }
    let _ = writeln!(
        w,
        "- Add what you find: `irctl note --incident {short} \"…\"`"
    );
    let _ = writeln!(
        w,
        "- When it is over: `irctl resolve --incident {short}`, then `irctl postmortem --incident {short}`"
    );
    Packet {
        title,
        markdown: md,
    }
}
