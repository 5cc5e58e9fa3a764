//! `irctl timeline`: a run's events, or an incident's merged with its notes,
//! as a table, JSON or Markdown; and `irctl timeline verify`, which checks
//! the hash chains. [`irctl::record::view`] chooses the events and the
//! records; this prints them.

use super::EXIT_FAILED;
use super::context::Context;
use crate::cli::{TimelineArgs, TimelineCommand, TimelineFormat, VerifyArgs};
use irctl::record::view::{self, Query};
use irctl::record::{Scope, verify};

/// The longest details a table cell shows.
const DETAILS_WIDTH: usize = 100;

/// Runs `timeline`.
pub fn run(args: TimelineArgs, ctx: &Context) -> anyhow::Result<u8> {
    if let Some(TimelineCommand::Verify(v)) = args.command {
        return verify_cmd(v, ctx);
    }
    let ui = &ctx.ui;
    let query = query(&args.run_id, &args.incident);
    let store = ctx.open_store(scope(query))?;
    let Some(query) = query else {
        anyhow::bail!("name a run (`irctl timeline RUN_ID`) or `--incident ID`");
    };
    let view = view::entries(&store, query)?;
    ctx.warn_all(&view.warnings);
    let view = view.found()?;
    let out = ctx.out();
    match args.format {
        TimelineFormat::Json => {
            let events: Vec<&irctl::timeline::Event> =
                view.entries.iter().map(|e| &e.event).collect();
            out.json(&serde_json::to_string_pretty(&events)?)?;
        }
        TimelineFormat::Markdown => out.line(&view::markdown(&view))?,
        TimelineFormat::Table => {
            let header: &[&str] = if view.merged {
                &["TIME (UTC)", "RUN", "EVENT", "STEP", "DETAILS"]
            } else {
                &["TIME (UTC)", "EVENT", "STEP", "DETAILS"]
            };
            let mut table = ui.table(header);
            for e in &view.entries {
                let l = view::precise(e);
                // One line per event: a multi-line note or script must not
                // break the table, nor a long one push it off the screen
                // (`--format json` and `markdown` keep the whole text).
                let mut details = l.text.replace(['\n', '\r'], " ");
                if let Some((cut, _)) = details.char_indices().nth(DETAILS_WIDTH) {
                    details.truncate(cut);
                    details.push('…');
                }
                let mut row = vec![l.time];
                if view.merged {
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

/// The record the flags name, if they name one.
fn query<'a>(run_id: &'a Option<String>, incident: &'a Option<String>) -> Option<Query<'a>> {
    match (run_id, incident) {
        (Some(run), _) => Some(Query::Run(run)),
        (None, Some(incident)) => Some(Query::Incident(incident)),
        (None, None) => None,
    }
}

/// Read only the run or the incident asked about.
fn scope(query: Option<Query<'_>>) -> Scope<'_> {
    match query {
        Some(Query::Run(run)) => Scope::Run(run),
        Some(Query::Incident(incident)) => Scope::Incident(incident),
        None => Scope::All,
    }
}

fn verify_cmd(args: VerifyArgs, ctx: &Context) -> anyhow::Result<u8> {
    let query = query(&args.run_id, &args.incident);
    let store = ctx.open_store(scope(query))?;
    let Some(query) = query else {
        anyhow::bail!("name a run (`irctl timeline verify RUN_ID`) or `--incident ID`");
    };
    let targets = view::verify_targets(&store, query)?;
    let out = ctx.out();
    let mut broken = false;
    for target in targets {
        let what = &target.what;
        let report = verify::verify(&target.path)?;
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
                let unfinished = if report.finished || !target.finishes {
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
