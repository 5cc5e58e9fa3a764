//! Who owned an incident when, and its hand-offs, read from the record.
//!
//! The first owner is the owner of the first playbook that ran for it
//! (`run_started`'s `owner`). A `handoff` event only offers the incident to
//! a team; ownership moves when that team accepts (`handoff_accepted`).
//! A hand-off is open until accepted or until a later hand-off replaces it:
//! only the latest hand-off of an incident can be accepted or reminded.
//! Impact notices (`impact_notice`) list the teams told that the incident
//! affects their services, and those that could not be told.

use serde::Serialize;

use super::{Entry, show_time};
use crate::timeline::{Event, Handoff, Payload};

/// One owner and since when.
#[derive(Clone, Debug, Serialize)]
pub struct OwnerSpan {
    /// The owning team.
    pub team: String,
    /// Since when (RFC 3339 UTC).
    pub since: String,
    /// How it became the owner: `playbook <name>`, or `hand-off accepted by <who>`.
    pub how: String,
}

/// One hand-off and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct HandoffRow {
    /// The receiving team.
    pub to: String,
    /// Who handed it off.
    pub by: String,
    /// When it was sent (RFC 3339 UTC).
    pub sent: String,
    /// `accepted`, `open`, or `replaced` by a later hand-off.
    pub status: String,
    /// When it was accepted.
    pub accepted: Option<String>,
    /// Who accepted it.
    pub accepted_by: Option<String>,
    /// How long acceptance took (`4m 10s`).
    pub took: Option<String>,
    /// Reminders sent while it waited.
    pub reminders: u32,
    /// Whether the team's pagers were paged.
    pub escalated: bool,
}

/// One impact notice: which team was told, about what, and how.
#[derive(Clone, Debug, Serialize)]
pub struct NoticeRow {
    /// The impacted team.
    pub team: String,
    /// Its impacted services.
    pub services: Vec<String>,
    /// When (RFC 3339 UTC).
    pub sent: String,
    /// The channels it went to; empty when none could be used.
    pub via: Vec<String>,
    /// Channels (or the team) left out, and why.
    pub skipped: Vec<String>,
    /// The playbook that sent it.
    pub playbook: String,
    /// Its run.
    pub run: String,
}

/// Owners over time and the hand-offs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ownership {
    /// Owners, in time order.
    pub owners: Vec<OwnerSpan>,
    /// Hand-offs, in time order.
    pub handoffs: Vec<HandoffRow>,
    /// Impact notices, in time order.
    pub impact_notices: Vec<NoticeRow>,
}

/// The open hand-off of an incident log's events: the latest `handoff`,
/// unless it was accepted.
pub fn open_handoff(events: &[Event]) -> Option<(&Event, &Handoff)> {
    let (event, handoff) = events.iter().rev().find_map(|e| match &e.payload {
        Payload::Handoff(h) => Some((e, h)),
        _ => None,
    })?;
    let accepted = events
        .iter()
        .any(|e| matches!(&e.payload, Payload::HandoffAccepted(a) if a.handoff == event.seq));
    (!accepted).then_some((event, handoff))
}

/// Who owned the incident when, and its hand-offs, from its merged entries.
pub fn ownership(entries: &[Entry]) -> Ownership {
    let mut out = Ownership::default();
    let latest_handoff = entries
        .iter()
        .rev()
        .find(|e| matches!(e.event.payload, Payload::Handoff(_)))
        .map(|e| e.event.seq);
    for e in entries {
        match &e.event.payload {
            Payload::RunStarted(p) if out.owners.is_empty() => {
                if let Some(owner) = p.owner.as_deref().filter(|o| !o.is_empty()) {
                    out.owners.push(OwnerSpan {
                        team: owner.to_string(),
                        since: show_time(e.time),
                        how: format!("playbook {}", p.playbook),
                    });
                }
            }
            Payload::Handoff(h) => out.handoffs.push(HandoffRow {
                to: h.to.clone(),
                by: h.by.clone(),
                sent: show_time(e.time),
                status: if Some(e.event.seq) == latest_handoff {
                    "open".into()
                } else {
                    "replaced".into()
                },
                accepted: None,
                accepted_by: None,
                took: None,
                reminders: 0,
                escalated: false,
            }),
            Payload::HandoffAccepted(a) => {
                if let Some(row) = row_of(&mut out.handoffs, entries, a.handoff) {
                    row.status = "accepted".into();
                    row.accepted = Some(show_time(e.time));
                    row.accepted_by = Some(a.by.clone());
                    row.took = Some(crate::duration::format(std::time::Duration::from_millis(
                        a.latency_ms,
                    )));
                }
                out.owners.push(OwnerSpan {
                    team: a.team.clone(),
                    since: show_time(e.time),
                    how: match &a.via {
                        Some(via) => format!("hand-off accepted by {} (via {via})", a.by),
                        None => format!("hand-off accepted by {}", a.by),
                    },
                });
            }
            Payload::HandoffReminded(r) => {
                if let Some(row) = row_of(&mut out.handoffs, entries, r.handoff) {
                    if r.escalated {
                        row.escalated = true;
                    } else {
                        row.reminders += 1;
                    }
                }
            }
            Payload::ImpactNotice(n) => out.impact_notices.push(NoticeRow {
                team: n.team.clone(),
                services: n.services.clone(),
                sent: show_time(e.time),
                via: n.sent.clone(),
                skipped: n.skipped.clone(),
                playbook: n.playbook.clone(),
                run: n.run.clone(),
            }),
            _ => {}
        }
    }
    out
}

/// The row of the hand-off whose incident-log event is `seq`.
fn row_of<'a>(
    rows: &'a mut [HandoffRow],
    entries: &[Entry],
    seq: u64,
) -> Option<&'a mut HandoffRow> {
    let index = entries
        .iter()
        .filter(|e| matches!(e.event.payload, Payload::Handoff(_)))
        .position(|e| e.event.seq == seq && e.event.run_id.as_str().is_empty())?;
    rows.get_mut(index)
}
