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
//! run `irctl handoff remind` as often as it likes.

pub mod packet;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::record::parse_time;
use crate::teams::Team;
use crate::timeline::{Event, Handoff, Payload};

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
