//! `irctl test`: find the playbooks' tests, run them with canned results,
//! print a table, the diff of every failure, and optionally coverage and a
//! JUnit report.

use anyhow::Context as _;

use super::context::Context;
use super::{EXIT_FAILED, EXIT_USAGE};
use crate::cli::TestArgs;
use crate::ui::Ui;
use irctl::diagnostic::{Diagnostic, did_you_mean};
use irctl::playbook::load;
use irctl::playtest::{self, report, run::Verdict};

fn print_diagnostics(ui: &Ui, diags: &[&Diagnostic], sources: &dyn Fn(&str) -> Option<String>) {
    for d in diags {
        ui.diagnostic(d, sources(&d.file).as_deref());
    }
}

/// Runs `test`.
pub fn run(args: TestArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    // Test files are read from disk beside the playbooks; a Git source would
    // be silently ignored, so it is refused.
    if let Some(repo) = &args.source.repo {
        anyhow::bail!(
            "`irctl test` reads playbooks and their tests from a directory; it cannot use `--repo {}` (IRCTL_REPO): check the repository out and pass `--playbooks DIR`",
            irctl::source::auth::RemoteUrl::parse(repo)
                .map(|r| r.display)
                .unwrap_or_else(|_| "…".into())
        );
    }
    let root = &args.source.playbooks;
    let set = load::load_paths(std::slice::from_ref(root))
        .with_context(|| format!("cannot load playbooks from `{}`", root.display()))?;
    let suite = playtest::collect(&set, root);
    let sources = |file: &str| {
        set.sources
            .get(file)
            .or_else(|| suite.sources.get(file))
            .cloned()
    };

    // Broken test files (and, when testing everything, broken playbooks) stop
    // the run: a test that cannot be read must not count as passing.
    let mut broken: Vec<&Diagnostic> = suite.diagnostics.iter().filter(|d| d.is_error()).collect();
    if args.names.is_empty() {
        broken.extend(set.diagnostics.iter().filter(|d| d.is_error()));
    }
    for name in &args.names {
        if set.get(name).is_none() {
            print_diagnostics(ui, &broken, &sources);
            let help = did_you_mean(name, set.playbooks.iter().map(|p| p.name.as_str()))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            anyhow::bail!("no valid playbook `{name}` in `{}`{help}", root.display());
        }
    }
    if !broken.is_empty() {
        print_diagnostics(ui, &broken, &sources);
        ui.errln(&format!(
            "{} error{} in playbooks or their tests; no test was run",
            broken.len(),
            if broken.len() == 1 { "" } else { "s" }
        ));
        return Ok(EXIT_USAGE);
    }

    let selected = |p: &str| args.names.is_empty() || args.names.iter().any(|n| n == p);
    let cases: Vec<&playtest::Case> = suite
        .cases
        .iter()
        .filter(|c| selected(&c.playbook))
        .collect();
    for name in &args.names {
        if !cases.iter().any(|c| &c.playbook == name) {
            ui.warn(&format!("playbook `{name}` has no tests"));
        }
    }
    if cases.is_empty() {
        anyhow::bail!(
            "no tests found in `{}`: add `tests:` to a playbook or a `NAME.test.yaml` next to it",
            root.display()
        );
    }

    // Runs leave timelines; they go to a throwaway directory, never the user's state.
    let state = tempfile::Builder::new()
        .prefix("irctl-test")
        .tempdir()
        .context("cannot create a temporary state directory")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcomes: Vec<playtest::run::Outcome> = runtime.block_on(async {
        let mut out = Vec::new();
        for case in &cases {
            if let Some(playbook) = set.get(&case.playbook) {
                out.push(playtest::run::run_case(playbook, case, state.path()).await);
            }
        }
        out
    });

    let mut table = ui.table(&["PLAYBOOK", "TEST", "RESULT", "DURATION"]);
    for o in &outcomes {
        let result = match o.verdict {
            Verdict::Passed => "ok",
            Verdict::Failed(_) => "FAILED",
            Verdict::Error(_) => "ERROR",
        };
        table.add_row(vec![
            o.case.playbook.clone(),
            o.case.name.clone(),
            result.to_string(),
            format!("{}ms", o.duration.as_millis()),
        ]);
    }
    ui.outln(&table.to_string())?;
    for o in &outcomes {
        if !matches!(o.verdict, Verdict::Passed) {
            ui.outln("")?;
            ui.out(&report::render_failure(o))?;
        }
    }
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Failed(_)))
        .count();
    let errors = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Error(_)))
        .count();
    let total: std::time::Duration = outcomes.iter().map(|o| o.duration).sum();
    ui.outln("")?;
    ui.outln(&format!(
        "{} test{}: {} passed, {failed} failed, {errors} broken in {}ms",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        outcomes.len() - failed - errors,
        total.as_millis()
    ))?;

    if args.coverage {
        print_coverage(ui, &set, &outcomes, &selected)?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report::render_junit(&outcomes)?)
            .with_context(|| format!("cannot write the report to `{}`", path.display()))?;
    }
    Ok(if errors > 0 {
        EXIT_USAGE
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        0
    })
}

fn print_coverage(
    ui: &Ui,
    set: &irctl::playbook::PlaybookSet,
    outcomes: &[playtest::run::Outcome],
    selected: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let mut branches = Vec::new();
    for p in set.playbooks.iter().filter(|p| selected(&p.name)) {
        let runs: Vec<&playtest::run::Outcome> = outcomes
            .iter()
            .filter(|o| o.case.playbook == p.name && o.status.is_some())
            .collect();
        branches.extend(report::coverage(p, &runs));
    }
    let covered = branches.iter().filter(|b| b.covered).count();
    ui.outln("")?;
    let percent = if branches.is_empty() {
        100
    } else {
        covered * 100 / branches.len()
    };
    ui.outln(&format!(
        "coverage: {covered} of {} steps and branches exercised ({percent}%)",
        branches.len()
    ))?;
    let missing: Vec<_> = branches.iter().filter(|b| !b.covered).collect();
    if !missing.is_empty() {
        let mut table = ui.table(&["PLAYBOOK", "STEP", "NOT EXERCISED", "WHY"]);
        for b in missing {
            table.add_row(vec![
                b.playbook.clone(),
                b.step.to_string(),
                b.branch.clone(),
                b.hint.clone(),
            ]);
        }
        ui.outln(&table.to_string())?;
    }
    Ok(())
}
