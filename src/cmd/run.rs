//! `irctl run`: choose the playbook, resolve secrets, run the engine with live
//! progress, print the summary, and exit with the run's outcome.

use super::context::{Context, read_incident};
use super::{EXIT_FAILED, EXIT_INTERRUPTED, live};
use crate::cli::RunArgs;
use crate::ui::Ui;
use irctl::engine::{self, RunOptions};
use irctl::matching::{self, Choice};
use irctl::playbook::Playbook;

/// Runs `run`.
pub fn run(args: RunArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let mut indexed = ctx.load_index(&args.source)?;
    let incident = read_incident(&args.incident, ctx.run_clock(), &indexed.mappings)?;
    let index = &indexed.index;
    let inputs = args
        .inputs
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(anyhow::anyhow!(
                "invalid `--input {s}`: expected `name=value`"
            )),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Only the playbooks chosen are then checked in full.
    let chosen = match matching::choose(
        &index.entries,
        &incident,
        args.playbook.as_deref(),
        args.all_matching,
    ) {
        Choice::Run(chosen) => chosen,
        Choice::Unknown(name) => {
            return Err(irctl::playbook::unknown_playbook(
                &name,
                index.entries.iter().map(|p| p.name.as_str()),
            ));
        }
        Choice::NoMatch => {
            ui.errln(&format!(
                "error: no playbook matches incident `{}`; `irctl match` shows why each did not, `irctl run NAME` runs one anyway",
                incident.id
            ));
            return Ok(EXIT_FAILED);
        }
        Choice::Tie(many) => {
            ui.errln(&format!(
                "error: {} playbooks tie for incident `{}`: {}; name one (`irctl run NAME`) or pass `--all-matching`",
                many.len(),
                incident.id,
                many.join(", ")
            ));
            return Ok(EXIT_FAILED);
        }
    };
    for w in chosen.iter().filter_map(|c| c.warning.as_ref()) {
        ui.warn(w);
    }
    let mut names: Vec<&str> = chosen.iter().map(|c| c.playbook.as_str()).collect();
    // The runs of a per-alert playbook come together; load it once.
    names.dedup();
    let set = indexed.load(&names);
    let chosen: Vec<(&Playbook, Option<String>, Option<usize>)> = chosen
        .iter()
        .map(|c| match set.get(&c.playbook) {
            Some(p) => Ok((p, c.warning.clone(), c.alert)),
            // Only when the cached summary was wrong about the file.
            None => Err(anyhow::anyhow!(
                "playbook `{}` has errors; run `irctl validate` for details",
                c.playbook
            )),
        })
        .collect::<anyhow::Result<_>>()?;

    let mut exit = 0u8;
    for (playbook, warning, alert) in chosen {
        // A per-alert run sees the incident narrowed to its alert.
        let view = alert.and_then(|i| incident.for_alert(i));
        let incident = view.as_ref().unwrap_or(&incident);
        if args.dry_run {
            let secrets = ctx.secrets(playbook).unwrap_or_default();
            let plan = engine::plan::plan(
                playbook,
                incident,
                &inputs,
                &secrets,
                false,
                ctx.run_clock(),
            )?;
            let ok = print_plan(ui, playbook, &plan)?;
            if !ok {
                exit = exit.max(EXIT_FAILED);
            }
            continue;
        }
        let secrets = ctx.secrets(playbook)?;
        let opts = RunOptions {
            state_dir: ctx.state_dir().to_path_buf(),
            concurrency: usize::from(args.exec.concurrency),
            yes: args.yes,
            verbose: args.exec.verbose,
            drill: false,
            executor: None,
            inputs: inputs.clone(),
            secrets,
            match_warning: warning,
            actor: ctx.actor().to_string(),
            deadline: None,
            resume: None,
            clock: ctx.run_clock(),
        };
        let code = live::execute(ui, playbook, incident, opts)?;
        exit = exit.max(code);
        if code == EXIT_INTERRUPTED {
            break;
        }
    }
    Ok(exit)
}

fn print_plan(
    ui: &Ui,
    playbook: &Playbook,
    plan: &[engine::plan::PlannedStep],
) -> anyhow::Result<bool> {
    ui.outln(&format!(
        "plan for playbook {} (dry run: nothing is executed)",
        playbook.name
    ))?;
    let mut ok = true;
    let mut level = usize::MAX;
    for s in plan {
        if s.level != level {
            level = s.level;
            ui.outln(&format!("level {level}:"))?;
        }
        let mut line = format!("  {}", s.id);
        if !s.needs.is_empty() {
            line.push_str(&format!(" (needs {}; {})", s.needs.join(", "), s.trigger));
        }
        ui.outln(&line)?;
        if let Some(w) = &s.when {
            ui.outln(&format!("      when: {w}"))?;
        }
        if let Some(c) = &s.confirm {
            ui.outln(&format!("      confirm: {c}"))?;
        }
        match &s.action {
            Ok(a) => {
                for l in a.to_string().lines() {
                    ui.outln(&format!("      {l}"))?;
                }
            }
            Err(e) => {
                ok = false;
                ui.outln(&format!("      error: {e}"))?;
            }
        }
    }
    Ok(ok)
}
