//! Held attempts: a payload asked for a playbook and it did not run — held
//! back by a throttle (`run_throttled`), recorded as a repeat
//! (`alert_repeated`), or, under `irctl serve`, still waiting for a
//! `concurrency` slot — listed beside the runs, so `irctl runs` and serve's
//! `/api/runs` answer "why didn't my playbook run?".
//!
//! Throttles and repeats are read from the incident logs, where `irctl run`
//! records them; a delivery waiting for a slot is only in serve's queue,
//! which hands its rows in ([`Held::waiting`]). Repeats are the senders'
//! re-sends of something that did run (Alertmanager re-sends every
//! `repeat_interval`), so [`list`] shows them only when asked.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::record::{self, RunFilter, RunSummary, incident_log};
use crate::timeline::Payload;

/// `status` of a held attempt.
pub const HELD: &str = "held";

/// A playbook that did not run for an incident, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Held {
    /// Always `null`: no run was started (the field keeps a run row's shape).
    pub run_id: Option<String>,
    /// The incident id as recorded.
    pub incident_id: String,
    /// Its file-safe form.
    pub incident_file_id: String,
    /// The playbook that did not run.
    pub playbook: String,
    /// Always [`HELD`].
    pub status: &'static str,
    /// When it was held (for a waiting delivery: when it first waited).
    pub started: DateTime<Utc>,
    /// Why, and until when.
    pub held: Hold,
}

/// Why a playbook was held.
#[derive(Clone, Debug, Serialize)]
pub struct Hold {
    /// `once_within`, `max_runs`, `concurrency` (a throttle), `waiting` (a
    /// serve delivery waiting for a `concurrency` slot), `repeat` or
    /// `in_progress` (a repeat of an episode's run).
    pub reason: String,
    /// The limit as written, for a throttle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// When the playbook may run again (a throttle), or when serve tries the
    /// waiting delivery again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<DateTime<Utc>>,
    /// For a repeat: the earlier run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_run: Option<String>,
    /// Who (or which process) held it.
    pub by: String,
}

impl Held {
    /// A serve delivery of the incident `key` waiting for a slot of
    /// `playbook` since `since`, tried again at `next`.
    pub fn waiting(
        key: &str,
        playbook: &str,
        since: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> Held {
        Held {
            run_id: None,
            incident_id: key.to_string(),
            incident_file_id: record::file_safe_id(key),
            playbook: playbook.to_string(),
            status: HELD,
            started: since,
            held: Hold {
                reason: "waiting".into(),
                rule: Some("concurrency".into()),
                next_run_at: next,
                earlier_run: None,
                by: "irctl serve".into(),
            },
        }
    }

    /// What `irctl runs` shows as its status: `held: once_within until …`.
    pub fn describe(&self) -> String {
        let h = &self.held;
        let until = |at: Option<DateTime<Utc>>| {
            at.map(|t| format!(" until {}", record::show_time(t)))
                .unwrap_or_default()
        };
        match h.reason.as_str() {
            "waiting" => format!(
                "held: waiting for a concurrency slot (next try {})",
                h.next_run_at
                    .map(record::show_time)
                    .unwrap_or_else(|| "now".into())
            ),
            "concurrency" => format!(
                "held: {} (no slot came free)",
                h.rule.as_deref().unwrap_or("concurrency")
            ),
            "repeat" => format!(
                "held: repeat of {}",
                h.earlier_run.as_deref().unwrap_or("an earlier run")
            ),
            "in_progress" => "held: repeat while a run was in progress".into(),
            _ => format!(
                "held: {}{}",
                h.rule.as_deref().unwrap_or(&h.reason),
                until(h.next_run_at)
            ),
        }
    }

    fn passes(&self, filter: &RunFilter<'_>) -> bool {
        filter
            .incident
            .is_none_or(|i| i == self.incident_id || i == self.incident_file_id)
            && filter.playbook.is_none_or(|p| p == self.playbook)
            && filter.since.is_none_or(|t| self.started >= t)
    }
}

/// One row of `irctl runs`: a run, or a held attempt.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Row<'a> {
    /// A run.
    Run(&'a RunSummary),
    /// A playbook that did not run.
    Held(Box<Held>),
}

impl Row<'_> {
    fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Row::Run(r) => r.started,
            Row::Held(h) => Some(h.started),
        }
    }
}

/// The runs of `store` that pass `filter`, with the held attempts recorded
/// in its incident logs and the `waiting` deliveries handed in, oldest
/// first; repeats only when `repeats` is set. Torn or unreadable incident
/// logs are skipped with a warning.
pub fn list<'a>(
    store: &'a record::Store,
    filter: &RunFilter<'_>,
    repeats: bool,
    waiting: Vec<Held>,
) -> anyhow::Result<(Vec<Row<'a>>, Vec<String>)> {
    let mut rows: Vec<Row<'a>> = record::list_runs(store, filter)
        .into_iter()
        .map(Row::Run)
        .collect();
    let mut warnings = Vec::new();
    for id in incident_log::logged_ids(&store.dir)? {
        let log = match incident_log::read(&store.dir, &id) {
            Ok(log) => log,
            Err(e) => {
                warnings.push(format!("{e:#}"));
                continue;
            }
        };
        warnings.extend(log.warnings);
        for e in log.events {
            let Some(held) = from_event(&e.incident_id, &e.payload, repeats) else {
                continue;
            };
            if held.passes(filter) {
                rows.push(Row::Held(Box::new(held)));
            }
        }
    }
    rows.extend(
        waiting
            .into_iter()
            .filter(|h| h.passes(filter))
            .map(|h| Row::Held(Box::new(h))),
    );
    rows.sort_by_key(Row::at);
    Ok((rows, warnings))
}

/// The held attempt an incident log event records, if it is one.
fn from_event(incident: &str, payload: &Payload, repeats: bool) -> Option<Held> {
    let (at, playbook, hold) = match payload {
        Payload::RunThrottled(t) => {
            let reason = t.rule.split(':').next().unwrap_or("").trim().to_string();
            let hold = Hold {
                reason,
                rule: Some(t.rule.clone()),
                next_run_at: t.next_run_at.as_deref().and_then(record::parse_time),
                earlier_run: None,
                by: t.by.clone(),
            };
            (&t.at, &t.playbook, hold)
        }
        Payload::AlertRepeated(r) if repeats => {
            let hold = Hold {
                reason: if r.earlier_run.is_some() {
                    "repeat"
                } else {
                    "in_progress"
                }
                .into(),
                rule: None,
                next_run_at: None,
                earlier_run: r.earlier_run.clone(),
                by: r.by.clone(),
            };
            (&r.at, &r.playbook, hold)
        }
        _ => return None,
    };
    Some(Held {
        run_id: None,
        incident_id: incident.to_string(),
        incident_file_id: record::file_safe_id(incident),
        playbook: playbook.clone(),
        status: HELD,
        started: record::parse_time(at)?,
        held: hold,
    })
}
