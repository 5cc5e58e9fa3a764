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
//!
//! This file is the data a template sees; `build.rs` reads it out of the
//! record, with each run's report and playbook version from `runs.rs` and
//! each record's hash-chain verdict from `integrity.rs`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::history;
pub use super::render::{DEFAULT_TEMPLATE, Template, cell, render, to_json};
pub use super::sections::{ActionItem, AlertDetail, Communication, Finding, Lessons, Responder};
pub use super::times::{Durations, KeyTime, Span, Times};

mod build;
mod integrity;
mod runs;

pub use build::{build, line};

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
