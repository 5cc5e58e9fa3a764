//! What `irctl timeline` shows and what `irctl timeline verify` checks: one
//! run's events (with the notes written about it), or an incident's runs
//! and log merged in time order; the lines in the precision a run needs;
//! and the Markdown table, a data format that lives here beside the
//! postmortem's. The terminal table is the CLI's, through its `Ui`.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::postmortem::{Line, cell, line};
use super::{Entry, Store, event_time, incident_log, merged};

/// Which record to show or verify.
#[derive(Clone, Copy, Debug)]
pub enum Query<'a> {
    /// One run, by id.
    Run(&'a str),
    /// Every run of an incident, and its log (id or file-safe form).
    Incident(&'a str),
}

impl Query<'_> {
    /// Whether this shows several records merged (an incident), so each
    /// line must say which run it came from.
    pub fn is_merged(&self) -> bool {
        matches!(self, Query::Incident(_))
    }
}

/// The entries of one timeline view.
#[derive(Debug)]
pub struct View {
    /// The events, in time order.
    pub entries: Vec<Entry>,
    /// Whether several records were merged (see [`Query::is_merged`]).
    pub merged: bool,
    /// What the readers skipped, for the CLI to print.
    pub warnings: Vec<String>,
    /// Why an incident's view is empty, for [`View::found`].
    not_found: Option<String>,
}

impl View {
    /// The view, or an error when an incident has no runs or notes. Apart
    /// from [`entries`] so the readers' warnings, which may explain the
    /// empty record, can be shown first.
    pub fn found(self) -> anyhow::Result<View> {
        match self.not_found {
            Some(why) => Err(anyhow::anyhow!(why)),
            None => Ok(self),
        }
    }
}

/// The events `query` names (see [`View::found`]). A run's view includes the notes written with
/// `irctl note --run`: they belong with the run they describe.
pub fn entries(store: &Store, query: Query<'_>) -> anyhow::Result<View> {
    match query {
        Query::Run(run_id) => {
            let run = store.run(run_id)?;
            let log = incident_log::read(&store.dir, &run.summary.incident_id)?;
            let mut entries: Vec<Entry> = run
                .events
                .iter()
                .chain(log.events.iter().filter(|e| e.run_id == *run_id))
                .map(|e| Entry {
                    time: event_time(e).unwrap_or_default(),
                    event: e.clone(),
                })
                .collect();
            entries.sort_by_key(|e| e.time);
            Ok(View {
                entries,
                merged: false,
                warnings: log.warnings,
                not_found: None,
            })
        }
        Query::Incident(incident) => {
            let id = store.canonical_incident_id(incident);
            let (entries, warnings) = merged(store, &id)?;
            let not_found = entries.is_empty().then(|| {
                format!(
                    "no runs or notes for incident `{incident}` in `{}`; `irctl runs` lists incidents",
                    store.dir.display()
                )
            });
            Ok(View {
                entries,
                merged: true,
                warnings,
                not_found,
            })
        }
    }
}

/// A timeline line with milliseconds: a run's events are often within one second.
pub fn precise(e: &Entry) -> Line {
    let mut l = line(e);
    l.time = crate::timeline::stamp(e.time);
    l
}

/// The view as a Markdown table (no trailing line break); a merged view
/// has a `Run` column.
pub fn markdown(view: &View) -> String {
    let mut text = String::new();
    if view.merged {
        text.push_str(
            "| Time (UTC) | Run | Event | Step | Details |\n| --- | --- | --- | --- | --- |\n",
        );
    } else {
        text.push_str("| Time (UTC) | Event | Step | Details |\n| --- | --- | --- | --- |\n");
    }
    for e in &view.entries {
        let l = precise(e);
        let run = if view.merged {
            format!(" {} |", l.run)
        } else {
            String::new()
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "| {} |{run} {} | {} | {} |",
            l.time,
            l.kind,
            cell(l.step),
            cell(l.text)
        );
    }
    text.trim_end().to_string()
}

/// One record whose hash chain `irctl timeline verify` checks.
#[derive(Clone, Debug)]
pub struct Target {
    /// How the output names it (`run ID`, ``incident log of `ID` ``).
    pub what: String,
    /// The chained file.
    pub path: PathBuf,
    /// Whether the record ends with a `run_finished` when complete (a run's
    /// timeline does; an incident log never finishes).
    pub finishes: bool,
}

/// The records `query` names: a run's timeline, or every run of an
/// incident and its log; an error when an incident has none.
pub fn verify_targets(store: &Store, query: Query<'_>) -> anyhow::Result<Vec<Target>> {
    let run_target = |run: &super::Run| Target {
        what: format!("run {}", run.summary.run_id),
        path: run.summary.timeline.clone(),
        finishes: true,
    };
    match query {
        Query::Run(run_id) => Ok(vec![run_target(store.run(run_id)?)]),
        Query::Incident(incident) => {
            let id = store.canonical_incident_id(incident);
            let mut targets: Vec<Target> = store.incident_runs(&id).map(run_target).collect();
            let log = incident_log::path(&store.dir, &id);
            if log.exists() {
                targets.push(Target {
                    what: format!("incident log of `{id}`"),
                    path: log,
                    finishes: false,
                });
            }
            if targets.is_empty() {
                anyhow::bail!(
                    "no runs or notes for incident `{incident}` in `{}`",
                    store.dir.display()
                );
            }
            Ok(targets)
        }
    }
}
