//! Reading a postmortem out of an incident's record: the merged entries
//! give the incident, the key times, the summary and every section.

use std::collections::{BTreeMap, BTreeSet};

use super::integrity::integrity;
use super::runs::{playbook_versions, run_report};
use super::{
    Detection, Impact, IncidentInfo, KeyTime, KeyTimeRow, KeyTimes, Line, Postmortem, Span, Times,
};
use crate::clock::Clock;
use crate::record::{Entry, Run, Store, merged, sections, show_time};
use crate::timeline::{ChainKey, Event, Payload, RecordedIncident, describe};

/// Builds the postmortem of `incident` (its id or file-safe form), generated
/// now by `clock`; keyed timelines are checked with `key` when it is given.
pub fn build(
    store: &Store,
    incident: &str,
    clock: Clock,
    key: Option<&ChainKey>,
) -> anyhow::Result<(Postmortem, Vec<String>)> {
    let id = store.canonical_incident_id(incident);
    let (entries, warnings) = merged(store, &id)?;
    if entries.is_empty() {
        anyhow::bail!(
            "no runs, notes or detections for incident `{incident}` in `{}`; `irctl runs` lists incidents",
            store.dir.display()
        );
    }
    let runs: Vec<&Run> = store.incident_runs(&id).collect();
    let times = crate::record::times::measure(&entries);
    let mut incident = incident_info(&id, &entries);
    incident.status = if times.resolved.is_some() {
        "resolved".into()
    } else {
        "ongoing".into()
    };
    let now = clock.now();
    let alerts = sections::alerts(&entries);
    let impact = Impact {
        duration: times.started.as_ref().and_then(|s| {
            let end = times.resolved.as_ref().map_or(now, |r| r.at);
            Span::of_seconds((end - s.at).num_seconds())
        }),
        ongoing: times.resolved.is_none(),
        services: incident.services.clone(),
        alert_count: alerts.len(),
    };
    let resolution = entries
        .iter()
        .rev()
        .find_map(|e| match &e.event.payload {
            Payload::Resolved(r) => Some(r.summary.clone().unwrap_or_default()),
            _ => None,
        })
        .filter(|s| !s.is_empty());
    let (lessons, action_items) = sections::lessons(&runs);
    let chart = crate::record::diagram::chart(&incident.title, &entries, &times);
    let pm = Postmortem {
        summary: summary(&incident, &times, &impact, &runs, resolution.as_deref()),
        drill: !runs.is_empty() && runs.iter().all(|r| r.summary.drill),
        detection: Detection {
            source: incident.source.clone(),
            time: times.detected.as_ref().map(|k| show_time(k.at)),
            clock: times.detected.as_ref().map(|k| k.source.clone()),
            recorded_by: entries.iter().find_map(|e| match &e.event.payload {
                Payload::Detected(d) => Some(d.by.clone()),
                _ => None,
            }),
            url: incident.url.clone(),
        },
        impact,
        times: key_times(&times, |k| show_time(k.at)),
        time_sources: key_times(&times, |k| k.source.clone()),
        key_times: key_time_rows(&times),
        durations: times.durations.clone(),
        time_warnings: times.warnings.clone(),
        responders: sections::responders(&entries),
        communications: sections::communications(&entries),
        ownership: crate::record::ownership::ownership(&entries),
        findings: sections::findings(&runs),
        alerts: if alerts.len() > 1 { alerts } else { Vec::new() },
        lessons,
        action_items,
        incident,
        timeline: entries.iter().map(line).collect(),
        runs: runs.iter().map(|r| run_report(r)).collect(),
        playbooks: playbook_versions(&runs),
        notes: entries
            .iter()
            .filter(|e| matches!(e.event.payload, Payload::Note(_)))
            .map(line)
            .collect(),
        resolution,
        integrity: integrity(store, &runs, &id, key),
        generated_at: show_time(now),
        gantt: crate::graph::gantt::render(&chart),
        chart,
    };
    Ok((pm, warnings))
}

/// Each key time of `t` as `show` writes it.
fn key_times(t: &Times, show: impl Fn(&KeyTime) -> String) -> KeyTimes {
    let f = |k: &Option<KeyTime>| k.as_ref().map(&show);
    KeyTimes {
        started: f(&t.started),
        detected: f(&t.detected),
        acknowledged: f(&t.acknowledged),
        first_action: f(&t.first_action),
        first_note: f(&t.first_note),
        mitigated: f(&t.mitigated),
        resolved: f(&t.resolved),
    }
}

fn key_time_rows(t: &Times) -> Vec<KeyTimeRow> {
    [
        (
            "started",
            "Impact started (earliest alert start)",
            &t.started,
        ),
        ("detected", "Detected (the alert fired)", &t.detected),
        (
            "acknowledged",
            "Acknowledged (first human action)",
            &t.acknowledged,
        ),
        ("first_action", "First automated action", &t.first_action),
        ("mitigated", "Mitigated", &t.mitigated),
        ("resolved", "Resolved", &t.resolved),
    ]
    .into_iter()
    .map(|(name, label, k)| KeyTimeRow {
        name: name.into(),
        label: label.into(),
        time: k.as_ref().map(|k| show_time(k.at)),
        source: k.as_ref().map(|k| k.source.clone()),
        by: k.as_ref().and_then(|k| k.by.clone()),
    })
    .collect()
}

/// One paragraph, every clause true of the record.
fn summary(
    incident: &IncidentInfo,
    times: &Times,
    impact: &Impact,
    runs: &[&Run],
    resolution: Option<&str>,
) -> String {
    let mut text = format!(
        "{} ({} severity, from {})",
        incident.title, incident.severity, incident.source
    );
    if let Some(s) = &times.started {
        text.push_str(&format!(" started at {}", show_time(s.at)));
    }
    match (&times.resolved, &impact.duration) {
        (Some(r), Some(d)) => text.push_str(&format!(
            " and was resolved at {} after {}",
            show_time(r.at),
            d.text
        )),
        (Some(r), None) => text.push_str(&format!(" and was resolved at {}", show_time(r.at))),
        (None, _) => text.push_str(" and is not resolved yet"),
    }
    text.push('.');
    if !runs.is_empty() {
        let list: Vec<String> = runs
            .iter()
            .map(|r| format!("{} ({})", r.summary.playbook, r.summary.status))
            .collect();
        text.push_str(&format!(
            " {} run{}: {}.",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            list.join(", ")
        ));
    }
    if let Some(fix) = resolution {
        text.push_str(&format!(" Resolution: {fix}."));
    }
    text
}

/// The incident a run's start or a detection recorded (what a resolution
/// read from a payload says is left out: it describes the end).
fn started_or_detected(e: &Event) -> Option<RecordedIncident> {
    match &e.payload {
        Payload::RunStarted(_) | Payload::Detected(_) => e.payload.recorded_incident(),
        _ => None,
    }
}

fn incident_info(id: &str, entries: &[Entry]) -> IncidentInfo {
    let values: Vec<RecordedIncident> = entries
        .iter()
        .filter_map(|e| started_or_detected(&e.event))
        .collect();
    let text = |pick: fn(&RecordedIncident) -> Option<&str>| {
        values
            .iter()
            .filter_map(pick)
            .find(|t| !t.is_empty())
            .map(str::to_string)
    };
    let mut labels = BTreeMap::new();
    for v in &values {
        for (k, val) in &v.labels {
            labels.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    let services: BTreeSet<String> = values
        .iter()
        .flat_map(RecordedIncident::label_sets)
        .filter_map(|l| l.get("service").cloned())
        .collect();
    let owners: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.event.payload {
            Payload::RunStarted(p) => p.owner.as_deref(),
            _ => None,
        })
        .filter(|o| !o.is_empty())
        .collect();
    IncidentInfo {
        id: id.to_string(),
        title: text(|v| Some(&v.title)).unwrap_or_else(|| id.to_string()),
        severity: text(|v| Some(&v.severity)).unwrap_or_else(|| "unknown".into()),
        status: String::new(),
        source: text(|v| Some(&v.source)).unwrap_or_else(|| "unknown".into()),
        owner: (!owners.is_empty()).then(|| owners.into_iter().collect::<Vec<_>>().join(", ")),
        services: services.into_iter().collect(),
        labels,
        url: text(|v| v.url.as_deref()),
    }
}

/// One timeline line for an entry.
pub fn line(e: &Entry) -> Line {
    Line {
        time: show_time(e.time),
        run: if e.event.run_id.is_empty() {
            "incident".into()
        } else {
            e.event.run_id.to_string()
        },
        kind: e.event.kind().to_string(),
        step: e.event.step().unwrap_or_default().to_string(),
        text: describe(&e.event),
    }
}
