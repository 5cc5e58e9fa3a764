//! `irctl drill`: build the batch request from the flags, let
//! [`irctl::drill::batch`] choose the drills (named, `--all`, or `--due` by
//! schedule) and run them, then print the table, write the report, and exit
//! 1 when any failed.

use anyhow::Context as _;
use chrono::Timelike as _;

use super::context::{Context, with_ownership};
use super::impact;
use super::live::{self, DrillProgress};
use super::{EXIT_FAILED, EXIT_INTERRUPTED};
use crate::cli::{DrillArgs, DrillReportFormat};
use crate::ui::Ui;
use irctl::clock::Clock;
use irctl::drill::Outcome;
use irctl::drill::batch::{self, BatchRequest, Choice, Selection, Verdict};
use irctl::drill::due::Notice;
use irctl::drill::report::{self, Format};

/// Runs `drill`.
pub fn run(args: DrillArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let clock = match &args.now {
        Some(text) => Clock::fixed_at(text, "--now")?,
        None => ctx.clock()?,
    };
    let now = clock.now();
    // Whole seconds: cron slots are whole minutes, and the record reads better.
    let now = now.with_nanosecond(0).unwrap_or(now);
    let selection = if args.due {
        Selection::Due
    } else if args.all {
        Selection::All
    } else if !args.names.is_empty() {
        Selection::Named(&args.names)
    } else {
        anyhow::bail!("name the playbooks to drill, or pass `--all` or `--due`");
    };
    let explicit = args.report_format.map(|f| match f {
        DrillReportFormat::Junit => Format::Junit,
        DrillReportFormat::Json => Format::Json,
    });
    let format = Format::choose(explicit, args.report.as_deref())?;
    if let Some(path) = &args.report {
        report::check_destination(path)?;
    }
    // Likewise an unreadable or malformed `--secrets-file`: it is the same
    // file for every drill (a secret a playbook lacks still fails only its drill).
    ctx.resolve_secrets(&[])?;
    let (set, teams) = ctx.load_playbooks_and_teams(&args.source)?;
    let catalog = ctx.load_catalog(&args.source, &[], false)?;
    let state_dir = ctx.state_dir();
    // An unusable state dir is the host's problem, not the drills': say so
    // once (exit 2) instead of failing every drill with it (exit 1).
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot use state directory `{}`", state_dir.display()))?;

    let chosen = match batch::choose(&set, selection, state_dir, now)? {
        Choice::Chosen(chosen) => chosen,
        Choice::Busy(lock) => {
            ui.errln(&format!(
                "another `irctl drill --due` is running (`{}` is locked); leaving the due drills to it",
                lock.display()
            ));
            // No report either: the running batch writes its own, maybe to the same file.
            return Ok(0);
        }
    };
    for notice in &chosen.notices {
        match notice {
            Notice::Info(line) => ui.errln(line),
            Notice::Warning(line) => ui.warn(line),
        }
    }
    if chosen.is_empty() {
        ui.errln(if args.due {
            "no drill is due"
        } else {
            "no playbook has a `drill` section"
        });
        write_report(ui, &args, format, &[])?;
        return Ok(0);
    }

    let secrets = |p: &irctl::playbook::Playbook| ctx.secrets(p);
    let warn = |line: &str| ui.warn(line);
    // A drill exercises the routing too: its team steps reach the teams a
    // real alert like its incident would (through `drill.notify` when set).
    // No impact notice is recorded, so a drill never stops a real episode
    // from telling a team.
    let aim = |playbook: &irctl::playbook::Playbook, incident: &irctl::incident::Incident| {
        let owned = with_ownership(incident, catalog.as_ref(), playbook, teams.as_ref());
        let aimed = owned.as_ref().unwrap_or(incident);
        let (targeted, targets) = impact::target_teams(ctx, &aimed.id, playbook, aimed)?;
        for w in &targets.warnings {
            ui.warn(&format!("drill `{}`: {w}", playbook.name));
        }
        Ok((targeted, owned))
    };
    let request = BatchRequest {
        all: &set.playbooks,
        state_dir,
        now,
        concurrency: usize::from(args.exec.concurrency),
        verbose: args.exec.verbose,
        actor: ctx.actor(),
        clock: ctx.run_clock(),
        secrets: &secrets,
        aim: &aim,
        timeline_key: ctx.timeline_key()?,
        observer: std::sync::Arc::new(DrillProgress {
            ui: ctx.ui,
            verbose: args.exec.verbose,
        }),
        warn: &warn,
    };
    let runtime = live::runtime()?;
    // The signal handler needs the runtime, so it starts inside it.
    let outcomes =
        runtime.block_on(async { batch::run(request, chosen, live::cancel_on_signal()).await });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));

    print_table(ui, &outcomes)?;
    write_report(ui, &args, format, &outcomes)?;
    Ok(match batch::verdict(&outcomes) {
        Verdict::Interrupted => EXIT_INTERRUPTED,
        Verdict::Failed => EXIT_FAILED,
        Verdict::Passed => 0,
    })
}

fn print_table(ui: &Ui, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let fmt = irctl::duration::format;
    let mut table = ui.table(&[
        "PLAYBOOK",
        "RESULT",
        "DURATION",
        "MAX",
        "FAILED STEP",
        "RUN",
    ]);
    for o in outcomes {
        table.add_row(vec![
            o.playbook.clone(),
            if o.passed { "passed" } else { "failed" }.to_string(),
            fmt(o.duration),
            o.max_duration.map(fmt).unwrap_or_else(|| "-".into()),
            o.failed_step.as_deref().unwrap_or("-").to_string(),
            o.run_id.as_deref().unwrap_or("-").to_string(),
        ]);
    }
    ui.outln(&table.to_string())?;
    for o in outcomes.iter().filter(|o| !o.passed) {
        ui.outln(&format!(
            "{}: {}",
            o.playbook,
            o.reason.as_deref().unwrap_or("failed")
        ))?;
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    ui.outln(&format!(
        "{} drill{}: {} passed, {failed} failed",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        outcomes.len() - failed
    ))?;
    Ok(())
}

fn write_report(
    ui: &Ui,
    args: &DrillArgs,
    format: Option<Format>,
    outcomes: &[Outcome],
) -> anyhow::Result<()> {
    let (Some(path), Some(format)) = (&args.report, format) else {
        return Ok(());
    };
    report::write(path, format, outcomes)?;
    ui.errln(&format!("report: {}", path.display()));
    Ok(())
}
