//! `irctl who`: who owns an incident and how they are reached, which rule
//! decided, the services it impacts and their teams, and the playbooks
//! that would run — without running anything.

use super::EXIT_FAILED;
use super::context::{Context, read_incident};
use crate::cli::{OutputFormat, WhoArgs};
use irctl::catalog::Ownership;
use irctl::matching;

/// Runs `who`.
pub fn run(args: WhoArgs, ctx: &Context) -> anyhow::Result<u8> {
    let mut indexed = ctx.load_index(&args.source)?;
    let incident = read_incident(&args.incident, ctx.run_clock(), &indexed.mappings)?;
    let catalog = ctx.load_catalog(&args.source, &[], true)?;
    let selection = matching::select(&indexed.index.entries, &incident);
    let names: Vec<&str> = selection.winners.iter().map(String::as_str).collect();
    let set = indexed.load(&names);
    // CODEOWNERS, the fallback, is asked about the file of the playbook that answers.
    let path = names
        .first()
        .and_then(|n| set.get(n))
        .map(|p| p.provenance.path.clone());
    let mut ownership = match &catalog {
        Some(c) => c.resolve(&incident, path.as_deref()),
        None => Ownership {
            why: vec![format!(
                "no service catalog: pass `--catalog`, or add `{}` to the playbook folder",
                irctl::catalog::ENTRY_FILE
            )],
            ..Ownership::default()
        },
    };
    ownership.reach(indexed.teams().as_ref());
    let out = ctx.out_redacting(ctx.payload_redactor(&incident));
    match args.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "incident": super::matching::incident_json(&incident),
                "catalog": catalog.as_ref().map(|c| c.origin.clone()),
                "owner": ownership.owner,
                "service": ownership.service,
                "why": ownership.why,
                "impacted": ownership.impacted,
                "playbooks": super::matching::runs_json(&selection.runs()),
                "routing": super::matching::runs_json(&selection.routing_runs()),
                "tied": selection.winners.len() > 1,
            });
            out.json(&serde_json::to_string_pretty(&doc)?)?;
        }
        OutputFormat::Table => print_table(ctx, &out, &incident, &ownership, &selection)?,
    }
    Ok(if ownership.owner.is_some() {
        0
    } else {
        EXIT_FAILED
    })
}

fn print_table(
    ctx: &Context,
    out: &super::context::Out<'_>,
    incident: &irctl::incident::Incident,
    o: &Ownership,
    selection: &matching::Selection,
) -> anyhow::Result<()> {
    out.line(&format!(
        "incident {} ({}, {}): {}",
        incident.id,
        incident.source,
        incident.severity.as_str(),
        incident.title
    ))?;
    match &o.owner {
        Some(owner) => {
            out.line(&format!(
                "owner:    {} ({}), by rule `{}`{}",
                owner.title,
                owner.entity_ref,
                owner.rule,
                if owner.in_catalog {
                    ""
                } else {
                    " (not in the catalog)"
                }
            ))?;
            let mut reach = Vec::new();
            if !owner.channels.is_empty() {
                reach.push(format!("channels {}", owner.channels.join(", ")));
            }
            if let Some(e) = &owner.email {
                reach.push(format!("e-mail {e}"));
            }
            if let Some(pd) = &owner.pagerduty_service {
                reach.push(format!("PagerDuty service {pd}"));
            }
            out.line(&format!(
                "reached:  {}",
                if reach.is_empty() {
                    "nothing in the catalog says how".to_string()
                } else {
                    reach.join(" · ")
                }
            ))?;
        }
        None => out.line("owner:    none found")?,
    }
    if let Some(s) = &o.service {
        out.line(&format!(
            "service:  {} ({}), by rule `{}`",
            s.title, s.entity_ref, s.rule
        ))?;
    }
    out.line("why:")?;
    for w in &o.why {
        out.line(&format!("  - {w}"))?;
    }
    if o.impacted.is_empty() {
        out.line("impacted: none")?;
    } else {
        out.line("impacted:")?;
        let mut table = ctx.ui.table(&["SERVICE", "DEPTH", "VIA", "OWNER"]);
        for i in &o.impacted {
            table.add_row(vec![
                out.redact(&format!("{} ({})", i.title, i.entity_ref)),
                i.depth.to_string(),
                out.redact(&i.via.to_string()),
                out.redact(&i.owner.as_ref().map_or_else(
                    || "-".to_string(),
                    |t| format!("{} ({})", t.title, t.entity_ref),
                )),
            ]);
        }
        out.line(&table.to_string())?;
    }
    let runs = selection.runs();
    match runs.as_slice() {
        [] => out.line("playbooks: none match (`irctl match` shows why)")?,
        _ if selection.winners.len() > 1 => out.line(&format!(
            "playbooks: {} tie (`irctl run NAME` picks one)",
            selection.winners.join(", ")
        ))?,
        runs => {
            let shown: Vec<String> = runs
                .iter()
                .map(|r| match r.alert {
                    Some(a) => format!("{} (alert #{a})", r.playbook),
                    None => r.playbook.clone(),
                })
                .collect();
            out.line(&format!("playbooks: {}", shown.join(", ")))?
        }
    }
    if !selection.routing.is_empty() {
        out.line(&format!(
            "routing:  {} (run beside it)",
            selection.routing.join(", ")
        ))?;
    }
    Ok(())
}
