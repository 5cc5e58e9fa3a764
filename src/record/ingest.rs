//! `irctl ingest`: what an alert payload adds to an incident's record
//! outside any run — a detection when it fires, a resolution when it
//! resolves — and the rule that only a change of state is recorded.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::incident_log::{self, Appended};
use crate::clock::Clock;
use crate::incident::{Incident, Status};
use crate::secret::Redactor;
use crate::timeline::{Detected, Event, Payload, Resolved, stamp};

/// What [`ingest`] recorded, or found already recorded.
#[derive(Debug)]
pub struct Ingested {
    /// The event type for this state (`detected` or `resolved`).
    pub kind: String,
    /// The same, for people (`detection` or `resolution`).
    pub verb: &'static str,
    /// When it happened, as recorded.
    pub when: DateTime<Utc>,
    /// Set when the log already held this state: the event that recorded it,
    /// and nothing was appended.
    pub already: Option<Event>,
}

/// Appends `incident`'s detection (firing) or resolution (resolved) to its
/// log, by `by`, unless the log's latest state is already this one. The
/// time is `at`, else the payload's start (firing) or end (resolved), else
/// now by `clock`. Every
/// string is redacted by `redactor`, which must know the payload's own
/// credentials.
pub fn ingest(
    state_dir: &Path,
    incident: &Incident,
    at: Option<DateTime<Utc>>,
    by: &str,
    clock: Clock,
    redactor: Redactor,
) -> anyhow::Result<Ingested> {
    let mut value = incident.to_template_value();
    if let Some(map) = value.as_object_mut() {
        // The normalised fields are the record; the raw payload is the sender's.
        map.remove("raw");
    }
    let (when, verb) = match incident.status {
        // The payload's own start, like a resolution's end below: detection
        // and resolution then come from the same clock, the sender's.
        Status::Firing => (
            at.or(incident.started_at).unwrap_or_else(|| clock.now()),
            "detection",
        ),
        Status::Resolved => (
            at.or(incident.ended_at).unwrap_or_else(|| clock.now()),
            "resolution",
        ),
    };
    let by = by.to_string();
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
    let appended =
        incident_log::append_unless(state_dir, &incident.id, "", payload, redactor, same_state)?;
    Ok(Ingested {
        kind,
        verb,
        when,
        already: match appended {
            Appended::Already(last) => Some(last),
            Appended::New(_) => None,
        },
    })
}
