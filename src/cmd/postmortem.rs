//! `irctl postmortem`: build the incident's postmortem data and render it
//! with the built-in Markdown template or a team's own
//! ([`irctl::record::postmortem`] reads and chooses it), then print or write it.

use super::context::Context;
use crate::cli::{PostmortemArgs, PostmortemFormat};
use irctl::record::{Scope, postmortem};

/// Runs `postmortem`.
pub fn run(args: PostmortemArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let template = postmortem::Template::load(args.template.as_deref())?;
    let incident = ctx.incident_id(&args.incident, false)?;
    let store = ctx.open_store(Scope::Incident(&incident))?;
    let (pm, warnings) = postmortem::build(
        &store,
        &incident,
        ctx.clock()?,
        ctx.timeline_key()?.as_ref(),
    )?;
    ctx.warn_all(&warnings);
    for i in pm.integrity.iter().filter(|i| !i.ok) {
        ui.warn(&format!(
            "{}: hash chain broken ({}); the record may have been edited",
            i.record, i.message
        ));
    }
    let out = ctx.out();
    let text = match args.format {
        PostmortemFormat::Json => out.redact_json(&postmortem::to_json(&pm)?),
        PostmortemFormat::Markdown => out.redact(&template.render(&pm)?),
        // Redacted text by text before it is escaped (see `graph::html`).
        PostmortemFormat::Html => {
            irctl::record::diagram::postmortem_page(&pm).render(&|s: &str| out.redact(s))
        }
    };
    match &args.output {
        Some(path) => {
            irctl::fsutil::write_replacing(path, text.as_bytes())?;
            ui.errln(&format!("wrote {}", path.display()));
        }
        None => ui.out(&text)?,
    }
    Ok(0)
}
