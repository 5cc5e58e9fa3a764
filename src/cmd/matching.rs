//! `irctl match`: which playbook an incident selects, the routing
//! playbooks that run beside it, and why the others did not.

use super::EXIT_FAILED;
use super::context::{Context, read_incident};
use crate::cli::{MatchArgs, OutputFormat};
use irctl::matching;

/// Runs `match`.
pub fn run(args: MatchArgs, ctx: &Context) -> anyhow::Result<u8> {
    let index = ctx.load_index(&args.source)?;
    let incident = read_incident(&args.incident, ctx.run_clock(), &index.mappings)?;
    let ui = &ctx.ui;
    let selection = matching::select(&index.index.entries, &incident);
    match args.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "incident": incident_json(&incident),
                "selected": selection.winner(),
                "runs": runs_json(&selection.runs()),
                "routing": runs_json(&selection.routing_runs()),
                "tied": if selection.winners.len() > 1 { selection.winners.clone() } else { Vec::new() },
                "playbooks": selection.evaluations,
            });
            ui.json(&serde_json::to_string_pretty(&doc)?)?;
        }
        OutputFormat::Table => {
            ui.outln(&format!(
                "incident {} ({}, {}, {}): {}",
                incident.id,
                incident.source,
                incident.severity.as_str(),
                status_str(&incident),
                incident.title
            ))?;
            let mut table = ui.table(&["PLAYBOOK", "MATCH", "PRIORITY", "OWNER", "WHY NOT"]);
            for e in &selection.evaluations {
                let mark = if selection.winners.contains(&e.name) {
                    if selection.winners.len() > 1 {
                        "tie"
                    } else {
                        "selected"
                    }
                } else if e.matched && e.routing {
                    "routing"
                } else if e.matched {
                    "yes"
                } else {
                    "no"
                };
                let name = if e.per_alert {
                    format!("{} (per alert)", e.name)
                } else {
                    e.name.clone()
                };
                table.add_row(vec![
                    name,
                    mark.to_string(),
                    e.priority.to_string(),
                    e.owner.clone().unwrap_or_else(|| "-".into()),
                    e.reason.clone().unwrap_or_default(),
                ]);
                for a in &e.alerts {
                    table.add_row(vec![
                        format!("  alert #{} {}", a.index, alert_label(a)),
                        if a.matched { "yes" } else { "no" }.to_string(),
                        String::new(),
                        String::new(),
                        a.reason.clone().unwrap_or_default(),
                    ]);
                }
            }
            ui.outln(&table.to_string())?;
            match selection.winners.as_slice() {
                [] => ui.outln("no playbook matched")?,
                [one] => match selection.get(one) {
                    Some(e) if e.per_alert => {
                        let alerts: Vec<String> = selection
                            .runs()
                            .iter()
                            .filter_map(|r| r.alert)
                            .map(|i| format!("#{i}"))
                            .collect();
                        ui.outln(&format!(
                            "selected: {one}, once per matching alert ({})",
                            alerts.join(", ")
                        ))?
                    }
                    _ => ui.outln(&format!("selected: {one}"))?,
                },
                many => ui.outln(&format!(
                    "tie at priority {}: {} (`irctl run NAME` picks one, `--all-matching` runs each)",
                    selection.get(&many[0]).map(|e| e.priority).unwrap_or_default(),
                    many.join(", ")
                ))?,
            }
            if !selection.routing.is_empty() {
                ui.outln(&format!(
                    "routing: {} (`kind: routing`: each runs beside the selected playbook)",
                    selection.routing.join(", ")
                ))?;
            }
        }
    }
    Ok(if selection.winners.is_empty() {
        EXIT_FAILED
    } else {
        0
    })
}

/// An alert as one table cell: the labels it does not share with its
/// group, else its fingerprint; payload text, so control characters are escaped.
fn alert_label(a: &matching::AlertEvaluation) -> String {
    if a.distinct.is_empty() {
        return a.key.escape_debug().to_string();
    }
    a.distinct
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k.escape_debug(),
                serde_json::Value::String(v.clone())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_str(incident: &irctl::incident::Incident) -> &'static str {
    match incident.status {
        irctl::incident::Status::Firing => "firing",
        irctl::incident::Status::Resolved => "resolved",
    }
}

/// The incident as the JSON outputs of `match` and `who` show it.
pub(super) fn incident_json(incident: &irctl::incident::Incident) -> serde_json::Value {
    serde_json::json!({
        "id": incident.id,
        "title": incident.title,
        "source": incident.source,
        "severity": incident.severity,
        "status": incident.status,
        "labels": incident.labels,
    })
}

/// Runs as the `{playbook, alert}` objects of those JSON outputs.
pub(super) fn runs_json(runs: &[matching::Run]) -> Vec<serde_json::Value> {
    runs.iter()
        .map(|r| serde_json::json!({ "playbook": r.playbook, "alert": r.alert }))
        .collect()
}
