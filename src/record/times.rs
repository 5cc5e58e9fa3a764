//! The key times of one incident record, and the durations between them:
//! the one definition the postmortem draft and `irctl stats` both use.
//!
//! A time is only as good as the clock that gave it. Detection and
//! resolution are taken from the same kind of clock wherever the record
//! allows — the sender's own times (`startsAt`, `endsAt`, `created_at`…)
//! when the payload carries them, irctl's clock otherwise — and every
//! [`KeyTime`] says which ([`KeyTime::source`]), so a reader can tell a
//! delayed webhook from a slow response. A duration whose ends are out of
//! order is never computed (no negative duration is ever shown); a
//! [`Times::warnings`] line says what disagrees instead.
//!
//! [`measure`] takes the merged events of one incident record as loaded
//! (see [`super::merged`]); whoever splits a record into episodes calls it
//! once per episode.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Entry, parse_time, show_time};
use crate::timeline::{Event, Payload, RecordedIncident};

/// One key time, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyTime {
    /// When.
    pub at: DateTime<Utc>,
    /// Which clock said so: `from Alertmanager startsAt`, `irctl's clock`,
    /// `stated by bob (--at)`.
    pub source: String,
    /// Who, when a person or a run's actor did it.
    pub by: Option<String>,
}

/// A duration, both exact and for people; never negative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Whole seconds.
    pub seconds: i64,
    /// `4m30s`, `1h02m`.
    pub text: String,
}

impl Span {
    /// A span of `seconds`, `None` when negative.
    pub fn of_seconds(seconds: i64) -> Option<Span> {
        (seconds >= 0).then(|| Span {
            seconds,
            text: crate::duration::format_seconds(seconds),
        })
    }
}

/// The durations between key times, each absent when an end is unknown or
/// the two are out of order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Durations {
    /// Detected − started.
    pub time_to_detect: Option<Span>,
    /// Acknowledged − detected.
    pub time_to_acknowledge: Option<Span>,
    /// First automated action − detected.
    pub time_to_first_action: Option<Span>,
    /// Mitigated − started.
    pub time_to_mitigate: Option<Span>,
    /// Resolved − started.
    pub time_to_resolve: Option<Span>,
}

/// The key times of one incident record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Times {
    /// Impact started: the earliest start of any alert the record knows.
    pub started: Option<KeyTime>,
    /// Detected: when the alert fired, by the first detection recorded
    /// (else the first run's payload).
    pub detected: Option<KeyTime>,
    /// Acknowledged: the first human action (a note, a manual run or
    /// resume, an answer to a `confirm`).
    pub acknowledged: Option<KeyTime>,
    /// The first step a run started.
    pub first_action: Option<KeyTime>,
    /// The first note.
    pub first_note: Option<KeyTime>,
    /// The first note marked `--mitigated`.
    pub mitigated: Option<KeyTime>,
    /// The last resolution.
    pub resolved: Option<KeyTime>,
    /// The durations between them.
    pub durations: Durations,
    /// Pairs of times in an impossible order, for people to check.
    pub warnings: Vec<String>,
}

/// The clock label of times irctl itself took.
pub const IRCTL_CLOCK: &str = "irctl's clock";

/// Measures the key times of one incident record's merged, time-ordered
/// events.
pub fn measure(entries: &[Entry]) -> Times {
    let drill_runs: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.event.payload {
            Payload::RunStarted(p) if p.drill => Some(e.event.run_id.as_str()),
            _ => None,
        })
        .collect();
    let mut t = Times {
        started: started(entries),
        detected: detected(entries),
        acknowledged: entries
            .iter()
            .filter(|e| !drill_runs.contains(&e.event.run_id.as_str()))
            .find_map(human_action),
        first_action: entries.iter().find_map(|e| match &e.event.payload {
            Payload::StepStarted(_) => Some(clock(e.time, None)),
            _ => None,
        }),
        first_note: entries.iter().find_map(|e| match &e.event.payload {
            Payload::Note(n) => Some(person(&e.event, e.time, &n.author)),
            _ => None,
        }),
        mitigated: entries.iter().find_map(|e| match &e.event.payload {
            Payload::Note(n) if n.mitigated == Some(true) => {
                Some(person(&e.event, e.time, &n.author))
            }
            _ => None,
        }),
        resolved: entries.iter().rev().find_map(|e| match &e.event.payload {
            Payload::Resolved(r) => Some(resolution(&e.event, e.time, r)),
            _ => None,
        }),
        ..Times::default()
    };
    let mut warnings = Vec::new();
    let mut span = |from: &Option<KeyTime>, from_name: &str, to: &Option<KeyTime>, to_name| {
        let (from, to) = (from.as_ref()?, to.as_ref()?);
        let span = Span::of_seconds((to.at - from.at).num_seconds());
        if span.is_none() {
            warnings.push(format!(
                "{to_name} ({}, {}) is before {from_name} ({}, {}): the clocks disagree or a time was mistyped",
                show_time(to.at),
                to.source,
                show_time(from.at),
                from.source
            ));
        }
        span
    };
    t.durations = Durations {
        time_to_detect: span(&t.started, "started", &t.detected, "detected"),
        time_to_acknowledge: span(&t.detected, "detected", &t.acknowledged, "acknowledged"),
        time_to_first_action: span(
            &t.detected,
            "detected",
            &t.first_action,
            "the first automated action",
        ),
        time_to_mitigate: span(&t.started, "started", &t.mitigated, "mitigated"),
        time_to_resolve: span(&t.started, "started", &t.resolved, "resolved"),
    };
    // Resolution before detection is impossible even when both are after
    // the start; mitigation after resolution is a late or mistaken note.
    span(&t.detected, "detected", &t.resolved, "resolved");
    span(&t.mitigated, "mitigated", &t.resolved, "resolved");
    warnings.dedup();
    t.warnings = warnings;
    t
}

/// The earliest alert start of every incident the record holds (firing or
/// resolved: a resolved payload still says when its alerts began).
fn started(entries: &[Entry]) -> Option<KeyTime> {
    entries
        .iter()
        .filter_map(|e| e.event.payload.recorded_incident())
        .flat_map(|i| {
            let own = i
                .started_at
                .as_deref()
                .and_then(parse_time)
                .map(|at| payload_time(&i.source, Edge::Start, at));
            let alerts: Vec<KeyTime> = i
                .alerts
                .iter()
                .filter_map(|a| a.starts_at.as_deref().and_then(parse_time))
                .map(|at| payload_time(&i.source, Edge::Start, at))
                .collect();
            own.into_iter().chain(alerts)
        })
        .min_by_key(|k| k.at)
}

/// The first detection recorded (`irctl ingest` of a firing payload), else
/// the first run: when its payload says the alert fired, else when irctl
/// recorded it.
fn detected(entries: &[Entry]) -> Option<KeyTime> {
    let from_payload = |i: &RecordedIncident| {
        i.started_at
            .as_deref()
            .and_then(parse_time)
            .map(|at| payload_time(&i.source, Edge::Start, at))
    };
    let detection = entries.iter().find_map(|e| match &e.event.payload {
        Payload::Detected(d) => {
            let incident = RecordedIncident::from_value(&d.incident);
            let payload = from_payload(&incident);
            Some(match payload {
                // An older irctl stamped detection by its own clock even
                // when the payload said when the alert fired.
                Some(p) if p.at == e.time || taken_by_clock(&e.event, e.time) => p,
                _ => person(&e.event, e.time, &d.by),
            })
        }
        _ => None,
    });
    detection.or_else(|| {
        entries.iter().find_map(|e| match &e.event.payload {
            Payload::RunStarted(p) => {
                from_payload(&p.recorded_incident()).or_else(|| Some(clock(e.time, None)))
            }
            _ => None,
        })
    })
}

/// The key time of a human action, if `e` is one: a note, a run or resume
/// started by a person (not by irctl itself), an answer to a `confirm`.
fn human_action(e: &Entry) -> Option<KeyTime> {
    let by_person = |actor: &str| !actor.trim().is_empty() && !actor.starts_with("irctl");
    match &e.event.payload {
        Payload::Note(n) => Some(person(&e.event, e.time, &n.author)),
        Payload::RunStarted(p) if by_person(&p.actor) => Some(clock(
            e.time,
            Some(format!("{} ran {}", p.actor, p.playbook)),
        )),
        Payload::RunResumed(p) if by_person(&p.actor) => {
            Some(clock(e.time, Some(format!("{} resumed the run", p.actor))))
        }
        Payload::Confirmation(c) if by_person(&c.by) => Some(clock(
            e.time,
            Some(format!("{} answered `{}`", c.by, c.step)),
        )),
        _ => None,
    }
}

/// The resolution's time: the payload's end when that is what was
/// recorded, else a person's (or irctl's) clock.
fn resolution(e: &Event, at: DateTime<Utc>, r: &crate::timeline::Resolved) -> KeyTime {
    let ended = r
        .incident
        .as_ref()
        .map(RecordedIncident::from_value)
        .and_then(|i| {
            let end = i.ended_at.as_deref().and_then(parse_time)?;
            (end == at).then(|| payload_time(&i.source, Edge::End, end))
        });
    let mut k = ended.unwrap_or_else(|| person(e, at, &r.by));
    k.by = Some(r.by.clone());
    k
}

/// A time irctl took itself.
fn clock(at: DateTime<Utc>, by: Option<String>) -> KeyTime {
    KeyTime {
        at,
        source: IRCTL_CLOCK.to_string(),
        by,
    }
}

/// A time a person recorded: irctl's clock when it was written as it
/// happened, else the time they stated (`--at`).
fn person(e: &Event, at: DateTime<Utc>, who: &str) -> KeyTime {
    let source = if taken_by_clock(e, at) {
        IRCTL_CLOCK.to_string()
    } else {
        format!("stated by {who} (--at)")
    };
    KeyTime {
        at,
        source,
        by: Some(who.to_string()),
    }
}

/// Whether `at` is within two seconds of when `e` was written: irctl's
/// clock, not a time someone typed.
fn taken_by_clock(e: &Event, at: DateTime<Utc>) -> bool {
    parse_time(&e.ts).is_some_and(|ts| (ts - at).num_seconds().abs() <= 2)
}

#[derive(Clone, Copy)]
enum Edge {
    Start,
    End,
}

/// A time from a payload, labelled with the sender's own field name.
fn payload_time(source: &str, edge: Edge, at: DateTime<Utc>) -> KeyTime {
    let (sender, start, end) = match source {
        "alertmanager" => ("Alertmanager", "startsAt", "endsAt"),
        "grafana" => ("Grafana", "startsAt", "endsAt"),
        "pagerduty-webhook" => ("PagerDuty", "created_at", "occurred_at"),
        "pagerduty-event" => ("PagerDuty", "payload.timestamp", "timestamp"),
        "cloudevents" => ("CloudEvents", "time", "time"),
        "irctl" => ("the incident file", "started_at", "ended_at"),
        // An ad hoc incident (`--label`) starts when irctl built it.
        "adhoc" | "" => return clock(at, None),
        other => {
            let field = match edge {
                Edge::Start => "start",
                Edge::End => "end",
            };
            return KeyTime {
                at,
                source: format!("from the {other} payload's {field}"),
                by: None,
            };
        }
    };
    let field = match edge {
        Edge::Start => start,
        Edge::End => end,
    };
    KeyTime {
        at,
        source: format!("from {sender} {field}"),
        by: None,
    }
}
