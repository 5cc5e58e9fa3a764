//! `irctl list`: the playbooks as a table or JSON.

use super::context::Context;
use crate::cli::{ListArgs, OutputFormat};

/// Runs `list`.
pub fn run(args: ListArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let set = ctx.load_playbooks(&args.source)?;
    match args.format {
        OutputFormat::Json => {
            let rows: Vec<serde_json::Value> = set
                .playbooks
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "title": p.title,
                        "owner": p.owner,
                        "priority": p.priority,
                        "steps": p.steps.len(),
                        "drill_schedule": p.drill.as_ref().and_then(|d| d.schedule.clone()),
                        "file": p.file(),
                        "provenance": p.provenance,
                    })
                })
                .collect();
            ui.json(&serde_json::to_string_pretty(&rows)?)?;
        }
        OutputFormat::Table => {
            let mut table = ui.table(&[
                "NAME", "TITLE", "OWNER", "PRIORITY", "STEPS", "DRILL", "FILE",
            ]);
            for p in &set.playbooks {
                let file = match &p.provenance.commit {
                    Some(c) => format!("{}@{}", p.file(), &c[..c.len().min(8)]),
                    None => p.file().to_string(),
                };
                table.add_row(vec![
                    p.name.clone(),
                    p.title.clone(),
                    p.owner.clone().unwrap_or_else(|| "-".into()),
                    p.priority.to_string(),
                    p.steps.len().to_string(),
                    p.drill
                        .as_ref()
                        .and_then(|d| d.schedule.clone())
                        .unwrap_or_else(|| "-".into()),
                    file,
                ]);
            }
            ui.outln(&table.to_string())?;
        }
    }
    Ok(0)
}
