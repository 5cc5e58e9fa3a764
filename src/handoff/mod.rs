//! Hand-offs: giving an incident to another team with the whole story.
//!
//! [`packet`] turns the incident's record (through the postmortem's own
//! reading of it: what fired, the runs and their steps, the findings, the
//! notes, the key times) into one Markdown text that says what happened,
//! what is still open and how to continue. The command sends it to the
//! team's channels ([`crate::engine::team::send`]) and records a `handoff`
//! event in the incident log; the team owns the incident only once it
//! accepts (`handoff_accepted`, see [`crate::record::ownership`]).
//! [`reminder_due`] decides, from the log alone, whether an unaccepted
//! hand-off is due to be announced again or escalated, so a cron job can
//! run `irctl handoff remind` as often as it likes. [`accept`] records an
//! acceptance, for `irctl handoff accept` and for the Accept button a
//! Slack channel gets ([`accept_button`], clicked through `irctl serve`).

pub mod packet;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::blocks::{Button, HandoffRef};
use crate::record::ownership::open_handoff;
use crate::record::{incident_log, parse_time};
use crate::secret::Redactor;
use crate::teams::Team;
use crate::timeline::{Event, Handoff, HandoffAccepted, Payload, stamp};

/// How `irctl handoff accept` records an acceptance (`via`).
pub const VIA_CLI: &str = "irctl handoff accept";
/// How a click on the Accept button (through `irctl serve`) records one.
pub const VIA_SLACK: &str = "slack";

/// The Accept button of the hand-off of `incident` to `team` made at `at`.
pub fn accept_button(incident: &str, team: &str, at: &str) -> Button {
    Button::Accept(HandoffRef {
        incident: incident.to_string(),
        team: team.to_string(),
        at: at.to_string(),
    })
}

/// What [`accept`] did.
#[derive(Debug)]
pub enum Acceptance {
    /// Recorded: the team owns the incident now.
    Accepted {
        /// The event written.
        accepted: HandoffAccepted,
        /// From the hand-off to its acceptance.
        latency: Duration,
    },
    /// Someone accepted this hand-off first.
    Already {
        /// Who.
        by: String,
        /// The team.
        team: String,
    },
    /// No hand-off of the incident waits for acceptance (none was named).
    NoneOpen,
    /// The hand-off named is not in the incident's log.
    Unknown,
    /// The hand-off named was followed by another one, which is the one to accept.
    Superseded {
        /// The team the newer hand-off goes to.
        to: String,
    },
}

/// Records that `by` accepts, at `now` and `via` ([`VIA_CLI`],
/// [`VIA_SLACK`]), the open hand-off of incident `incident` — or, when
/// `named` (a button's), exactly that hand-off.
/// Under the log's lock, so two people accepting at once record one
/// acceptance.
pub fn accept(
    state_dir: &Path,
    incident: &str,
    by: &str,
    via: Option<&str>,
    now: DateTime<Utc>,
    redactor: Redactor,
    named: Option<&HandoffRef>,
) -> anyhow::Result<Acceptance> {
    let log = incident_log::read(state_dir, incident)?;
    let (event, handoff) = match named {
        None => match open_handoff(&log.events) {
            Some(found) => found,
            None => return Ok(Acceptance::NoneOpen),
        },
        Some(named) => {
            let handoffs: Vec<(&Event, &Handoff)> = log
                .events
                .iter()
                .filter_map(|e| match &e.payload {
                    Payload::Handoff(h) => Some((e, h)),
                    _ => None,
                })
                .collect();
            let Some(i) = handoffs
                .iter()
                .rposition(|(_, h)| h.to == named.team && h.at == named.at)
            else {
                return Ok(Acceptance::Unknown);
            };
            let (event, handoff) = handoffs[i];
            if let Some(first) = accepted_of(&log.events, event.seq) {
                return Ok(Acceptance::Already {
                    by: first.by.clone(),
                    team: first.team.clone(),
                });
            }
            if let Some((_, newer)) = handoffs.get(i + 1..).and_then(|n| n.last()) {
                return Ok(Acceptance::Superseded {
                    to: newer.to.clone(),
                });
            }
            (event, handoff)
        }
    };
    let latency = parse_time(&handoff.at)
        .and_then(|t| (now - t).to_std().ok())
        .unwrap_or_default();
    let seq = event.seq;
    let accepted = HandoffAccepted {
        at: stamp(now),
        by: by.to_string(),
        team: handoff.to.clone(),
        handoff: seq,
        latency_ms: latency.as_millis() as u64,
        via: via.map(str::to_string),
    };
    let appended = incident_log::append_unless(
        state_dir,
        incident,
        "",
        accepted.clone(),
        redactor,
        |events| {
            events
                .iter()
                .find(|e| matches!(&e.payload, Payload::HandoffAccepted(a) if a.handoff == seq))
                .cloned()
        },
    )?;
    Ok(match appended {
        incident_log::Appended::New(_) => Acceptance::Accepted { accepted, latency },
        incident_log::Appended::Already(e) => match &e.payload {
            Payload::HandoffAccepted(a) => Acceptance::Already {
                by: a.by.clone(),
                team: a.team.clone(),
            },
            _ => Acceptance::Already {
                by: String::new(),
                team: accepted.team,
            },
        },
    })
}

/// The acceptance of the hand-off recorded as event `seq`, if any.
fn accepted_of(events: &[Event], seq: u64) -> Option<&HandoffAccepted> {
    events.iter().find_map(|e| match &e.payload {
        Payload::HandoffAccepted(a) if a.handoff == seq => Some(a),
        _ => None,
    })
}

/// What is due for an open hand-off now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Announce it again on the team's chat channels: the `n`th interval has passed.
    Remind(u32),
    /// Page the team's PagerDuty channels.
    Escalate,
}

/// What is due now for the hand-off `handoff` (the event `event` of the
/// incident log `events`) to `team`: at most one thing, and never one the
/// log already records, so running this twice in the same interval sends
/// nothing the second time. `remind_after` overrides the team's interval.
pub fn reminder_due(
    events: &[Event],
    event: &Event,
    handoff: &Handoff,
    team: &Team,
    now: DateTime<Utc>,
) -> Option<Due> {
    let sent = parse_time(&handoff.at)?;
    let waited = (now - sent).to_std().ok()?;
    let reminded = |pred: &dyn Fn(u32, bool) -> bool| {
        events.iter().any(|e| {
            matches!(&e.payload, Payload::HandoffReminded(r)
                if r.handoff == event.seq && pred(r.reminder, r.escalated))
        })
    };
    if let Some(after) = team.escalate_after
        && waited >= after
        && !team.pager_channels().is_empty()
        && !reminded(&|_, escalated| escalated)
    {
        return Some(Due::Escalate);
    }
    let every = handoff
        .remind_after_ms
        .map(Duration::from_millis)
        .unwrap_or(team.remind_after);
    if every.is_zero() {
        return None;
    }
    let n = u32::try_from(waited.as_millis() / every.as_millis()).unwrap_or(u32::MAX);
    if n == 0 || reminded(&|r, escalated| !escalated && r >= n) {
        return None;
    }
    Some(Due::Remind(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teams::{Channel, ChannelKind};

    fn event(seq: u64, payload: impl Into<Payload>) -> Event {
        Event {
            ts: "2024-01-01T10:00:00Z".into(),
            seq,
            run_id: "".into(),
            incident_id: "i".into(),
            payload: payload.into(),
            extra: Default::default(),
            hash: String::new(),
        }
    }

    fn team(escalate: Option<u64>) -> Team {
        Team {
            reference: "group:default/dba".into(),
            title: None,
            channels: vec![
                Channel {
                    kind: ChannelKind::Slack,
                    secret: "S".into(),
                    endpoint: None,
                },
                Channel {
                    kind: ChannelKind::Pagerduty,
                    secret: "P".into(),
                    endpoint: None,
                },
            ],
            remind_after: Duration::from_secs(600),
            escalate_after: escalate.map(Duration::from_secs),
        }
    }

    fn handoff() -> Handoff {
        Handoff {
            at: "2024-01-01T10:00:00Z".into(),
            by: "ana".into(),
            to: "group:default/dba".into(),
            message: None,
            sent: vec![],
            packet: None,
            remind_after_ms: None,
        }
    }

    fn at(t: &str) -> DateTime<Utc> {
        parse_time(t).unwrap()
    }

    #[test]
    fn one_reminder_per_interval_then_escalation_once() {
        let h = handoff();
        let sent = event(3, h.clone());
        let mut log = vec![sent.clone()];
        let t = team(Some(1500));
        let due = |log: &[Event], now| reminder_due(log, &sent, &h, &t, at(now));
        assert_eq!(due(&log, "2024-01-01T10:09:59Z"), None);
        assert_eq!(due(&log, "2024-01-01T10:10:00Z"), Some(Due::Remind(1)));
        let reminded = |n, escalated| {
            event(
                4,
                crate::timeline::HandoffReminded {
                    at: "x".into(),
                    team: "t".into(),
                    handoff: 3,
                    reminder: n,
                    escalated,
                    sent: vec![],
                },
            )
        };
        log.push(reminded(1, false));
        assert_eq!(due(&log, "2024-01-01T10:19:59Z"), None);
        assert_eq!(due(&log, "2024-01-01T10:21:00Z"), Some(Due::Remind(2)));
        assert_eq!(due(&log, "2024-01-01T10:25:00Z"), Some(Due::Escalate));
        log.push(reminded(2, true));
        assert_eq!(due(&log, "2024-01-01T10:26:00Z"), Some(Due::Remind(2)));
        log.push(reminded(2, false));
        assert_eq!(due(&log, "2024-01-01T10:26:00Z"), None);
        // A reminder recorded for another hand-off does not count.
        let mut other = reminded(9, false);
        if let Payload::HandoffReminded(r) = &mut other.payload {
            r.handoff = 1;
        }
        assert_eq!(
            due(&[sent.clone(), other], "2024-01-01T10:10:00Z"),
            Some(Due::Remind(1))
        );
    }

    #[test]
    fn the_senders_interval_wins() {
        let mut h = handoff();
        h.remind_after_ms = Some(60_000);
        let sent = event(1, h.clone());
        let t = team(None);
        assert_eq!(
            reminder_due(
                std::slice::from_ref(&sent),
                &sent,
                &h,
                &t,
                at("2024-01-01T10:02:30Z")
            ),
            Some(Due::Remind(2))
        );
    }
}
