//! Numbers across incidents: time to detect, acknowledge, mitigate and
//! resolve per incident, their means (MTTD, MTTA, MTTM, MTTR), and how runs
//! ended. Every figure is the postmortem's own ([`super::times`]), so a
//! draft and `irctl stats` never disagree.
//!
//! Drills are counted apart and never enter MTTD or MTTR: a drill's alert is
//! made up, and averaging it in would flatter the real numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::times::{Span, measure};
use super::{Store, merged};

/// One incident's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentStats {
    /// The incident id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Whether all its runs were drills.
    pub drill: bool,
    /// When the first event of the incident happened.
    pub first_seen: Option<DateTime<Utc>>,
    /// Its runs.
    pub runs: usize,
    /// Detected − started.
    pub time_to_detect: Option<Span>,
    /// Acknowledged − detected.
    pub time_to_acknowledge: Option<Span>,
    /// Mitigated − started.
    pub time_to_mitigate: Option<Span>,
    /// Resolved − started.
    pub time_to_resolve: Option<Span>,
    /// Key times in an impossible order (their durations are left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub time_warnings: Vec<String>,
    /// Whether a resolution is recorded.
    pub resolved: bool,
}

/// The summary.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Per incident, oldest first.
    pub incidents: Vec<IncidentStats>,
    /// Incidents that are not drills.
    pub real_incidents: usize,
    /// Drill incidents.
    pub drill_incidents: usize,
    /// Real incidents with a resolution.
    pub resolved: usize,
    /// Mean time to detect over real incidents where it is known.
    pub mttd: Option<Span>,
    /// Mean time to acknowledge over real incidents where it is known.
    pub mtta: Option<Span>,
    /// Mean time to mitigate over real incidents where it is known.
    pub mttm: Option<Span>,
    /// Mean time to resolve over real resolved incidents.
    pub mttr: Option<Span>,
    /// Runs of real incidents by status.
    pub runs: BTreeMap<String, usize>,
    /// Drill runs by status.
    pub drill_runs: BTreeMap<String, usize>,
}

/// Computes the stats of every incident first seen at or after `since`.
pub fn compute(
    store: &Store,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<(Stats, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut incidents = Vec::new();
    let mut runs = BTreeMap::new();
    let mut drill_runs = BTreeMap::new();
    for id in store.incident_ids()? {
        let (entries, w) = merged(store, &id)?;
        warnings.extend(w);
        let first_seen = entries.first().map(|e| e.time);
        if since.is_some_and(|s| first_seen.is_none_or(|f| f < s)) {
            continue;
        }
        let incident_runs: Vec<_> = store.incident_runs(&id).collect();
        let drill = !incident_runs.is_empty() && incident_runs.iter().all(|r| r.summary.drill);
        for r in &incident_runs {
            let counts = if r.summary.drill {
                &mut drill_runs
            } else {
                &mut runs
            };
            *counts.entry(r.summary.status.clone()).or_insert(0) += 1;
        }
        let title = incident_runs
            .iter()
            .map(|r| r.summary.incident_title.clone())
            .find(|t| !t.is_empty())
            .unwrap_or_else(|| {
                entries
                    .iter()
                    .find_map(|e| e.event.payload.recorded_incident())
                    .map(|i| i.title)
                    .unwrap_or_default()
            });
        let times = measure(&entries);
        warnings.extend(
            times
                .warnings
                .iter()
                .map(|w| format!("incident `{id}`: {w}")),
        );
        let run_count = incident_runs.len();
        incidents.push(IncidentStats {
            id,
            title,
            drill,
            first_seen,
            runs: run_count,
            time_to_detect: times.durations.time_to_detect,
            time_to_acknowledge: times.durations.time_to_acknowledge,
            time_to_mitigate: times.durations.time_to_mitigate,
            time_to_resolve: times.durations.time_to_resolve,
            time_warnings: times.warnings.clone(),
            resolved: times.resolved.is_some(),
        });
    }
    incidents.sort_by_key(|i| i.first_seen);
    let real: Vec<&IncidentStats> = incidents.iter().filter(|i| !i.drill).collect();
    let mean = |pick: fn(&IncidentStats) -> Option<i64>| {
        let known: Vec<i64> = real.iter().filter_map(|i| pick(i)).collect();
        if known.is_empty() {
            return None;
        }
        Span::of_seconds(known.iter().sum::<i64>() / known.len() as i64)
    };
    let stats = Stats {
        real_incidents: real.len(),
        drill_incidents: incidents.len() - real.len(),
        resolved: real.iter().filter(|i| i.resolved).count(),
        mttd: mean(|i| i.time_to_detect.as_ref().map(|s| s.seconds)),
        mtta: mean(|i| i.time_to_acknowledge.as_ref().map(|s| s.seconds)),
        mttm: mean(|i| i.time_to_mitigate.as_ref().map(|s| s.seconds)),
        mttr: mean(|i| i.time_to_resolve.as_ref().map(|s| s.seconds)),
        runs,
        drill_runs,
        incidents,
    };
    Ok((stats, warnings))
}
