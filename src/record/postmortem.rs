//! The postmortem draft: one serialisable [`Postmortem`] built from an
//! incident's record, rendered by a built-in Markdown template — or by a
//! team's own minijinja template over the very same data (`--template`).
//!
//! Key times, and why each is defined so:
//! - **started**: the alert's own start (`startsAt` / `started_at` of the
//!   payload, the earliest across runs and detections) — the impact began
//!   then, not when irctl heard of it;
//! - **detected**: the first detection recorded by `irctl ingest` of a firing
//!   payload, else the first run's start (the moment a responder acted);
//! - **first automated action**: the first `step_started` of any run;
//! - **first human note**: the first `irctl note`;
//! - **mitigated**: the first note marked `--mitigated` (only people know);
//! - **resolved**: the last resolution (`irctl resolve` or a resolved payload).
//!
//! Time to detect = detected − started, time to resolve = resolved − started,
//! time to first action = first action − detected (how fast the response
//! began once someone knew).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::{
    Entry, Store, history, incident_log, merged, parse_time, show_time, step_outcomes, verify,
};
use crate::clock::Clock;
use crate::timeline::{Event, Payload, RecordedIncident, describe};

/// The built-in Markdown template.
pub const DEFAULT_TEMPLATE: &str = include_str!("postmortem.md.j2");

/// Everything a postmortem template sees.
#[derive(Clone, Debug, Serialize)]
pub struct Postmortem {
    /// What happened.
    pub incident: IncidentInfo,
    /// Whether every run of the incident was a drill.
    pub drill: bool,
    /// The key times.
    pub times: KeyTimes,
    /// The durations that matter.
    pub durations: Durations,
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

/// Key times (RFC 3339 UTC), each absent when the record does not say.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeyTimes {
    /// The alert's own start.
    pub started: Option<String>,
    /// Detection.
    pub detected: Option<String>,
    /// First step started.
    pub first_action: Option<String>,
    /// First note.
    pub first_note: Option<String>,
    /// Mitigation.
    pub mitigated: Option<String>,
    /// Resolution.
    pub resolved: Option<String>,
}

/// A duration, both exact and for people.
#[derive(Clone, Debug, Serialize)]
pub struct Span {
    /// Whole seconds (negative if the record's times are out of order).
    pub seconds: i64,
    /// `4m30s`, `1h02m`.
    pub text: String,
}

/// The durations that matter.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Durations {
    /// MTTD: detected − started.
    pub time_to_detect: Option<Span>,
    /// MTTR: resolved − started.
    pub time_to_resolve: Option<Span>,
    /// First action − detected.
    pub time_to_first_action: Option<Span>,
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

/// Builds the postmortem of `incident` (its id or file-safe form), generated now by `clock`.
pub fn build(
    store: &Store,
    incident: &str,
    clock: Clock,
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
    let (times, durations) = measure(&entries);
    let mut incident = incident_info(&id, &entries);
    incident.status = if times.resolved.is_some() {
        "resolved".into()
    } else {
        "ongoing".into()
    };
    let pm = Postmortem {
        incident,
        drill: !runs.is_empty() && runs.iter().all(|r| r.summary.drill),
        times,
        durations,
        timeline: entries.iter().map(line).collect(),
        runs: runs.iter().map(|r| run_report(r)).collect(),
        playbooks: playbook_versions(&runs),
        notes: entries
            .iter()
            .filter(|e| matches!(e.event.payload, Payload::Note(_)))
            .map(line)
            .collect(),
        resolution: entries
            .iter()
            .rev()
            .find_map(|e| match &e.event.payload {
                Payload::Resolved(r) => Some(r.summary.clone().unwrap_or_default()),
                _ => None,
            })
            .filter(|s| !s.is_empty()),
        integrity: integrity(store, &runs, &id),
        generated_at: show_time(clock.now()),
    };
    Ok((pm, warnings))
}

/// The key times and durations of an incident's merged events.
pub fn measure(entries: &[Entry]) -> (KeyTimes, Durations) {
    let first = |is: fn(&Payload) -> bool| {
        entries
            .iter()
            .find(|e| is(&e.event.payload))
            .map(|e| e.time)
    };
    let started = entries.iter().flat_map(|e| alert_starts(&e.event)).min();
    let detected = first(|p| matches!(p, Payload::Detected(_)))
        .or_else(|| first(|p| matches!(p, Payload::RunStarted(_))));
    let first_action = first(|p| matches!(p, Payload::StepStarted(_)));
    let first_note = first(|p| matches!(p, Payload::Note(_)));
    let mitigated = first(|p| matches!(p, Payload::Note(n) if n.mitigated == Some(true)));
    let resolved = entries
        .iter()
        .rev()
        .find(|e| matches!(e.event.payload, Payload::Resolved(_)))
        .map(|e| e.time);
    let times = KeyTimes {
        started: started.map(show_time),
        detected: detected.map(show_time),
        first_action: first_action.map(show_time),
        first_note: first_note.map(show_time),
        mitigated: mitigated.map(show_time),
        resolved: resolved.map(show_time),
    };
    let durations = Durations {
        time_to_detect: span(started, detected),
        time_to_resolve: span(started, resolved),
        time_to_first_action: span(detected, first_action),
    };
    (times, durations)
}

/// `to − from`, when both are known and in that order: times in an
/// impossible order (a resolution typed before the alert started) make no
/// duration, never a negative one.
pub fn span(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<Span> {
    let seconds = (to? - from?).num_seconds();
    if seconds < 0 {
        return None;
    }
    Some(Span {
        seconds,
        text: crate::duration::format_seconds(seconds),
    })
}

/// The incident a run's start or a detection recorded (what a resolution
/// read from a payload says is left out: it describes the end).
fn started_or_detected(e: &Event) -> Option<RecordedIncident> {
    match &e.payload {
        Payload::RunStarted(_) | Payload::Detected(_) => e.payload.recorded_incident(),
        _ => None,
    }
}

/// The alert start times an event knows: a run's incident (and its alerts),
/// or a detection's payload.
fn alert_starts(e: &Event) -> Vec<DateTime<Utc>> {
    let Some(i) = started_or_detected(e) else {
        return Vec::new();
    };
    std::iter::once(&i.started_at)
        .chain(i.alerts.iter().map(|a| &a.starts_at))
        .filter_map(|t| t.as_deref().and_then(parse_time))
        .collect()
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

fn integrity(store: &Store, runs: &[&super::Run], id: &str) -> Vec<Integrity> {
    let mut out: Vec<Integrity> = runs
        .iter()
        .map(|r| check(&format!("run {}", r.summary.run_id), &r.summary.timeline))
        .collect();
    let log = incident_log::path(&store.dir, id);
    if log.exists() {
        out.push(check("incident log", &log));
    }
    out
}

fn check(record: &str, path: &std::path::Path) -> Integrity {
    match verify::verify(path) {
        Ok(r) => Integrity {
            record: record.to_string(),
            ok: r.ok(),
            message: match &r.problem {
                Some(p) => p.message.clone(),
                None => format!("{} events, chain intact", r.events),
            },
        },
        Err(e) => Integrity {
            record: record.to_string(),
            ok: false,
            message: format!("{e:#}"),
        },
    }
}

/// A Markdown table cell: pipes escaped, line breaks flattened (the
/// templates' `cell` filter, and `irctl timeline --format markdown`).
pub fn cell(value: String) -> String {
    value.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The largest template file read: a template is a page of Markdown.
const TEMPLATE_CAP: u64 = 1024 * 1024;

/// The template a postmortem is rendered with: the built-in one, or a team's own file.
#[derive(Clone, Debug)]
pub struct Template {
    text: String,
    name: String,
}

impl Template {
    /// The team's template at `path`, else the built-in [`DEFAULT_TEMPLATE`].
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Template> {
        use anyhow::Context as _;
        Ok(match path {
            Some(path) => Template {
                text: crate::capped::read_to_string(path, TEMPLATE_CAP)
                    .with_context(|| format!("cannot read template `{}`", path.display()))?,
                name: path.display().to_string(),
            },
            None => Template {
                text: DEFAULT_TEMPLATE.to_string(),
                name: "postmortem.md".to_string(),
            },
        })
    }

    /// `pm` as this template renders it.
    pub fn render(&self, pm: &Postmortem) -> anyhow::Result<String> {
        render(pm, &self.text, &self.name)
    }
}

/// `pm` as pretty JSON with a final line break: the data every template sees.
pub fn to_json(pm: &Postmortem) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(pm)? + "\n")
}

/// Renders `pm` with `template` (the built-in one, or a team's own); `name`
/// names the template in errors.
pub fn render(pm: &Postmortem, template: &str, name: &str) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| anyhow::anyhow!("template syntax: {e}"))?,
    );
    // A template is a team's file, but a loop must not hang a responder.
    env.set_fuel(Some(50_000_000));
    env.add_filter("cell", cell);
    env.add_template(name, template)
        .map_err(|e| anyhow::anyhow!("invalid template `{name}`: {}", template_error(&e)))?;
    let tmpl = env
        .get_template(name)
        .map_err(|e| anyhow::anyhow!("invalid template `{name}`: {}", template_error(&e)))?;
    tmpl.render(crate::template::value(pm))
        .map_err(|e| anyhow::anyhow!("cannot render template `{name}`: {}", template_error(&e)))
}

fn template_error(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "line {line}: {}",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e.to_string(),
    }
}
