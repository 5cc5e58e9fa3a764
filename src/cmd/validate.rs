//! `irctl validate`: load, check, print findings in the requested format.

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::cmd::{EXIT_FAILED, source};
use crate::ui::Ui;
use irctl::diagnostic::{self, Summary};
use irctl::source::Spec;

/// Runs `validate`.
pub fn run(args: ValidateArgs, ui: &Ui) -> anyhow::Result<u8> {
    let loaded = source::load(&args.source, &args.paths, ui)?;
    // Cross-file checks need the whole set, even when only changes are reported.
    let changed = match &args.changed_since {
        Some(base) => Some(loaded.changed_since(base)?),
        None => None,
    };
    let mut set = loaded.set;
    // Drill cross-checks only matter when validating, not on every `run`.
    let drill_findings = irctl::drill::lint::check(&set.playbooks);
    set.diagnostics.extend(drill_findings);
    // Sibling `NAME.test.yaml` files are checked too, so a broken test fails
    // CI here already. (From a directory: `irctl test` reads tests from disk.)
    let dirs = match source::spec(&args.source, &args.paths)? {
        Spec::Dir(paths) => paths,
        Spec::Git(_) => Vec::new(),
    };
    for path in dirs.iter().filter(|p| p.is_dir()) {
        let tests = irctl::playtest::collect(&set, path);
        set.diagnostics.extend(tests.diagnostics);
        set.sources.extend(tests.sources);
    }
    if let (Some(changed), Some(base)) = (&changed, &args.changed_since) {
        ui.errln(&format!(
            "note: reporting findings for {} of {} playbook files (changed since `{base}`)",
            changed.len(),
            set.files.len()
        ));
        set.diagnostics.retain(|d| changed.contains(&d.file));
        set.files.retain(|f| changed.contains(f));
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
