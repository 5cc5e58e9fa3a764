//! `irctl history`: the commits that changed one playbook's file.

use super::context::Context;
use crate::cli::{HistoryArgs, OutputFormat};
use irctl::playbook::unknown_playbook;

/// Runs `history`.
pub fn run(args: HistoryArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let loaded = ctx.load_source(&args.source, &[])?;
    let set = &loaded.set;
    // A broken playbook has no name, but its file still has a history.
    let file = match set.get(&args.playbook) {
        Some(p) => p.file().to_string(),
        None if set.files.contains(&args.playbook) => args.playbook.clone(),
        None => {
            return Err(unknown_playbook(
                &args.playbook,
                set.playbooks.iter().map(|p| p.name.as_str()),
            ));
        }
    };
    let changes = loaded.history(&file, args.limit.max(1))?;
    match args.format {
        OutputFormat::Json => ui.json(&serde_json::to_string_pretty(&changes)?)?,
        OutputFormat::Table => {
            let mut table = ui.table(&["COMMIT", "DATE", "AUTHOR", "SUBJECT"]);
            for c in &changes {
                table.add_row(vec![
                    c.commit[..c.commit.len().min(8)].to_string(),
                    c.date.get(..16).unwrap_or(&c.date).replace('T', " "),
                    c.author.clone(),
                    c.subject.clone(),
                ]);
            }
            ui.outln(&file)?;
            ui.outln(&table.to_string())?;
        }
    }
    Ok(0)
}
