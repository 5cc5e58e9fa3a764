//! `irctl test`: let [`irctl::playtest::session`] find the playbooks'
//! tests, check and run them with canned results; print a table, the diff
//! of every failure, and optionally coverage and a JUnit report.

use anyhow::Context as _;

use super::context::Context;
use super::{EXIT_FAILED, EXIT_USAGE};
use crate::cli::TestArgs;
use crate::ui::Ui;
use irctl::diagnostic::Diagnostic;
use irctl::playtest::report;
use irctl::playtest::run::{Outcome, Verdict};
use irctl::playtest::session::{Counts, Plan, Session, TestRequest};

fn print_diagnostics(ui: &Ui, session: &Session, diags: &[&Diagnostic]) {
    for d in diags {
        ui.diagnostic(d, session.source(&d.file).as_deref());
    }
}

/// Runs `test`.
pub fn run(args: TestArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    // Test files are read from disk beside the playbooks; a Git source would
    // be silently ignored, so it is refused.
    if let Some(repo) = &args.repo {
        anyhow::bail!(
            "`irctl test` reads playbooks and their tests from a directory; it cannot use `--repo {}` (IRCTL_REPO): check the repository out and pass `--playbooks DIR`",
            irctl::source::auth::RemoteUrl::parse(repo)
                .map(|r| r.display)
                .unwrap_or_else(|_| "…".into())
        );
    }
    let session = Session::open(&TestRequest {
        root: &args.playbooks,
        names: &args.names,
    })?;
    let cases = match session.plan() {
        Plan::Unknown { broken, error } => {
            print_diagnostics(ui, &session, &broken);
            return Err(error);
        }
        Plan::Broken(broken) => {
            print_diagnostics(ui, &session, &broken);
            ui.errln(&format!(
                "{} error{} in playbooks or their tests; no test was run",
                broken.len(),
                if broken.len() == 1 { "" } else { "s" }
            ));
            return Ok(EXIT_USAGE);
        }
        Plan::Ready { cases, untested } => {
            for name in untested {
                ui.warn(&format!("playbook `{name}` has no tests"));
            }
            cases
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let catalog = load_catalog(ui, &args)?;
    let outcomes = runtime.block_on(session.run(&cases, catalog.as_ref()))?;

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
    print_notes(ui, &outcomes);
    for o in &outcomes {
        if !matches!(o.verdict, Verdict::Passed) {
            ui.outln("")?;
            ui.out(&report::render_failure(o))?;
        }
    }
    let counts = Counts::of(&outcomes);
    ui.outln("")?;
    ui.outln(&format!(
        "{} test{}: {} passed, {} failed, {} broken in {}ms",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        counts.passed,
        counts.failed,
        counts.errors,
        counts.total.as_millis()
    ))?;

    if args.coverage {
        print_coverage(ui, &session, &outcomes)?;
    }
    if let Some(path) = &args.report {
        irctl::fsutil::write_replacing(path, report::render_junit(&outcomes)?.as_bytes())?;
    }
    Ok(if counts.errors > 0 {
        EXIT_USAGE
    } else if counts.failed > 0 {
        EXIT_FAILED
    } else {
        0
    })
}

/// The catalog that aims team steps, as `irctl run` finds it: `--catalog`
/// (`IRCTL_CATALOG`), else `catalog-info.yaml` at the top of the playbook
/// folder. Unlike a run, which must go on without it, a test whose catalog
/// cannot be read stops (exit 2): it would test nobody's routing.
fn load_catalog(ui: &Ui, args: &TestArgs) -> anyhow::Result<Option<irctl::catalog::Catalog>> {
    let request = irctl::catalog::Request {
        playbooks: irctl::source::Spec::Dir(vec![args.playbooks.clone()]),
        catalog: args.catalog.clone().filter(|c| !c.is_empty()),
    };
    let catalog =
        irctl::catalog::load(&request).map_err(|e| e.context("cannot read the service catalog"))?;
    if let Some(c) = &catalog {
        let mut seen = std::collections::BTreeSet::new();
        for w in c.warnings.iter().filter(|w| seen.insert(*w)) {
            ui.warn(w);
        }
        let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
        if errors > 0 {
            ui.warn(&format!(
                "the service catalog {} has {errors} error{}; `irctl validate` shows them",
                c.origin,
                if errors == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(catalog)
}

/// What a run would have warned of — a team step that told nobody, a
/// channel skipped for want of its secret — once per playbook and warning,
/// naming the test (or counting the tests) it happened in.
fn print_notes(ui: &Ui, outcomes: &[Outcome]) {
    let mut notes: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for o in outcomes {
        for n in &o.notes {
            let playbook = o.case.playbook.as_str();
            match notes.iter_mut().find(|(p, m, _)| *p == playbook && *m == n) {
                Some((_, _, tests)) => tests.push(&o.case.name),
                None => notes.push((playbook, n, vec![&o.case.name])),
            }
        }
    }
    for (playbook, note, tests) in notes {
        let which = match tests.as_slice() {
            [one] => format!("{playbook} › {one}"),
            many => format!("{playbook} ({} tests)", many.len()),
        };
        ui.warn(&format!("{which}: {note}"));
    }
}

fn print_coverage(ui: &Ui, session: &Session, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let coverage = session.coverage(outcomes);
    ui.outln("")?;
    ui.outln(&format!(
        "coverage: {} of {} steps and branches exercised ({}%)",
        coverage.covered(),
        coverage.branches.len(),
        coverage.percent()
    ))?;
    let missing: Vec<_> = coverage.missing().collect();
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
