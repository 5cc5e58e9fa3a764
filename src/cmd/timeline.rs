//! `irctl timeline`: a run's events, or an incident's merged with its notes,
//! as a table, JSON, Markdown or a self-contained HTML page; and `irctl timeline verify`, which checks
//! the hash chains. [`irctl::record::view`] chooses the events and the
//! records; this prints them.

use super::EXIT_FAILED;
use super::context::Context;
use crate::cli::{TimelineArgs, TimelineCommand, TimelineFormat, VerifyArgs};
use irctl::record::verify::{Break, Report};
use irctl::record::view::{self, Query};
use irctl::record::{Scope, verify};
use irctl::timeline::Scheme;
use irctl::timeline::chain::{self, KEY_SECRET};

/// The longest details a table cell shows.
const DETAILS_WIDTH: usize = 100;

/// Runs `timeline`.
pub fn run(args: TimelineArgs, ctx: &Context) -> anyhow::Result<u8> {
    if let Some(TimelineCommand::Verify(v)) = args.command {
        return verify_cmd(v, ctx);
    }
    let ui = &ctx.ui;
    let incident = incident_id(&args.incident, ctx)?;
    let query = query(&args.run_id, &incident);
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
        TimelineFormat::Html => {
            let title = match (&args.run_id, &incident) {
                (Some(run), _) => format!("Timeline of run {run}"),
                (None, Some(incident)) => format!("Timeline of incident {incident}"),
                (None, None) => "Timeline".to_string(),
            };
            let page = irctl::record::diagram::timeline_page(&title, &view.entries, view.merged);
            // Redacted text by text before it is escaped, so a secret
            // with `&` or `<` in it is still found.
            ui.out(&page.render(&|s: &str| out.redact(s)))?;
        }
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

/// The exact id of the incident `--incident` names (it may be a short id).
fn incident_id(incident: &Option<String>, ctx: &Context) -> anyhow::Result<Option<String>> {
    incident
        .as_deref()
        .map(|query| ctx.incident_id(query, false))
        .transpose()
}

fn verify_cmd(args: VerifyArgs, ctx: &Context) -> anyhow::Result<u8> {
    let incident = incident_id(&args.incident, ctx)?;
    let query = query(&args.run_id, &incident);
    let store = ctx.open_store(scope(query))?;
    let Some(query) = query else {
        anyhow::bail!("name a run (`irctl timeline verify RUN_ID`) or `--incident ID`");
    };
    let key = ctx.timeline_key()?;
    let targets = view::verify_targets(&store, query)?;
    let out = ctx.out();
    let mut failed = false;
    for target in targets {
        let what = &target.what;
        let report = verify::verify_with(&target.path, key.as_ref())?;
        if report.torn_tail {
            ctx.ui.warn(&format!(
                "{what}: the last line is torn (the writer was killed mid-write); it is not part of the chain"
            ));
        }
        let verdict = judge(
            &report,
            target.finishes,
            key.is_some(),
            args.expect.as_deref(),
        );
        out.line(&format!("{what}: {}", verdict.line))?;
        if verdict.expected_elsewhere {
            // Say how far the copy does reach: the events up to it are as they were.
            if let Some(seq) = seq_with_hash(&target.path, args.expect.as_deref())? {
                out.line(&format!(
                    "{what}: the expected hash is the chain's hash after event seq {seq}: the events up to it are as they were when it was copied, the ones after it are not covered by it"
                ))?;
            }
        }
        if let Some(note) = verdict.note {
            ctx.ui.errln(&format!("note: {what}: {note}"));
        }
        failed |= verdict.failed;
    }
    Ok(if failed { EXIT_FAILED } else { 0 })
}

/// What `verify` says about one record.
struct Verdict {
    /// The line on stdout, after the record's name.
    line: String,
    /// A note on stderr: how far an intact chain can be trusted.
    note: Option<String>,
    failed: bool,
    /// `--expect` was given and the final hash is not it.
    expected_elsewhere: bool,
}

/// Judges a verified record: broken, incomplete, intact and how anchored.
/// `finishes`: the record is a run's (an incident log never finishes);
/// `key_set`: a timeline key was given.
fn judge(report: &Report, finishes: bool, key_set: bool, expect: Option<&str>) -> Verdict {
    let n = report.events;
    let fail = |line: String| Verdict {
        line,
        note: None,
        failed: true,
        expected_elsewhere: false,
    };
    if let Some(p) = &report.problem {
        return fail(match p.kind {
            Break::Unchecked => format!("cannot verify: {}", p.message),
            _ => format!("chain broken: {}", p.message),
        });
    }
    if finishes && !report.finished {
        return fail(format!(
            "incomplete: {n} events chain correctly, but there is no `run_finished` after the last start: the run is still running, was killed, or its end was cut off"
        ));
    }
    let head = chain::display(&report.head);
    let keyed = report.scheme == Some(Scheme::Keyed);
    if let Some(expect) = expect {
        if !chain::matches(&report.head, expect) {
            return Verdict {
                expected_elsewhere: true,
                ..fail(format!(
                    "chain intact, {n} events, but its final hash {head} is not the expected `{}`: the timeline was rewritten, or events were added or removed since the hash was copied",
                    expect.trim()
                ))
            };
        }
        return Verdict {
            line: format!("chain intact, {n} events, final hash {head} as expected"),
            note: None,
            failed: false,
            expected_elsewhere: false,
        };
    }
    if keyed {
        return Verdict {
            line: format!(
                "chain intact, {n} events, keyed and checked with the timeline key (final hash {head})"
            ),
            note: None,
            failed: false,
            expected_elsewhere: false,
        };
    }
    // Incident logs are never keyed: only a run's timeline can be downgraded.
    if key_set && finishes && n > 0 {
        return fail(format!(
            "chain intact, {n} events, but not keyed although a timeline key is set: it was written without the key, or rewritten by someone without it"
        ));
    }
    Verdict {
        line: format!("chain intact, {n} events"),
        note: (n > 0).then(|| {
            format!(
                "intact, but not anchored: the chain is not keyed, so anyone who can write the state directory could have rewritten it; compare its final hash {head} with a copy (`--expect HASH`), or set a timeline key (`{KEY_SECRET}`)"
            )
        }),
        failed: false,
        expected_elsewhere: false,
    }
}

/// The `seq` of the event whose hash `expect` names, if any.
fn seq_with_hash(path: &std::path::Path, expect: Option<&str>) -> anyhow::Result<Option<u64>> {
    let Some(expect) = expect else {
        return Ok(None);
    };
    Ok(irctl::timeline::read(path)?
        .events
        .iter()
        .find(|e| chain::matches(&e.hash, expect))
        .map(|e| e.seq))
}
