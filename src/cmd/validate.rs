//! `irctl validate`: load, call [`irctl::validation`], print the findings in
//! the requested format.

use super::EXIT_FAILED;
use super::context::{Context, source_spec};
use crate::cli::{ValidateArgs, ValidateFormat};
use irctl::report::{self, github, junit};
use irctl::validation::{self, Request};

/// Runs `validate`.
pub fn run(args: ValidateArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let loaded = ctx.load_source(&args.source, &args.paths)?;
    let spec = source_spec(&args.source, &args.paths)?;
    let mut request = Request::for_spec(&spec, args.changed_since.clone());
    request.catalog = ctx.load_catalog(&args.source, &args.paths, true)?;
    let outcome = validation::run(loaded, &request)?;
    if let Some(n) = &outcome.narrowed {
        ui.errln(&format!(
            "note: reporting findings for {} of {} playbook files (changed since `{}`)",
            n.changed, n.files, n.base
        ));
    }
    let diags = &outcome.diagnostics;
    match args.format {
        ValidateFormat::Human => {
            for d in diags {
                let source = outcome.sources.get(&d.file).map(String::as_str);
                ui.diagnostic(d, source);
            }
            ui.errln(&outcome.summary.line());
        }
        ValidateFormat::Json => ui.json(&report::json(diags))?,
        ValidateFormat::Github => {
            ui.out(&github::diagnostics(diags))?;
            ui.errln(&outcome.summary.line());
        }
        ValidateFormat::Junit => ui.out(&junit::diagnostics(
            diags,
            &outcome.files,
            args.deny_warnings,
        )?)?,
    }
    Ok(if outcome.failed(args.deny_warnings) {
        EXIT_FAILED
    } else {
        0
    })
}
