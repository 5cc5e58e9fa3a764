//! `irctl postmortem`: build the incident's postmortem data and render it
//! with the built-in Markdown template or a team's own.

use anyhow::Context as _;

use super::context::Context;
use crate::cli::{PostmortemArgs, PostmortemFormat};
use irctl::record::{Scope, postmortem};

/// Runs `postmortem`.
pub fn run(args: PostmortemArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let custom = match &args.template {
        Some(path) => Some(
            irctl::capped::read_to_string(path, 1024 * 1024)
                .with_context(|| format!("cannot read template `{}`", path.display()))?,
        ),
        None => None,
    };
    let store = ctx.open_store(Scope::Incident(&args.incident))?;
    let (pm, warnings) = postmortem::build(&store, &args.incident, ctx.clock()?)?;
    ctx.warn_all(&warnings);
    for i in pm.integrity.iter().filter(|i| !i.ok) {
        ui.warn(&format!(
            "{}: hash chain broken ({}); the record may have been edited",
            i.record, i.message
        ));
    }
    let text = match args.format {
        PostmortemFormat::Json => serde_json::to_string_pretty(&pm)? + "\n",
        PostmortemFormat::Markdown => match (&custom, &args.template) {
            (Some(t), Some(path)) => postmortem::render(&pm, t, &path.display().to_string())?,
            _ => postmortem::render(&pm, postmortem::DEFAULT_TEMPLATE, "postmortem.md")?,
        },
    };
    let text = ctx.out().redact(&text);
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            ui.errln(&format!("wrote {}", path.display()));
        }
        None => ui.out(&text)?,
    }
    Ok(0)
}
