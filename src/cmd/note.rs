//! `irctl note`, `irctl resolve` and `irctl ingest`: what people and alert
//! payloads add to an incident's record, outside any run. Each appends one
//! chained, redacted event to the incident log (see `record::incident_log`).

use chrono::{DateTime, Utc};

use super::context::{Context, read_incident_file};
use crate::cli::{IngestArgs, NoteArgs, ResolveArgs};
use irctl::clock::Clock;
use irctl::record::{self, Scope, incident_log, ingest};
use irctl::timeline::{Note, Resolved, stamp};

/// Runs `note`.
pub fn note(args: NoteArgs, ctx: &Context) -> anyhow::Result<u8> {
    if args.text.trim().is_empty() {
        anyhow::bail!("the note is empty; write what you saw or did");
    }
    let clock = ctx.clock()?;
    let when = at(&args.at, clock)?.unwrap_or_else(|| clock.now());
    // A typo must not start a stray incident that then shows in `stats`.
    let incident = match (&args.run, &args.incident) {
        (None, Some(query)) => Some(ctx.incident_id(query, !args.create)?),
        _ => None,
    };
    let scope = match (&args.run, &incident) {
        (Some(run), _) => Scope::Run(run),
        (None, Some(incident)) => Scope::Incident(incident),
        (None, None) => Scope::All,
    };
    let store = ctx.open_store(scope)?;
    let (incident_id, run_id) = match (&args.run, &incident) {
        (Some(run_id), _) => {
            let run = store.run(run_id)?;
            if run.summary.incident_id.is_empty() {
                anyhow::bail!(
                    "run `{run_id}` has no readable events in `{}`, so its incident is unknown; note on the incident with `--incident ID`",
                    run.summary.timeline.display()
                );
            }
            (run.summary.incident_id.clone(), run_id.clone())
        }
        (None, Some(id)) => (known_incident(&store, id, ctx), String::new()),
        (None, None) => {
            anyhow::bail!("name the incident (`--incident ID`) or the run (`--run RUN_ID`)")
        }
    };
    let note = Note {
        author: ctx.actor().to_string(),
        text: args.text.clone(),
        at: stamp(when),
        mitigated: args.mitigated.then_some(true),
    };
    let event = incident_log::append(&store.dir, &incident_id, &run_id, note, ctx.redactor())?;
    ctx.out().line(&format!(
        "noted on incident {incident_id} at {} (event {})",
        record::show_time(when),
        event.seq
    ))?;
    Ok(0)
}

/// The incident's recorded id; warns when nothing is known of it yet
/// (`note --create`, `resolve`), since that starts a new record.
fn known_incident(store: &record::Store, query: &str, ctx: &Context) -> String {
    let id = store.canonical_incident_id(query);
    if store.incident_runs(&id).next().is_none() && !incident_log::exists(&store.dir, &id) {
        ctx.ui.warn(&format!(
            "no runs or notes for incident `{query}` yet; starting its record (`irctl runs` lists known incidents)"
        ));
    }
    id
}

/// Runs `resolve`.
pub fn resolve(args: ResolveArgs, ctx: &Context) -> anyhow::Result<u8> {
    let clock = ctx.clock()?;
    let when = at(&args.at, clock)?.unwrap_or_else(|| clock.now());
    let query = ctx.incident_id(&args.incident, false)?;
    let store = ctx.open_store(Scope::Incident(&query))?;
    let incident_id = known_incident(&store, &query, ctx);
    let resolved = Resolved {
        at: stamp(when),
        by: ctx.actor().to_string(),
        source: "irctl resolve".into(),
        summary: args.summary.clone(),
        title: None,
        severity: None,
        incident: None,
    };
    incident_log::append(&store.dir, &incident_id, "", resolved, ctx.redactor())?;
    ctx.out().line(&format!(
        "resolved incident {incident_id} at {}",
        record::show_time(when)
    ))?;
    Ok(0)
}

/// Runs `ingest`.
pub fn ingest(args: IngestArgs, ctx: &Context) -> anyhow::Result<u8> {
    let clock = ctx.clock()?;
    let given = at(&args.at, clock)?;
    let incident = read_incident_file(&args.incident, args.incident_format.as_deref())?;
    let dir = ctx.state_dir();
    let redactor = ctx.payload_redactor(&incident);
    let out = ctx.out_redacting(redactor.clone());
    let done = ingest::ingest(dir, &incident, given, ctx.actor(), clock, redactor)?;
    let id = &done.episode.id;
    if let Some(last) = &done.already {
        let since = record::event_time(last)
            .map(record::show_time)
            .unwrap_or_default();
        out.line(&format!(
            "incident {id} already recorded as {} at {since}; nothing recorded, nothing was run",
            done.kind
        ))?;
        return Ok(0);
    }
    out.line(&format!(
        "recorded {} of incident {id} ({}) at {}; nothing was run",
        done.verb,
        incident.title,
        record::show_time(done.when)
    ))?;
    Ok(0)
}

/// Parses an optional `--at`, as a usage error naming the flag. A time in
/// the future by `clock` (beyond a few minutes of skew) is refused: the log
/// is append-only, so a mistyped year would skew the postmortem and `stats`
/// for good.
fn at(flag: &Option<String>, clock: Clock) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(text) = flag.as_deref() else {
        return Ok(None);
    };
    let t = record::parse_at(text).map_err(|e| anyhow::anyhow!("`--at`: {e}"))?;
    let now = clock.now();
    if t > now + chrono::Duration::minutes(5) {
        anyhow::bail!(
            "`--at {text}` is in the future (now is {}); record what already happened",
            record::show_time(now)
        );
    }
    Ok(Some(t))
}
