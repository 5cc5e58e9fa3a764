//! `irctl drill`: choose the drills (named, `--all`, or `--due` by schedule),
//! run each through [`irctl::drill`], record them, print the table, write the
//! report, and exit 1 when any failed.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::Timelike as _;
use tokio::sync::watch;

use super::context::{Context, unknown_playbook};
use super::live::{self, DrillProgress};
use super::{EXIT_FAILED, EXIT_INTERRUPTED};
use crate::cli::{DrillArgs, DrillReportFormat};
use crate::ui::Ui;
use irctl::clock::Clock;
use irctl::drill::due::{self, Notice, Record};
use irctl::drill::report::{self, Format};
use irctl::drill::{self as drills, DrillOptions, Outcome};
use irctl::engine::Observer;
use irctl::playbook::Playbook;

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
    if args.names.is_empty() && !args.all && !args.due {
        anyhow::bail!("name the playbooks to drill, or pass `--all` or `--due`");
    }
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
    let set = ctx.load_playbooks(&args.source)?;
    let state_dir = ctx.state_dir();
    // An unusable state dir is the host's problem, not the drills': say so
    // once (exit 2) instead of failing every drill with it (exit 1).
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot use state directory `{}`", state_dir.display()))?;

    let mut _batch = None;
    let chosen: Vec<&Playbook> = if args.due {
        let Some(lock) = due::try_batch_lock(state_dir)? else {
            ui.errln(&format!(
                "another `irctl drill --due` is running (`{}` is locked); leaving the due drills to it",
                state_dir.join(due::BATCH_LOCK).display()
            ));
            // No report either: the running batch writes its own, maybe to the same file.
            return Ok(0);
        };
        _batch = Some(lock);
        let state = due::load(state_dir)?;
        let selection = due::select(&set.playbooks, &state, state_dir, now);
        for notice in &selection.notices {
            match notice {
                Notice::Info(line) => ui.errln(line),
                Notice::Warning(line) => ui.warn(line),
            }
        }
        selection.due
    } else if args.all {
        set.playbooks.iter().filter(|p| p.drill.is_some()).collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.names {
            let Some(p) = set.get(name) else {
                return Err(unknown_playbook(
                    name,
                    set.playbooks.iter().map(|p| p.name.as_str()),
                ));
            };
            chosen.push(p);
        }
        chosen
    };
    // Unattended batches must not pass over a playbook file they could not
    // read: it is a drill that cannot run, so the batch fails until it is fixed.
    let broken: Vec<Outcome> = if args.all || args.due {
        let mut files = set.broken_files();
        files.sort_unstable();
        files.into_iter().map(Outcome::unreadable).collect()
    } else {
        Vec::new()
    };
    if chosen.is_empty() && broken.is_empty() {
        ui.errln(if args.due {
            "no drill is due"
        } else {
            "no playbook has a `drill` section"
        });
        write_report(ui, &args, format, &[])?;
        return Ok(0);
    }

    let runtime = live::runtime()?;
    let outcomes = runtime.block_on(async {
        let cancel_rx = live::cancel_on_signal();
        let mut outcomes = broken;
        for p in chosen {
            let outcome = drill_one(&args, ctx, &set.playbooks, p, cancel_rx.clone()).await;
            if !outcome.interrupted
                && let Err(e) = due::record(state_dir, &p.name, Record::of(&outcome, now))
            {
                ui.warn(&format!("{e:#}"));
            }
            let stop = outcome.interrupted;
            outcomes.push(outcome);
            if stop {
                break;
            }
        }
        outcomes
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));

    print_table(ui, &outcomes)?;
    write_report(ui, &args, format, &outcomes)?;
    Ok(if outcomes.iter().any(|o| o.interrupted) {
        EXIT_INTERRUPTED
    } else if outcomes.iter().any(|o| !o.passed) {
        EXIT_FAILED
    } else {
        0
    })
}

async fn drill_one(
    args: &DrillArgs,
    ctx: &Context,
    all: &[Playbook],
    playbook: &Playbook,
    cancel: watch::Receiver<Option<String>>,
) -> Outcome {
    let drill = match drills::preflight(all, playbook) {
        Ok(d) => d,
        Err(reason) => return Outcome::refused(playbook, reason),
    };
    let secrets = match ctx.secrets(playbook) {
        Ok(s) => s,
        Err(e) => return Outcome::refused(playbook, format!("{e:#}")),
    };
    let opts = DrillOptions {
        state_dir: ctx.state_dir().to_path_buf(),
        concurrency: usize::from(args.exec.concurrency),
        secrets,
        actor: ctx.actor().to_string(),
        verbose: args.exec.verbose,
        clock: ctx.run_clock(),
    };
    let observer: Arc<dyn Observer> = Arc::new(DrillProgress {
        ui: ctx.ui,
        verbose: args.exec.verbose,
    });
    drills::run(playbook, drill, opts, observer, cancel).await
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
