//! The record as pictures: an incident's (or one run's) Gantt chart —
//! key times, notes and hand-offs as milestones, each execution of a step
//! as a bar — and each run's DAG coloured by what happened to its steps,
//! for the postmortem's Mermaid blocks, `irctl graph --run` and the HTML
//! pages of `irctl timeline` and `irctl postmortem`.
//!
//! A run's timeline names its steps but not their `needs`; the edges come
//! from the playbook file that ran, found by its recorded blob id (the
//! file at its recorded path, or the blob in the recorded Git
//! repository). When that version is gone, the DAG shows the steps alone
//! and says why.

use chrono::{DateTime, Utc};

use super::postmortem::Postmortem;
use super::times::Times;
use super::{Entry, Run, step_outcomes};
use crate::graph::gantt::{Chart, Row};
use crate::graph::html::{Page, Table};
use crate::graph::model::{Graph, Outcome, RecordedStep, State};
use crate::playbook::{Playbook, Provenance, Step};
use crate::timeline::Payload;

/// The section of the incident's own milestones.
const INCIDENT_SECTION: &str = "incident";

/// The Gantt chart of `entries` (one run's, or an incident's merged), with
/// the key times `times` measured on them.
pub fn chart(title: &str, entries: &[Entry], times: &Times) -> Chart {
    let mut chart = Chart {
        title: title.to_string(),
        rows: Vec::new(),
    };
    let mut milestones: Vec<(DateTime<Utc>, String)> = [
        ("impact started", &times.started),
        ("detected", &times.detected),
        ("acknowledged", &times.acknowledged),
        ("first automated action", &times.first_action),
        ("mitigated", &times.mitigated),
        ("resolved", &times.resolved),
    ]
    .into_iter()
    .filter_map(|(name, k)| k.as_ref().map(|k| (k.at, name.to_string())))
    .collect();
    for e in entries {
        match &e.event.payload {
            Payload::Note(n) => milestones.push((e.time, format!("note by {}", n.author))),
            // Hand-offs are milestones too, whatever their exact type name.
            Payload::Other { kind, .. }
                if kind.starts_with("handoff") || kind.starts_with("hand_off") =>
            {
                milestones.push((e.time, kind.replace('_', " ")))
            }
            _ => {}
        }
    }
    milestones.sort_by_key(|(t, _)| *t);
    chart
        .rows
        .extend(milestones.into_iter().map(|(t, label)| Row {
            section: INCIDENT_SECTION.into(),
            label,
            start: t,
            end: None,
            state: None,
        }));
    let mut runs: Vec<&str> = Vec::new();
    for e in entries {
        let id = e.event.run_id.as_str();
        if !id.is_empty() && !runs.contains(&id) {
            runs.push(id);
        }
    }
    for run in runs {
        let events: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.event.run_id.as_str() == run)
            .collect();
        chart.rows.extend(step_bars(run, &events));
    }
    chart
}

/// One bar per execution of a step in one run's events: from its first
/// attempt's start to its end (every retry inside the bar); a resumed step
/// has a bar per attempt of the run. A start without an end (irctl was
/// killed) ends at the run's last event.
fn step_bars(run: &str, events: &[&Entry]) -> Vec<Row> {
    let playbook = events.iter().find_map(|e| match &e.event.payload {
        Payload::RunStarted(p) => Some(p.playbook.clone()),
        _ => None,
    });
    let section = match playbook {
        Some(p) => format!("{p} {run}"),
        None => format!("run {run}"),
    };
    let last = events.last().map(|e| e.time);
    let mut open: Vec<(String, DateTime<Utc>)> = Vec::new();
    let mut rows = Vec::new();
    for e in events {
        match &e.event.payload {
            Payload::StepStarted(s) if !open.iter().any(|(id, _)| *id == s.step.as_str()) => {
                open.push((s.step.to_string(), e.time));
            }
            Payload::StepFinished(f) => {
                let Some(at) = open.iter().position(|(id, _)| *id == f.step.as_str()) else {
                    continue;
                };
                let (id, start) = open.remove(at);
                let label = if f.attempts > 1 {
                    format!("{id} ({} attempts)", f.attempts)
                } else {
                    id
                };
                rows.push(Row {
                    section: section.clone(),
                    label,
                    start,
                    end: Some(e.time),
                    state: Some(State::of_status(f.status.as_str())),
                });
            }
            Payload::StepSimulated(s) => rows.push(Row {
                section: section.clone(),
                label: format!("{} (simulated)", s.step),
                start: e.time,
                end: Some(e.time),
                state: Some(State::Simulated),
            }),
            _ => {}
        }
    }
    for (id, start) in open {
        rows.push(Row {
            section: section.clone(),
            label: format!("{id} (unfinished)"),
            start,
            end: Some(last.unwrap_or(start)),
            state: Some(State::Unfinished),
        });
    }
    rows.sort_by_key(|r| r.start);
    rows
}

/// Each step of `run` with what happened to it (a resumed run's combined outcome).
pub fn recorded_steps(run: &Run) -> Vec<RecordedStep> {
    step_outcomes(run)
        .into_iter()
        .map(|o| RecordedStep {
            outcome: Outcome {
                state: State::of_status(&o.status),
                status: if o.status == "not_started" {
                    "not_reached".into()
                } else {
                    o.status.clone()
                },
                attempts: o.attempts,
                reason: o.reason,
            },
            id: o.id,
        })
        .collect()
}

/// The steps of `playbook` that `run` ran: its `steps`, or its
/// `on_resolved` steps when those are the ones the run recorded.
pub fn steps_that_ran<'a>(run: &Run, playbook: &'a Playbook) -> &'a [Step] {
    let recorded: Vec<&str> = run
        .started()
        .map(|s| s.steps.iter().map(|id| id.as_str()).collect())
        .unwrap_or_default();
    let same = |steps: &[Step]| {
        steps
            .iter()
            .map(|s| s.id.as_str())
            .eq(recorded.iter().copied())
    };
    if !playbook.on_resolved.is_empty() && same(&playbook.on_resolved) && !same(&playbook.steps) {
        &playbook.on_resolved
    } else {
        &playbook.steps
    }
}

/// The DAG of `run` coloured by outcome, with the edges of `playbook`
/// (the version that ran, or `None` with the reason in `missing`).
pub fn run_graph(run: &Run, playbook: Option<&Playbook>, missing: Option<String>) -> Graph {
    let title = format!("{} run {}", run.summary.playbook, run.summary.run_id);
    let steps = playbook.map(|p| steps_that_ran(run, p));
    let mut g = Graph::of_run(title, steps, &recorded_steps(run));
    g.note = missing;
    g
}

/// The playbook version `provenance` recorded, read back by its blob id:
/// the file at its recorded path (as irctl ran it, relative to here, or
/// inside the recorded repository), else the blob in the recorded Git
/// repository; `Err` says why it is not available.
pub fn playbook_at(provenance: &Provenance) -> Result<Playbook, String> {
    let wanted = &provenance.blob;
    let mut candidates = vec![std::path::PathBuf::from(&provenance.path)];
    if let Some(repo) = &provenance.repo {
        candidates.push(std::path::Path::new(repo).join(&provenance.path));
    }
    let from_file = candidates.iter().find_map(|p| {
        let text = crate::capped::read_to_string(p, 16 * 1024 * 1024).ok()?;
        (crate::playbook::load::blob_id(text.as_bytes()) == *wanted).then_some(text.into_bytes())
    });
    let bytes = match from_file {
        Some(b) => b,
        None => provenance
            .repo
            .as_deref()
            .and_then(|repo| super::history::blob(repo, wanted))
            .ok_or_else(|| {
                format!(
                    "the DAG shows no `needs`: the playbook version that ran (`{}`, blob {}) is not available here",
                    provenance.path,
                    &wanted[..wanted.len().min(12)]
                )
            })?,
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("`{}` is not valid UTF-8", provenance.path))?;
    let (playbook, _) =
        crate::playbook::validate::check_file(&provenance.path, &text, provenance.clone());
    playbook.ok_or_else(|| {
        format!(
            "the DAG shows no `needs`: the playbook version that ran (`{}`) no longer validates",
            provenance.path
        )
    })
}

/// The DAG of `run` with the edges of the playbook version it recorded.
pub fn recorded_run_graph(run: &Run) -> Graph {
    let found = run.started().map(|s| playbook_at(&s.provenance));
    match found {
        Some(Ok(p)) => run_graph(run, Some(&p), None),
        Some(Err(why)) => run_graph(run, None, Some(why)),
        None => run_graph(
            run,
            None,
            Some("the DAG shows no `needs`: the run's start is not in its timeline".into()),
        ),
    }
}

/// The HTML page of a timeline view: the chart, then every event.
pub fn timeline_page(title: &str, entries: &[Entry], merged: bool) -> Page {
    let times = super::times::measure(entries);
    let mut header = vec!["Time (UTC)".to_string()];
    if merged {
        header.push("Run".into());
    }
    header.extend(["Event".into(), "Step".into(), "Details".into()]);
    let rows = entries
        .iter()
        .map(|e| {
            let l = super::view::precise(e);
            let mut row = vec![l.time];
            if merged {
                row.push(l.run);
            }
            row.extend([l.kind, l.step, l.text]);
            row
        })
        .collect();
    Page {
        title: title.to_string(),
        paragraphs: Vec::new(),
        chart: Some(chart(title, entries, &times)),
        tables: vec![Table {
            heading: "Events".into(),
            header,
            rows,
        }],
    }
}

/// The HTML page of a postmortem: summary, chart, key times, steps, timeline.
pub fn postmortem_page(pm: &Postmortem) -> Page {
    let mut tables = vec![Table {
        heading: "Key times (UTC)".into(),
        header: vec!["Key time".into(), "When".into(), "Source".into()],
        rows: pm
            .key_times
            .iter()
            .map(|k| {
                vec![
                    k.label.clone(),
                    k.time.clone().unwrap_or_else(|| "unknown".into()),
                    k.source.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    }];
    for r in &pm.runs {
        tables.push(Table {
            heading: format!("Run {}: {}, {}", r.run_id, r.playbook, r.status),
            header: ["Step", "Status", "Attempts", "Duration", "Reason"]
                .map(String::from)
                .to_vec(),
            rows: r
                .steps
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.status.clone(),
                        s.attempts.to_string(),
                        s.duration.clone().unwrap_or_default(),
                        s.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        });
    }
    tables.push(Table {
        heading: "Timeline (UTC)".into(),
        header: ["Time", "Run", "Event", "Step", "Details"]
            .map(String::from)
            .to_vec(),
        rows: pm
            .timeline
            .iter()
            .map(|l| {
                vec![
                    l.time.clone(),
                    l.run.clone(),
                    l.kind.clone(),
                    l.step.clone(),
                    l.text.clone(),
                ]
            })
            .collect(),
    });
    let mut paragraphs = vec![pm.summary.clone()];
    if let Some(r) = &pm.resolution {
        paragraphs.push(format!("Resolution: {r}"));
    }
    Page {
        title: format!("Postmortem: {}", pm.incident.title),
        paragraphs,
        chart: Some(pm.chart.clone()),
        tables,
    }
}
