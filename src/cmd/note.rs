//! `irctl note`, `irctl resolve` and `irctl ingest`: what people and alert
//! payloads add to an incident's record, outside any run. Each appends one
//! chained, redacted event to the incident log (see `record::incident_log`).

use crate::cli::{IncidentArgs, IngestArgs, NoteArgs, ResolveArgs};
use crate::cmd::read_incident;
use crate::cmd::record::{Out, at, author, open, state_dir};
use crate::ui::Ui;
use irctl::incident::Status;
use irctl::record::incident_log::{self, Appended};
use irctl::record::{self, Scope};
use irctl::secret::Redactor;
use irctl::timeline::{Detected, Event, Note, Payload, Resolved, stamp};

/// Runs `note`.
pub fn note(args: NoteArgs, ui: &Ui) -> anyhow::Result<u8> {
    if args.text.trim().is_empty() {
        anyhow::bail!("the note is empty; write what you saw or did");
    }
    let when = at(&args.at)?.unwrap_or_else(record::now);
    let scope = match (&args.run, &args.incident) {
        (Some(run), _) => Scope::Run(run),
        (None, Some(incident)) => Scope::Incident(incident),
        (None, None) => Scope::All,
    };
    let store = open(&args.state, scope, ui)?;
    let (incident_id, run_id) = match (&args.run, &args.incident) {
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
        (None, Some(query)) => (known_incident(&store, query, ui), String::new()),
        (None, None) => {
            anyhow::bail!("name the incident (`--incident ID`) or the run (`--run RUN_ID`)")
        }
    };
    let note = Note {
        author: author(&args.author),
        text: args.text.clone(),
        at: stamp(when),
        mitigated: args.mitigated.then_some(true),
    };
    let event = incident_log::append(
        &store.dir,
        &incident_id,
        &run_id,
        note,
        record::env_redactor(),
    )?;
    Out::new(ui).line(&format!(
        "noted on incident {incident_id} at {} (event {})",
        record::show_time(when),
        event.seq
    ))?;
    Ok(0)
}

/// The incident's recorded id; warns when nothing is known of it yet, since
/// a typo would otherwise start a stray record silently.
fn known_incident(store: &record::Store, query: &str, ui: &Ui) -> String {
    let id = store.canonical_incident_id(query);
    let logged = incident_log::path(&store.dir, &id).exists();
    if store.incident_runs(&id).next().is_none() && !logged {
        ui.warn(&format!(
            "no runs or notes for incident `{query}` yet; starting its record (`irctl runs` lists known incidents)"
        ));
    }
    id
}

/// Runs `resolve`.
pub fn resolve(args: ResolveArgs, ui: &Ui) -> anyhow::Result<u8> {
    let when = at(&args.at)?.unwrap_or_else(record::now);
    let store = open(&args.state, Scope::Incident(&args.incident), ui)?;
    let incident_id = known_incident(&store, &args.incident, ui);
    let resolved = Resolved {
        at: stamp(when),
        by: author(&args.author),
        source: "irctl resolve".into(),
        summary: args.summary.clone(),
        title: None,
        severity: None,
        incident: None,
    };
    incident_log::append(
        &store.dir,
        &incident_id,
        "",
        resolved,
        record::env_redactor(),
    )?;
    Out::new(ui).line(&format!(
        "resolved incident {incident_id} at {}",
        record::show_time(when)
    ))?;
    Ok(0)
}

/// Runs `ingest`.
pub fn ingest(args: IngestArgs, ui: &Ui) -> anyhow::Result<u8> {
    let given = at(&args.at)?;
    let incident = read_incident(&IncidentArgs {
        incident: Some(args.incident.clone()),
        incident_format: args.incident_format.clone(),
        labels: Vec::new(),
        title: None,
        severity: None,
    })?;
    let dir = state_dir(&args.state);
    // The payload may carry credentials (PagerDuty routing keys): redact
    // them with the environment's secrets before anything is written.
    let secrets: Vec<_> = incident
        .credentials()
        .into_iter()
        .chain(record::env_secrets())
        .collect();
    let redactor = Redactor::new(&secrets);
    let mut value = incident.to_template_value();
    if let Some(map) = value.as_object_mut() {
        // The normalised fields are the record; the raw payload is the sender's.
        map.remove("raw");
    }
    let by = irctl::env::actor();
    let (when, verb) = match incident.status {
        Status::Firing => (given.unwrap_or_else(record::now), "detection"),
        Status::Resolved => (
            given.or(incident.ended_at).unwrap_or_else(record::now),
            "resolution",
        ),
    };
    let payload: Payload = match incident.status {
        Status::Firing => Detected {
            at: stamp(when),
            by,
            source: incident.source.clone(),
            title: incident.title.clone(),
            severity: incident.severity.as_str().to_string(),
            incident: value,
        }
        .into(),
        Status::Resolved => Resolved {
            at: stamp(when),
            by,
            source: incident.source.clone(),
            summary: None,
            title: Some(incident.title.clone()),
            severity: Some(incident.severity.as_str().to_string()),
            incident: Some(value),
        }
        .into(),
    };
    let kind = payload.kind().to_string();
    let firing = matches!(payload, Payload::Detected(_));
    // Alertmanager re-sends a firing group every `repeat_interval`, and a
    // webhook may deliver twice (even at once): only a change of state is
    // recorded, so the first detection (or resolution) keeps its time.
    let same_state = |events: &[Event]| {
        events
            .iter()
            .rev()
            .find(|e| matches!(e.payload, Payload::Detected(_) | Payload::Resolved(_)))
            .filter(|e| matches!(e.payload, Payload::Detected(_)) == firing)
            .cloned()
    };
    let appended = incident_log::append_unless(
        &dir,
        &incident.id,
        "",
        payload,
        redactor.clone(),
        same_state,
    )?;
    if let Appended::Already(last) = appended {
        let since = record::event_time(&last)
            .map(record::show_time)
            .unwrap_or_default();
        Out::new(ui).line(&redactor.redact(&format!(
            "incident {} already recorded as {kind} at {since}; nothing recorded, nothing was run",
            incident.id
        )))?;
        return Ok(0);
    }
    Out::new(ui).line(&redactor.redact(&format!(
        "recorded {verb} of incident {} ({}) at {}; nothing was run",
        incident.id,
        incident.title,
        record::show_time(when)
    )))?;
    Ok(0)
}
