//! `irctl match`: which playbook an incident selects, and why the others did not.

use super::EXIT_FAILED;
use super::context::{Context, read_incident};
use crate::cli::{MatchArgs, OutputFormat};
use irctl::matching;

/// Runs `match`.
pub fn run(args: MatchArgs, ctx: &Context) -> anyhow::Result<u8> {
    let incident = read_incident(&args.incident, ctx.run_clock())?;
    let ui = &ctx.ui;
    let index = ctx.load_index(&args.source)?;
    let selection = matching::select(&index.index.entries, &incident);
    match args.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "incident": {
                    "id": incident.id,
                    "title": incident.title,
                    "source": incident.source,
                    "severity": incident.severity,
                    "status": incident.status,
                    "labels": incident.labels,
                },
                "selected": selection.winner(),
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
                } else if e.matched {
                    "yes"
                } else {
                    "no"
                };
                table.add_row(vec![
                    e.name.clone(),
                    mark.to_string(),
                    e.priority.to_string(),
                    e.owner.clone().unwrap_or_else(|| "-".into()),
                    e.reason.clone().unwrap_or_default(),
                ]);
            }
            ui.outln(&table.to_string())?;
            match selection.winners.as_slice() {
                [] => ui.outln("no playbook matched")?,
                [one] => ui.outln(&format!("selected: {one}"))?,
                many => ui.outln(&format!(
                    "tie at priority {}: {} (`irctl run NAME` picks one, `--all-matching` runs each)",
                    selection.evaluations.first().map(|e| e.priority).unwrap_or_default(),
                    many.join(", ")
                ))?,
            }
        }
    }
    Ok(if selection.winners.is_empty() {
        EXIT_FAILED
    } else {
        0
    })
}

fn status_str(incident: &irctl::incident::Incident) -> &'static str {
    match incident.status {
        irctl::incident::Status::Firing => "firing",
        irctl::incident::Status::Resolved => "resolved",
    }
}
