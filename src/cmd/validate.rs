//! `irctl validate`: load, check, print findings in the requested format.

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::cmd::EXIT_FAILED;
use crate::ui::Ui;
use irctl::diagnostic::{self, Summary};
use irctl::matching;
use irctl::playbook::load;

/// Runs `validate`.
pub fn run(args: ValidateArgs, ui: &Ui) -> anyhow::Result<u8> {
    let paths = if args.paths.is_empty() {
        vec![args.source.playbooks.clone()]
    } else {
        args.paths.clone()
    };
    let mut set = load::load_paths(&paths)?;
    // Drill cross-checks only matter when validating, not on every `run`.
    let drill_findings = matching::check_drills(&set.playbooks);
    set.diagnostics.extend(drill_findings);
    // Sibling `NAME.test.yaml` files are checked too, so a broken test fails CI here already.
    for path in paths.iter().filter(|p| p.is_dir()) {
        let tests = irctl::playtest::collect(&set, path);
        set.diagnostics.extend(tests.diagnostics);
        set.sources.extend(tests.sources);
    }
    let diags = &set.diagnostics;
    let summary = Summary::of(diags, set.files.len());
    match args.format {
        ValidateFormat::Human => {
            for d in diags {
                let source = set.sources.get(&d.file).map(String::as_str);
                ui.err(&diagnostic::render_human(d, source, ui.color_err()));
                ui.err("\n");
            }
            ui.errln(&summary.line());
        }
        ValidateFormat::Json => ui.outln(&diagnostic::render_json(diags))?,
        ValidateFormat::Github => {
            ui.out(&diagnostic::render_github(diags))?;
            ui.errln(&summary.line());
        }
        ValidateFormat::Junit => ui.out(&diagnostic::render_junit(
            diags,
            &set.files,
            args.deny_warnings,
        ))?,
    }
    let failed = summary.errors > 0 || (args.deny_warnings && summary.warnings > 0);
    Ok(if failed { EXIT_FAILED } else { 0 })
}
