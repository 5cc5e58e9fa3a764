//! The record of past incidents, read back from the state directory: runs,
//! their timelines, and the incident-level log of notes, detection and
//! resolution.
//!
//! `irctl run` writes one chained timeline per run (`STATE/runs/RUN_ID/`);
//! people and payloads add to a second chained log per incident
//! ([`incident_log`]). This module finds both, summarises runs
//! ([`RunSummary`]) and merges an incident's events into one time-ordered
//! list ([`merged`]); [`ingest`] records what alert payloads say, in the
//! [`episode`] they belong to,
//! [`ownership`] says who owned the incident when, and its hand-offs,
//! [`verify`] proves a chain untouched, [`view`] chooses what `irctl timeline`
//! shows and checks, [`times`] defines an incident's key times, and
//! [`postmortem`] (with [`sections`], rendered by [`render`]) and [`stats`]
//! turn the record into a report and numbers. Nothing here
//! prints: readers return [`Store::warnings`] (torn last lines, unreadable
//! lines) for the CLI to show, so every command keeps working on what a
//! killed process left behind.

pub mod diagram;
pub mod episode;
pub mod history;
pub mod incident_log;
pub mod ingest;
mod lookup;
pub mod ownership;
pub mod postmortem;
pub mod render;
pub mod sections;
pub mod stats;
pub mod times;
pub mod verify;
pub mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::timeline::{self, Event, Payload, RunStarted};

/// Status shown for a run whose timeline has no `run_finished` after its last
/// start: it is still running, or its process was killed.
pub const UNFINISHED: &str = "unfinished";

/// One run, summarised from its timeline.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// The run id (`YYYYmmddTHHMMSSZ-xxxxxx`).
    pub run_id: String,
    /// The incident id as the run recorded it.
    pub incident_id: String,
    /// Its file-safe form (needs no shell quoting; every `--incident` takes it).
    pub incident_file_id: String,
    /// The incident's title.
    pub incident_title: String,
    /// The playbook's name.
    pub playbook: String,
    /// The commit the playbook was read at, when it came from Git.
    pub commit: Option<String>,
    /// `succeeded`, `failed`, `cancelled`, or [`UNFINISHED`].
    pub status: String,
    /// When the run started.
    pub started: Option<DateTime<Utc>>,
    /// How long it ran: `run_finished`'s own figure, or up to the last
    /// event for an unfinished run.
    pub duration_ms: Option<u64>,
    /// Whether this was a drill.
    pub drill: bool,
    /// The timeline file.
    pub timeline: PathBuf,
}

impl RunSummary {
    /// Whether `query` names this run's incident, as recorded or file-safe.
    pub fn names_incident(&self, query: &str) -> bool {
        query == self.incident_id || query == self.incident_file_id
    }
}

/// A run's timeline read back with its summary.
#[derive(Clone, Debug)]
pub struct Run {
    /// The summary.
    pub summary: RunSummary,
    /// The complete events, in file order.
    pub events: Vec<Event>,
}

impl Run {
    /// The `run_started` event, if the timeline has one.
    pub fn started(&self) -> Option<&RunStarted> {
        self.events.iter().find_map(|e| match &e.payload {
            Payload::RunStarted(p) => Some(p),
            _ => None,
        })
    }
}

/// Everything in a state directory, read once.
#[derive(Debug, Default)]
pub struct Store {
    /// The state directory.
    pub dir: PathBuf,
    /// Runs, oldest first.
    pub runs: Vec<Run>,
    /// What the readers skipped, for the CLI to print as warnings.
    pub warnings: Vec<String>,
}

/// Which runs a [`Store`] reads in full.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every run (`runs`, `stats`).
    All,
    /// One run, by id.
    Run(&'a str),
    /// The runs of one incident (its id or file-safe form); only each
    /// timeline's first event is read to decide.
    Incident(&'a str),
}

impl Store {
    /// Reads the runs in `scope`, so looking at one run or one incident does
    /// not parse months of other runs' captured output. A missing `dir/runs`
    /// is an empty store.
    pub fn open_scoped(dir: &Path, scope: Scope<'_>) -> anyhow::Result<Store> {
        let mut store = Store {
            dir: dir.to_path_buf(),
            ..Store::default()
        };
        let runs_dir = dir.join("runs");
        let entries = match std::fs::read_dir(&runs_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read runs in `{}`", runs_dir.display()));
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join(timeline::FILE_NAME).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|id| match scope {
                Scope::Run(run) => id == run,
                _ => true,
            })
            .collect();
        ids.sort();
        for id in ids {
            let path = runs_dir.join(&id).join(timeline::FILE_NAME);
            if let Scope::Incident(query) = scope
                && !first_event(&path).is_some_and(|e| same_incident(query, &e.incident_id))
            {
                continue;
            }
            let (events, warnings) = read_events(&path, &format!("run {id}"))?;
            store.warnings.extend(warnings);
            let summary = summarise(&id, &path, &events);
            store.runs.push(Run { summary, events });
        }
        // Run ids sort by the second; the start event's milliseconds order
        // runs started within the same second.
        store.runs.sort_by_key(|r| r.summary.started);
        Ok(store)
    }

    /// The run `run_id`, or an error naming the state directory.
    pub fn run(&self, run_id: &str) -> anyhow::Result<&Run> {
        self.runs
            .iter()
            .find(|r| r.summary.run_id == run_id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no run `{run_id}` in `{}`; `irctl runs` lists them",
                    self.dir.display()
                )
            })
    }

    /// The runs of an incident, given its id or its file-safe form.
    pub fn incident_runs<'a>(&'a self, query: &'a str) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs
            .iter()
            .filter(move |r| r.summary.names_incident(query))
    }

    /// The incident's id as recorded, for a query that may be its file-safe
    /// form or its log's directory name; the query itself when no run or
    /// log knows it.
    pub fn canonical_incident_id(&self, query: &str) -> String {
        if let Some(run) = self.incident_runs(query).next() {
            return run.summary.incident_id.clone();
        }
        if incident_log::exists(&self.dir, query) {
            return query.to_string();
        }
        logged_by_dir_name(&self.dir, query).unwrap_or_else(|| query.to_string())
    }

    /// Every incident id known to the store: from runs and incident logs, sorted.
    pub fn incident_ids(&self) -> anyhow::Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .runs
            .iter()
            .map(|r| r.summary.incident_id.clone())
            .collect();
        for id in incident_log::logged_ids(&self.dir)? {
            // A log of an incident with runs is listed already, by either form of its id.
            if !self.runs.iter().any(|r| r.summary.names_incident(&id)) {
                ids.push(id);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// Which runs `irctl runs` lists; every field left `None` lets all through.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunFilter<'a> {
    /// Only this incident's runs (its id or file-safe form).
    pub incident: Option<&'a str>,
    /// Only runs of this playbook.
    pub playbook: Option<&'a str>,
    /// Only runs started at or after this time (see [`parse_since`]).
    pub since: Option<DateTime<Utc>>,
}

impl RunFilter<'_> {
    /// The runs a [`Store`] must read for this filter.
    pub fn scope(&self) -> Scope<'_> {
        match self.incident {
            Some(incident) => Scope::Incident(incident),
            None => Scope::All,
        }
    }

    /// Whether any filter is set (an empty listing then says so).
    pub fn is_active(&self) -> bool {
        self.incident.is_some() || self.playbook.is_some() || self.since.is_some()
    }

    /// Whether `run` passes every filter; a run with no start time never
    /// passes `since`.
    pub fn matches(&self, run: &RunSummary) -> bool {
        self.incident.is_none_or(|i| run.names_incident(i))
            && self.playbook.is_none_or(|p| run.playbook == p)
            && self
                .since
                .is_none_or(|t| run.started.is_some_and(|st| st >= t))
    }
}

/// The summaries of the runs in `store` that pass `filter`, oldest first.
pub fn list_runs<'a>(store: &'a Store, filter: &RunFilter<'_>) -> Vec<&'a RunSummary> {
    store
        .runs
        .iter()
        .map(|r| &r.summary)
        .filter(|s| filter.matches(s))
        .collect()
}

/// The first event of a timeline — the one [`timeline::read`] puts first —
/// reading only up to the first line that parses: deciding whose record a
/// file is must not parse all of it.
fn first_event(path: &Path) -> Option<Event> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        if let Ok(e) = serde_json::from_str(&String::from_utf8_lossy(&line)) {
            return Some(e);
        }
    }
}

/// Whether `query` names `incident_id`, as given or in its file-safe form
/// (the form directories use, which is what people copy from `ls`).
pub fn same_incident(query: &str, incident_id: &str) -> bool {
    query == incident_id || file_safe_id(incident_id) == query
}

pub use crate::incident::file_safe_id;
use lookup::logged_by_dir_name;
pub use lookup::{
    UnknownIncident, known_incident_ids, resolve_incident, resolve_run, run_incident_ids,
    short_incident_id,
};

/// Reads a chained JSONL file, turning a torn last line and unparsable lines
/// into warnings prefixed with `what`.
pub fn read_events(path: &Path, what: &str) -> anyhow::Result<(Vec<Event>, Vec<String>)> {
    let t = timeline::read(path)?;
    let mut warnings = Vec::new();
    if t.torn_tail {
        warnings.push(format!(
            "{what}: ignored a torn last line in `{}` (the writer was killed mid-write)",
            path.display()
        ));
    }
    for line in &t.bad_lines {
        warnings.push(format!(
            "{what}: line {line} of `{}` is not a timeline event; skipped (`irctl timeline verify` checks the chain)",
            path.display()
        ));
    }
    Ok((t.events, warnings))
}

fn summarise(run_id: &str, path: &Path, events: &[Event]) -> RunSummary {
    let mut summary = RunSummary {
        run_id: run_id.to_string(),
        incident_id: events
            .first()
            .map(|e| e.incident_id.clone())
            .unwrap_or_default(),
        incident_file_id: String::new(),
        incident_title: String::new(),
        playbook: String::new(),
        commit: None,
        status: UNFINISHED.to_string(),
        started: None,
        duration_ms: None,
        drill: false,
        timeline: path.to_path_buf(),
    };
    let mut finished_ms = None;
    for e in events {
        // A resumed run appends a new start; only a finish after the last
        // start counts, so a run being resumed shows as unfinished.
        let (playbook, provenance, drill, title) = match &e.payload {
            Payload::RunStarted(p) => (
                &p.playbook,
                &p.provenance,
                p.drill,
                p.recorded_incident().title,
            ),
            Payload::RunResumed(p) => (&p.playbook, &p.provenance, false, String::new()),
            Payload::RunFinished(p) => {
                summary.status = p.status.as_str().to_string();
                finished_ms = Some(p.duration_ms);
                continue;
            }
            _ => continue,
        };
        if summary.started.is_none() {
            summary.started = parse_time(&e.ts);
            summary.playbook = playbook.clone();
            summary.drill = drill;
            summary.incident_title = title;
            summary.commit = provenance.commit.clone();
        }
        summary.status = UNFINISHED.to_string();
        finished_ms = None;
    }
    summary.incident_file_id = file_safe_id(&summary.incident_id);
    summary.duration_ms = finished_ms.or_else(|| {
        let start = summary.started?;
        let last = events.last().and_then(|e| parse_time(&e.ts))?;
        u64::try_from((last - start).num_milliseconds()).ok()
    });
    summary
}

/// Parses an RFC 3339 time into UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// When an event happened: its `at` field (a note or resolution recorded
/// after the fact says when it really happened), else when it was written.
pub fn event_time(e: &Event) -> Option<DateTime<Utc>> {
    parse_time(e.at()).or_else(|| parse_time(&e.ts))
}

/// Formats a time as the record shows it: RFC 3339 UTC, whole seconds.
pub fn show_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses `--since`: a duration back from now by `clock` (`7d`, `12h`) or an RFC 3339 time.
pub fn parse_since(text: &str, clock: Clock) -> Result<DateTime<Utc>, String> {
    if let Some(t) = parse_time(text) {
        return Ok(t);
    }
    let d = crate::duration::parse(text).map_err(|e| {
        format!("{e}; `--since` takes a duration such as `7d` or an RFC 3339 time such as `2024-01-01T10:00:00Z`")
    })?;
    let d = chrono::Duration::from_std(d).map_err(|e| format!("invalid `--since {text}`: {e}"))?;
    Ok(clock.now() - d)
}

/// Parses `--at`: an RFC 3339 time.
pub fn parse_at(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time(text).ok_or_else(|| {
        format!("invalid time `{text}`: expected RFC 3339 such as `2024-01-01T10:00:00Z`")
    })
}

/// One event of an incident's merged timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// When it happened (see [`event_time`]).
    pub time: DateTime<Utc>,
    /// The event as recorded.
    pub event: Event,
}

/// Every event of an incident — all its runs and its incident log — in time
/// order. Events at the same instant keep their recorded order (stable sort),
/// so a run's own sequence is never shuffled.
pub fn merged(store: &Store, incident: &str) -> anyhow::Result<(Vec<Entry>, Vec<String>)> {
    let mut entries = Vec::new();
    for run in store.incident_runs(incident) {
        entries.extend(run.events.iter().map(entry));
    }
    let log = incident_log::read(&store.dir, incident)?;
    entries.extend(log.events.iter().map(entry));
    entries.sort_by_key(|e| e.time);
    Ok((entries, log.warnings))
}

fn entry(e: &Event) -> Entry {
    Entry {
        time: event_time(e).unwrap_or(DateTime::<Utc>::MIN_UTC),
        event: e.clone(),
    }
}

/// Per-step outcome of one run, from its events (the last attempt wins, so a
/// resumed step shows its final state).
#[derive(Clone, Debug, Serialize)]
pub struct StepOutcome {
    /// Step id.
    pub id: String,
    /// Final status, or `not_started`.
    pub status: String,
    /// Attempts made.
    pub attempts: u64,
    /// Time taken, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Why it failed, was skipped, or was simulated.
    pub reason: Option<String>,
}

/// The outcome of each step of `run`, in playbook order; steps the timeline
/// never mentions are `not_started`, a step started but never finished is
/// `started` (its process was killed with irctl).
pub fn step_outcomes(run: &Run) -> Vec<StepOutcome> {
    let mut order: Vec<String> = run
        .started()
        .map(|s| s.steps.iter().map(|id| id.to_string()).collect())
        .unwrap_or_default();
    let mut by_id: BTreeMap<String, StepOutcome> = BTreeMap::new();
    for e in &run.events {
        let Some(step) = e.step().filter(|s| !s.is_empty()) else {
            continue;
        };
        if !order.iter().any(|s| s == step) {
            order.push(step.to_string());
        }
        let o = by_id
            .entry(step.to_string())
            .or_insert_with(|| StepOutcome {
                id: step.to_string(),
                status: "not_started".into(),
                attempts: 0,
                duration_ms: None,
                reason: None,
            });
        let text = |t: &str| Some(t.to_string()).filter(|s| !s.is_empty());
        match &e.payload {
            Payload::StepStarted(p) => {
                o.status = "started".into();
                o.attempts = u64::from(p.attempt);
                o.reason = None;
            }
            Payload::StepFinished(p) => {
                o.status = p.status.as_str().to_string();
                o.attempts = u64::from(p.attempts);
                o.duration_ms = Some(p.duration_ms);
                o.reason = p.error.as_deref().and_then(text);
            }
            Payload::StepSkipped(p) => {
                o.status = p.status.as_str().to_string();
                o.reason = text(&p.reason);
            }
            Payload::StepSimulated(_) => {
                o.status = "simulated".into();
                o.reason = Some("simulated in drill".into());
            }
            _ => {}
        }
    }
    order
        .into_iter()
        .map(|id| {
            by_id.remove(&id).unwrap_or(StepOutcome {
                id,
                status: "not_started".into(),
                attempts: 0,
                duration_ms: None,
                reason: None,
            })
        })
        .collect()
}
