//! `irctl timeline`: a run's events, or an incident's merged with its notes,
//! as a table, JSON or Markdown; and `irctl timeline verify`, which checks
//! the hash chains.

use super::EXIT_FAILED;
use super::context::Context;
use crate::cli::{TimelineArgs, TimelineCommand, TimelineFormat, VerifyArgs};
use irctl::record::postmortem::{cell, line};
use irctl::record::{self, Entry, Scope, incident_log, verify};

/// The longest details a table cell shows.
const DETAILS_WIDTH: usize = 100;

/// Runs `timeline`.
pub fn run(args: TimelineArgs, ctx: &Context) -> anyhow::Result<u8> {
    if let Some(TimelineCommand::Verify(v)) = args.command {
        return verify_cmd(v, ctx);
    }
    let ui = &ctx.ui;
    let store = ctx.open_store(scope(&args.run_id, &args.incident))?;
    let entries: Vec<Entry> = match (&args.run_id, &args.incident) {
        (Some(run_id), _) => {
            let run = store.run(run_id)?;
            // Notes written with `irctl note --run` belong with the run they describe.
            let log = incident_log::read(&store.dir, &run.summary.incident_id)?;
            ctx.warn_all(&log.warnings);
            let mut entries: Vec<Entry> = run
                .events
                .iter()
                .chain(log.events.iter().filter(|e| e.run_id == *run_id))
                .map(|e| Entry {
                    time: record::event_time(e).unwrap_or_default(),
                    event: e.clone(),
                })
                .collect();
            entries.sort_by_key(|e| e.time);
            entries
        }
        (None, Some(incident)) => {
            let id = store.canonical_incident_id(incident);
            let (entries, warnings) = record::merged(&store, &id)?;
            ctx.warn_all(&warnings);
            if entries.is_empty() {
                anyhow::bail!(
                    "no runs or notes for incident `{incident}` in `{}`; `irctl runs` lists incidents",
                    store.dir.display()
                );
            }
            entries
        }
        (None, None) => anyhow::bail!("name a run (`irctl timeline RUN_ID`) or `--incident ID`"),
    };
    let out = ctx.out();
    let merged_view = args.incident.is_some();
    match args.format {
        TimelineFormat::Json => {
            let events: Vec<&irctl::timeline::Event> = entries.iter().map(|e| &e.event).collect();
            out.line(&serde_json::to_string_pretty(&events)?)?;
        }
        TimelineFormat::Markdown => {
            let mut text = String::new();
            if merged_view {
                text.push_str("| Time (UTC) | Run | Event | Step | Details |\n| --- | --- | --- | --- | --- |\n");
            } else {
                text.push_str(
                    "| Time (UTC) | Event | Step | Details |\n| --- | --- | --- | --- |\n",
                );
            }
            for e in &entries {
                let l = precise(e);
                if merged_view {
                    text.push_str(&format!(
                        "| {} | {} | {} | {} | {} |\n",
                        l.time,
                        l.run,
                        l.kind,
                        cell(l.step),
                        cell(l.text)
                    ));
                } else {
                    text.push_str(&format!(
                        "| {} | {} | {} | {} |\n",
                        l.time,
                        l.kind,
                        cell(l.step),
                        cell(l.text)
                    ));
                }
            }
            out.line(text.trim_end())?;
        }
        TimelineFormat::Table => {
            let header: &[&str] = if merged_view {
                &["TIME (UTC)", "RUN", "EVENT", "STEP", "DETAILS"]
            } else {
                &["TIME (UTC)", "EVENT", "STEP", "DETAILS"]
            };
            let mut table = ui.table(header);
            for e in &entries {
                let l = precise(e);
                // One line per event: a multi-line note or script must not
                // break the table, nor a long one push it off the screen
                // (`--format json` and `markdown` keep the whole text).
                let mut details = l.text.replace(['\n', '\r'], " ");
                if let Some((cut, _)) = details.char_indices().nth(DETAILS_WIDTH) {
                    details.truncate(cut);
                    details.push('…');
                }
                let mut row = vec![l.time];
                if merged_view {
                    row.push(l.run);
                }
                row.extend([l.kind, l.step, details]);
                table.add_row(row);
            }
            out.line(&table.to_string())?;
        }
    }
    Ok(0)
}

/// A timeline line with milliseconds: a run's events are often within one second.
fn precise(e: &Entry) -> irctl::record::postmortem::Line {
    let mut l = line(e);
    l.time = irctl::timeline::stamp(e.time);
    l
}

/// Read only the run or the incident asked about.
fn scope<'a>(run_id: &'a Option<String>, incident: &'a Option<String>) -> Scope<'a> {
    match (run_id, incident) {
        (Some(run), _) => Scope::Run(run),
        (None, Some(incident)) => Scope::Incident(incident),
        (None, None) => Scope::All,
    }
}

fn verify_cmd(args: VerifyArgs, ctx: &Context) -> anyhow::Result<u8> {
    let store = ctx.open_store(scope(&args.run_id, &args.incident))?;
    let mut targets = Vec::new();
    match (&args.run_id, &args.incident) {
        (Some(run_id), _) => {
            let run = store.run(run_id)?;
            targets.push((format!("run {run_id}"), run.summary.timeline.clone()));
        }
        (None, Some(incident)) => {
            let id = store.canonical_incident_id(incident);
            for run in store.incident_runs(&id) {
                targets.push((
                    format!("run {}", run.summary.run_id),
                    run.summary.timeline.clone(),
                ));
            }
            let log = incident_log::path(&store.dir, &id);
            if log.exists() {
                targets.push((format!("incident log of `{id}`"), log));
            }
            if targets.is_empty() {
                anyhow::bail!(
                    "no runs or notes for incident `{incident}` in `{}`",
                    store.dir.display()
                );
            }
        }
        (None, None) => {
            anyhow::bail!("name a run (`irctl timeline verify RUN_ID`) or `--incident ID`")
        }
    }
    let out = ctx.out();
    let mut broken = false;
    for (what, path) in targets {
        let report = verify::verify(&path)?;
        if report.torn_tail {
            ctx.ui.warn(&format!(
                "{what}: the last line is torn (the writer was killed mid-write); it is not part of the chain"
            ));
        }
        match &report.problem {
            Some(p) => {
                broken = true;
                out.line(&format!("{what}: chain broken: {}", p.message))?;
            }
            None => {
                let unfinished = if report.finished || what.starts_with("incident log") {
                    ""
                } else {
                    " (the run has not finished: it is running, or was killed)"
                };
                out.line(&format!(
                    "{what}: chain intact, {} events{unfinished}",
                    report.events
                ))?;
            }
        }
    }
    Ok(if broken { EXIT_FAILED } else { 0 })
}
