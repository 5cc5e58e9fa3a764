//! The postmortem draft: one serialisable [`Postmortem`] built from an
//! incident's record, rendered by a built-in Markdown template — or by a
//! team's own minijinja template over the very same data (`--template`).
//!
//! The sections follow the Google SRE and PagerDuty templates: summary,
//! impact, key times ([`super::times`], where each is defined and which
//! clock gave it), trigger and root cause (for people to fill), detection,
//! resolution, responders and their roles, communications, owners over time
//! and hand-offs ([`super::ownership`]), key findings,
//! per-alert detail, lessons learned and action items
//! ([`super::sections`]), then the full timeline, what automation did, the
//! playbook versions and the record's integrity.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use super::render::{DEFAULT_TEMPLATE, Template, cell, render, to_json};
pub use super::sections::{ActionItem, AlertDetail, Communication, Finding, Lessons, Responder};
pub use super::times::{Durations, KeyTime, Span, Times};
use super::{
    Entry, Store, history, incident_log, merged, sections, show_time, step_outcomes, verify,
};
use crate::clock::Clock;
use crate::timeline::{ChainKey, Event, Payload, RecordedIncident, Scheme, describe};

/// Everything a postmortem template sees.
#[derive(Clone, Debug, Serialize)]
pub struct Postmortem {
    /// What happened.
    pub incident: IncidentInfo,
    /// Whether every run of the incident was a drill.
    pub drill: bool,
    /// One paragraph from the record: what, when, how long, how it ended.
    pub summary: String,
    /// Who and what was affected, for how long.
    pub impact: Impact,
    /// The key times (RFC 3339 UTC).
    pub times: KeyTimes,
    /// Which clock gave each key time (`from Alertmanager startsAt`, `irctl's clock`).
    pub time_sources: KeyTimes,
    /// The key times as rows, in order, for tables.
    pub key_times: Vec<KeyTimeRow>,
    /// The durations that matter; absent when unknown or out of order.
    pub durations: Durations,
    /// Key times in an impossible order, for people to check.
    pub time_warnings: Vec<String>,
    /// How the incident was detected.
    pub detection: Detection,
    /// The people who took part, with what they did.
    pub responders: Vec<Responder>,
    /// Notifications sent: where and when.
    pub communications: Vec<Communication>,
    /// Who owned the incident when, and its hand-offs.
    pub ownership: super::ownership::Ownership,
    /// Output of steps marked `report: true`, quoted.
    pub findings: Vec<Finding>,
    /// Each alert, when the incident grouped several (empty otherwise).
    pub alerts: Vec<AlertDetail>,
    /// Facts that seed "what went well" and "what went wrong".
    pub lessons: Lessons,
    /// Follow-ups the runs suggest.
    pub action_items: Vec<ActionItem>,
    /// Every event, merged in time order.
    pub timeline: Vec<Line>,
    /// What automation did, per run.
    pub runs: Vec<RunReport>,
    /// The playbook versions that ran.
    pub playbooks: Vec<PlaybookVersion>,
    /// The notes people wrote, in time order.
    pub notes: Vec<Line>,
    /// The resolution summary, if one was given.
    pub resolution: Option<String>,
    /// Whether each record's hash chain is intact.
    pub integrity: Vec<Integrity>,
    /// When this draft was generated.
    pub generated_at: String,
    /// The incident as a Mermaid `gantt` (key times, notes, each step), when
    /// anything is on it.
    pub gantt: Option<String>,
    /// The chart behind `gantt`, for the HTML page.
    #[serde(skip)]
    pub chart: crate::graph::gantt::Chart,
}

/// The incident's identity and labels.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IncidentInfo {
    /// The id.
    pub id: String,
    /// The title.
    pub title: String,
    /// Normalised severity.
    pub severity: String,
    /// `resolved` once a resolution is recorded, else `ongoing`.
    pub status: String,
    /// Where the alert came from.
    pub source: String,
    /// The playbook owner(s).
    pub owner: Option<String>,
    /// Values of the `service` label.
    pub services: Vec<String>,
    /// All labels, merged.
    pub labels: BTreeMap<String, String>,
    /// A link back to the source.
    pub url: Option<String>,
}

/// Key times as text (RFC 3339 UTC, or a clock's name in `time_sources`),
/// each absent when the record does not say.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeyTimes {
    /// Impact started: the earliest alert start.
    pub started: Option<String>,
    /// Detected: when the alert fired.
    pub detected: Option<String>,
    /// Acknowledged: the first human action.
    pub acknowledged: Option<String>,
    /// First step started.
    pub first_action: Option<String>,
    /// First note.
    pub first_note: Option<String>,
    /// Mitigation.
    pub mitigated: Option<String>,
    /// Resolution.
    pub resolved: Option<String>,
}

/// One key time as a table row.
#[derive(Clone, Debug, Serialize)]
pub struct KeyTimeRow {
    /// `started`, `detected`, …
    pub name: String,
    /// What it means, for people.
    pub label: String,
    /// RFC 3339 UTC, when known.
    pub time: Option<String>,
    /// Which clock gave it.
    pub source: Option<String>,
    /// Who, when a person did it.
    pub by: Option<String>,
}

/// The impact, as far as the record knows it.
#[derive(Clone, Debug, Serialize)]
pub struct Impact {
    /// Started → resolved (or → now, while ongoing).
    pub duration: Option<Span>,
    /// Whether the incident is still open.
    pub ongoing: bool,
    /// Values of the `service` label.
    pub services: Vec<String>,
    /// Alerts the incident grouped.
    pub alert_count: usize,
}

/// How the incident was detected.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    /// The sender (`alertmanager`, `pagerduty-webhook`, `adhoc`).
    pub source: String,
    /// When (RFC 3339 UTC).
    pub time: Option<String>,
    /// Which clock gave it.
    pub clock: Option<String>,
    /// Who recorded it, when a detection was ingested.
    pub recorded_by: Option<String>,
    /// A link back to the source.
    pub url: Option<String>,
}

/// One line of the merged timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    /// RFC 3339 UTC.
    pub time: String,
    /// The run id, or `incident` for the incident log.
    pub run: String,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The step, if any.
    pub step: String,
    /// What happened.
    pub text: String,
}
/// One run and its steps.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// The playbook.
    pub playbook: String,
    /// The run's status.
    pub status: String,
    /// Whether it was a drill.
    pub drill: bool,
    /// When it started.
    pub started: Option<String>,
    /// How long it took.
    pub duration: Option<String>,
    /// Per step.
    pub steps: Vec<StepRow>,
    /// The run's DAG as a Mermaid `flowchart`, coloured by outcome.
    pub dag: String,
    /// Why the DAG shows no `needs` (the playbook version that ran is gone).
    pub dag_note: Option<String>,
}

/// One step's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct StepRow {
    /// Step id.
    pub id: String,
    /// Final status.
    pub status: String,
    /// Attempts made.
    pub attempts: u64,
    /// Time taken.
    pub duration: Option<String>,
    /// Why it failed, was skipped or simulated.
    pub reason: Option<String>,
}

/// A playbook version that ran, and what changed in it since.
#[derive(Clone, Debug, Serialize)]
pub struct PlaybookVersion {
    /// Playbook name.
    pub name: String,
    /// Repository, when it came from Git.
    pub repo: Option<String>,
    /// The ref asked for.
    pub git_ref: Option<String>,
    /// The commit it was read at.
    pub commit: Option<String>,
    /// The file path.
    pub path: String,
    /// The file's blob id.
    pub blob: String,
    /// Commits that changed the file since, when known.
    #[serde(serialize_with = "history::serialize_changes")]
    pub changes_since: Option<Vec<history::Change>>,
    /// Why `changes_since` is unknown.
    pub changes_unknown: Option<String>,
}

/// The result of checking one record's hash chain.
#[derive(Clone, Debug, Serialize)]
pub struct Integrity {
    /// A run id, or `incident log`.
    pub record: String,
    /// Whether the chain is intact.
    pub ok: bool,
    /// What was found.
    pub message: String,
}

/// Builds the postmortem of `incident` (its id or file-safe form), generated
/// now by `clock`; keyed timelines are checked with `key` when it is given.
pub fn build(
    store: &Store,
    incident: &str,
    clock: Clock,
    key: Option<&ChainKey>,
) -> anyhow::Result<(Postmortem, Vec<String>)> {
    let id = store.canonical_incident_id(incident);
    let (entries, warnings) = merged(store, &id)?;
    if entries.is_empty() {
        anyhow::bail!(
            "no runs, notes or detections for incident `{incident}` in `{}`; `irctl runs` lists incidents",
            store.dir.display()
        );
    }
    let runs: Vec<&super::Run> = store.incident_runs(&id).collect();
    let times = super::times::measure(&entries);
    let mut incident = incident_info(&id, &entries);
    incident.status = if times.resolved.is_some() {
        "resolved".into()
    } else {
        "ongoing".into()
    };
    let now = clock.now();
    let alerts = sections::alerts(&entries);
    let impact = Impact {
        duration: times.started.as_ref().and_then(|s| {
            let end = times.resolved.as_ref().map_or(now, |r| r.at);
            Span::of_seconds((end - s.at).num_seconds())
        }),
        ongoing: times.resolved.is_none(),
        services: incident.services.clone(),
        alert_count: alerts.len(),
    };
    let resolution = entries
        .iter()
        .rev()
        .find_map(|e| match &e.event.payload {
            Payload::Resolved(r) => Some(r.summary.clone().unwrap_or_default()),
            _ => None,
        })
        .filter(|s| !s.is_empty());
    let (lessons, action_items) = sections::lessons(&runs);
    let chart = super::diagram::chart(&incident.title, &entries, &times);
    let pm = Postmortem {
        summary: summary(&incident, &times, &impact, &runs, resolution.as_deref()),
        drill: !runs.is_empty() && runs.iter().all(|r| r.summary.drill),
        detection: Detection {
            source: incident.source.clone(),
            time: times.detected.as_ref().map(|k| show_time(k.at)),
            clock: times.detected.as_ref().map(|k| k.source.clone()),
            recorded_by: entries.iter().find_map(|e| match &e.event.payload {
                Payload::Detected(d) => Some(d.by.clone()),
                _ => None,
            }),
            url: incident.url.clone(),
        },
        impact,
        times: key_times(&times, |k| show_time(k.at)),
        time_sources: key_times(&times, |k| k.source.clone()),
        key_times: key_time_rows(&times),
        durations: times.durations.clone(),
        time_warnings: times.warnings.clone(),
        responders: sections::responders(&entries),
        communications: sections::communications(&entries),
        ownership: super::ownership::ownership(&entries),
        findings: sections::findings(&runs),
        alerts: if alerts.len() > 1 { alerts } else { Vec::new() },
        lessons,
        action_items,
        incident,
        timeline: entries.iter().map(line).collect(),
        runs: runs.iter().map(|r| run_report(r)).collect(),
        playbooks: playbook_versions(&runs),
        notes: entries
            .iter()
            .filter(|e| matches!(e.event.payload, Payload::Note(_)))
            .map(line)
            .collect(),
        resolution,
        integrity: integrity(store, &runs, &id, key),
        generated_at: show_time(now),
        gantt: crate::graph::gantt::render(&chart),
        chart,
    };
    Ok((pm, warnings))
}

/// Each key time of `t` as `show` writes it.
fn key_times(t: &Times, show: impl Fn(&KeyTime) -> String) -> KeyTimes {
    let f = |k: &Option<KeyTime>| k.as_ref().map(&show);
    KeyTimes {
        started: f(&t.started),
        detected: f(&t.detected),
        acknowledged: f(&t.acknowledged),
        first_action: f(&t.first_action),
        first_note: f(&t.first_note),
        mitigated: f(&t.mitigated),
        resolved: f(&t.resolved),
    }
}

fn key_time_rows(t: &Times) -> Vec<KeyTimeRow> {
    [
        (
            "started",
            "Impact started (earliest alert start)",
            &t.started,
        ),
        ("detected", "Detected (the alert fired)", &t.detected),
        (
            "acknowledged",
            "Acknowledged (first human action)",
            &t.acknowledged,
        ),
        ("first_action", "First automated action", &t.first_action),
        ("mitigated", "Mitigated", &t.mitigated),
        ("resolved", "Resolved", &t.resolved),
    ]
    .into_iter()
    .map(|(name, label, k)| KeyTimeRow {
        name: name.into(),
        label: label.into(),
        time: k.as_ref().map(|k| show_time(k.at)),
        source: k.as_ref().map(|k| k.source.clone()),
        by: k.as_ref().and_then(|k| k.by.clone()),
    })
    .collect()
}

/// One paragraph, every clause true of the record.
fn summary(
    incident: &IncidentInfo,
    times: &Times,
    impact: &Impact,
    runs: &[&super::Run],
    resolution: Option<&str>,
) -> String {
    let mut text = format!(
        "{} ({} severity, from {})",
        incident.title, incident.severity, incident.source
    );
    if let Some(s) = &times.started {
        text.push_str(&format!(" started at {}", show_time(s.at)));
    }
    match (&times.resolved, &impact.duration) {
        (Some(r), Some(d)) => text.push_str(&format!(
            " and was resolved at {} after {}",
            show_time(r.at),
            d.text
        )),
        (Some(r), None) => text.push_str(&format!(" and was resolved at {}", show_time(r.at))),
        (None, _) => text.push_str(" and is not resolved yet"),
    }
    text.push('.');
    if !runs.is_empty() {
        let list: Vec<String> = runs
            .iter()
            .map(|r| format!("{} ({})", r.summary.playbook, r.summary.status))
            .collect();
        text.push_str(&format!(
            " {} run{}: {}.",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            list.join(", ")
        ));
    }
    if let Some(fix) = resolution {
        text.push_str(&format!(" Resolution: {fix}."));
    }
    text
}

/// The incident a run's start or a detection recorded (what a resolution
/// read from a payload says is left out: it describes the end).
fn started_or_detected(e: &Event) -> Option<RecordedIncident> {
    match &e.payload {
        Payload::RunStarted(_) | Payload::Detected(_) => e.payload.recorded_incident(),
        _ => None,
    }
}

fn incident_info(id: &str, entries: &[Entry]) -> IncidentInfo {
    let values: Vec<RecordedIncident> = entries
        .iter()
        .filter_map(|e| started_or_detected(&e.event))
        .collect();
    let text = |pick: fn(&RecordedIncident) -> Option<&str>| {
        values
            .iter()
            .filter_map(pick)
            .find(|t| !t.is_empty())
            .map(str::to_string)
    };
    let mut labels = BTreeMap::new();
    for v in &values {
        for (k, val) in &v.labels {
            labels.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    let services: BTreeSet<String> = values
        .iter()
        .flat_map(RecordedIncident::label_sets)
        .filter_map(|l| l.get("service").cloned())
        .collect();
    let owners: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.event.payload {
            Payload::RunStarted(p) => p.owner.as_deref(),
            _ => None,
        })
        .filter(|o| !o.is_empty())
        .collect();
    IncidentInfo {
        id: id.to_string(),
        title: text(|v| Some(&v.title)).unwrap_or_else(|| id.to_string()),
        severity: text(|v| Some(&v.severity)).unwrap_or_else(|| "unknown".into()),
        status: String::new(),
        source: text(|v| Some(&v.source)).unwrap_or_else(|| "unknown".into()),
        owner: (!owners.is_empty()).then(|| owners.into_iter().collect::<Vec<_>>().join(", ")),
        services: services.into_iter().collect(),
        labels,
        url: text(|v| v.url.as_deref()),
    }
}

/// One timeline line for an entry.
pub fn line(e: &Entry) -> Line {
    Line {
        time: show_time(e.time),
        run: if e.event.run_id.is_empty() {
            "incident".into()
        } else {
            e.event.run_id.to_string()
        },
        kind: e.event.kind().to_string(),
        step: e.event.step().unwrap_or_default().to_string(),
        text: describe(&e.event),
    }
}

fn ms(v: u64) -> String {
    crate::duration::format(std::time::Duration::from_millis(v))
}

fn run_report(run: &super::Run) -> RunReport {
    let s = &run.summary;
    let dag = super::diagram::recorded_run_graph(run);
    RunReport {
        run_id: s.run_id.clone(),
        playbook: s.playbook.clone(),
        status: s.status.clone(),
        drill: s.drill,
        started: s.started.map(show_time),
        duration: s.duration_ms.map(ms),
        steps: step_outcomes(run)
            .into_iter()
            .map(|o| StepRow {
                id: o.id,
                status: o.status,
                attempts: o.attempts,
                duration: o.duration_ms.map(ms),
                reason: o.reason,
            })
            .collect(),
        dag: crate::graph::mermaid::render(&dag),
        dag_note: dag.note,
    }
}

fn playbook_versions(runs: &[&super::Run]) -> Vec<PlaybookVersion> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for run in runs {
        let Some(started) = run.started() else {
            continue;
        };
        let p = &started.provenance;
        let name = started.playbook.clone();
        let blob = p.blob.clone();
        if !seen.insert((name.clone(), blob.clone(), p.commit.clone())) {
            continue;
        }
        let (repo, git_ref, commit) = (p.repo.clone(), p.git_ref.clone(), p.commit.clone());
        let path = p.path.clone();
        let changes = match (&repo, &commit) {
            (Some(repo), Some(commit)) => {
                history::changes_since(repo, git_ref.as_deref(), commit, &path)
            }
            _ => Err("the playbook was not loaded from Git".to_string()),
        };
        let (changes_since, changes_unknown) = match changes {
            Ok(c) => (Some(c), None),
            Err(why) => (None, Some(why)),
        };
        out.push(PlaybookVersion {
            name,
            repo,
            git_ref,
            commit,
            path,
            blob,
            changes_since,
            changes_unknown,
        });
    }
    out
}

fn integrity(
    store: &Store,
    runs: &[&super::Run],
    id: &str,
    key: Option<&ChainKey>,
) -> Vec<Integrity> {
    let mut out: Vec<Integrity> = runs
        .iter()
        .map(|r| {
            check(
                &format!("run {}", r.summary.run_id),
                &r.summary.timeline,
                key,
                true,
            )
        })
        .collect();
    let log = incident_log::path(&store.dir, id);
    if log.exists() {
        out.push(check("incident log", &log, None, false));
    }
    out
}

/// One record's verdict, in the words `irctl timeline verify` uses: a run
/// without its `run_finished` is incomplete, not intact, and an unkeyed
/// chain says it is not anchored.
fn check(record: &str, path: &std::path::Path, key: Option<&ChainKey>, run: bool) -> Integrity {
    match verify::verify_with(path, key) {
        Ok(r) => Integrity {
            record: record.to_string(),
            ok: r.ok() && (r.finished || !run),
            message: match &r.problem {
                Some(p) => p.message.clone(),
                None if run && !r.finished => format!(
                    "incomplete: {} events chain correctly, but there is no `run_finished` after the last start (still running, killed, or cut off)",
                    r.events
                ),
                None if r.scheme == Some(Scheme::Keyed) => format!(
                    "{} events, keyed chain intact (final hash {})",
                    r.events,
                    crate::timeline::chain::display(&r.head)
                ),
                None => format!(
                    "{} events, chain intact (not keyed; final hash {})",
                    r.events,
                    crate::timeline::chain::display(&r.head)
                ),
            },
        },
        Err(e) => Integrity {
            record: record.to_string(),
            ok: false,
            message: format!("{e:#}"),
        },
    }
}
