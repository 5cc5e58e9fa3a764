//! `irctl ingest` (and `irctl run` given a resolved or acknowledged
//! payload): what an alert payload adds to an incident's record outside any
//! run — a detection when it fires, an acknowledgement when someone takes
//! it, a resolution when it resolves — in the [`episode`] it belongs to,
//! and the rule that only a change of state is recorded.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::episode::{self, Episode};
use super::incident_log::{self, Appended};
use crate::clock::Clock;
use crate::incident::{Incident, Status};
use crate::secret::Redactor;
use crate::timeline::{Acknowledged, Detected, Event, Payload, Resolved, stamp};

/// What a payload says about its incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// It fired (or triggered): the only phase that starts playbooks.
    Firing,
    /// Someone took it in the sender (PagerDuty's `incident.acknowledged`,
    /// an Events API `acknowledge`).
    Acknowledged,
    /// It is over.
    Resolved,
}

impl Phase {
    /// The word people read (`firing`, `acknowledged`, `resolved`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Firing => "firing",
            Phase::Acknowledged => "acknowledged",
            Phase::Resolved => "resolved",
        }
    }
}

/// The phase of `incident`: each format's parser (and a mapping) says
/// whether the sender reported an acknowledgement, which the normalised
/// status counts as firing (it is still ongoing).
pub fn phase(incident: &Incident) -> Phase {
    if incident.status == Status::Resolved {
        Phase::Resolved
    } else if incident.acknowledged {
        Phase::Acknowledged
    } else {
        Phase::Firing
    }
}

/// What [`ingest`] recorded, or found already recorded.
#[derive(Debug)]
pub struct Ingested {
    /// The episode the payload belongs to; its `id` is the incident id recorded.
    pub episode: Episode,
    /// What the payload said.
    pub phase: Phase,
    /// The event type for this state (`detected`, `acknowledged` or `resolved`).
    pub kind: String,
    /// The same, for people (`detection`, `acknowledgement` or `resolution`).
    pub verb: &'static str,
    /// When it happened, as recorded.
    pub when: DateTime<Utc>,
    /// Set when the log already held this state: the event that recorded it,
    /// and nothing was appended.
    pub already: Option<Event>,
}

/// Appends `incident`'s detection (firing), acknowledgement or resolution
/// to the log of the episode it belongs to, by `by`, unless the log's
/// latest state is already this one. A firing payload after a resolution
/// opens the next episode, unless it is a late copy of the resolved one
/// (its alerts started before the resolution): that records nothing. The time is `at`, else the payload's start (firing)
/// or end (resolved), else now by `clock`. Every string is redacted by `redactor`, which must
/// know the payload's own credentials. `incident.id` is the sender's key;
/// the episode's id is returned in [`Ingested::episode`].
pub fn ingest(
    state_dir: &Path,
    incident: &Incident,
    at: Option<DateTime<Utc>>,
    by: &str,
    clock: Clock,
    redactor: Redactor,
) -> anyhow::Result<Ingested> {
    let phase = phase(incident);
    let (episode, _key_lock) = if phase == Phase::Firing {
        match episode::assign_firing(state_dir, &incident.id, incident.newest_firing_start())? {
            (episode::Firing::In(e), lock) => (e, lock),
            // A late copy of a resolved incident: its resolution stands.
            (episode::Firing::Late(e), _lock) => return late_copy(state_dir, e),
        }
    } else {
        episode::assign(state_dir, &incident.id, false)?
    };
    let mut value = incident.to_template_value();
    if let Some(map) = value.as_object_mut() {
        // The normalised fields are the record; the raw payload is the sender's.
        map.remove("raw");
        map.insert("id".into(), episode.id.clone().into());
    }
    let when = match phase {
        Phase::Resolved => at.or(incident.ended_at).unwrap_or_else(|| clock.now()),
        // The payload's own start, like a resolution's end: detection and
        // resolution then come from the same clock, the sender's.
        Phase::Firing => at.or(incident.started_at).unwrap_or_else(|| clock.now()),
        Phase::Acknowledged => at.unwrap_or_else(|| clock.now()),
    };
    let by = by.to_string();
    let (payload, verb): (Payload, _) = match phase {
        Phase::Firing => (
            Detected {
                at: stamp(when),
                by,
                source: incident.source.clone(),
                title: incident.title.clone(),
                severity: incident.severity.as_str().to_string(),
                incident: value,
            }
            .into(),
            "detection",
        ),
        Phase::Acknowledged => (
            Acknowledged {
                at: stamp(when),
                by,
                source: incident.source.clone(),
                title: incident.title.clone(),
            }
            .into(),
            "acknowledgement",
        ),
        Phase::Resolved => (
            Resolved {
                at: stamp(when),
                by,
                source: incident.source.clone(),
                summary: None,
                title: Some(incident.title.clone()),
                severity: Some(incident.severity.as_str().to_string()),
                incident: Some(value),
            }
            .into(),
            "resolution",
        ),
    };
    let kind = payload.kind().to_string();
    // Alertmanager re-sends a firing group every `repeat_interval`, and a
    // webhook may deliver twice (even at once): only a change of state is
    // recorded, so the first detection (or resolution) keeps its time.
    let same_state = |events: &[Event]| {
        let state = |p: &Payload| match phase {
            Phase::Acknowledged => matches!(
                p,
                Payload::Detected(_) | Payload::Resolved(_) | Payload::Acknowledged(_)
            ),
            _ => matches!(p, Payload::Detected(_) | Payload::Resolved(_)),
        };
        events
            .iter()
            .rev()
            .find(|e| state(&e.payload))
            .filter(|e| e.kind() == kind)
            .cloned()
    };
    let appended =
        incident_log::append_unless(state_dir, &episode.id, "", payload, redactor, same_state)?;
    Ok(Ingested {
        episode,
        phase,
        kind: kind.clone(),
        verb,
        when,
        already: match appended {
            Appended::Already(last) => Some(last),
            Appended::New(_) => None,
        },
    })
}

/// What ingesting a late firing copy of a resolved `episode` finds: its
/// resolution, which stands, and nothing appended.
fn late_copy(state_dir: &Path, episode: Episode) -> anyhow::Result<Ingested> {
    let log = incident_log::read(state_dir, &episode.id)?;
    let resolution = log
        .events
        .iter()
        .rev()
        .find(|e| matches!(e.payload, Payload::Resolved(_)))
        .cloned();
    Ok(Ingested {
        when: episode.resolved_at.unwrap_or_default(),
        episode,
        phase: Phase::Firing,
        kind: "resolved".into(),
        verb: "resolution",
        already: resolution,
    })
}
