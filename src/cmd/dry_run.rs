//! `irctl run --dry-run`: the plan of what each chosen playbook would run
//! (levels, rendered commands and requests), recording nothing. Apart from
//! `run.rs` because it shares only the choice of playbooks with a real run.

use super::context::{Context, with_ownership};
use super::{EXIT_FAILED, impact};
use crate::ui::Ui;
use irctl::engine;
use irctl::lifecycle::{self, Arrival, Steps};
use irctl::playbook::Playbook;

/// `--dry-run`: the plan of what would run, recording nothing.
pub(super) fn dry_run(
    ui: &Ui,
    ctx: &Context,
    arrival: &Arrival,
    chosen: &[(&Playbook, Option<String>, Option<usize>)],
    inputs: &[(String, String)],
    force: bool,
    catalog: Option<&irctl::catalog::Catalog>,
) -> anyhow::Result<u8> {
    let mut exit = 0u8;
    for (playbook, _, alert) in chosen {
        let view = alert.and_then(|i| arrival.incident.for_alert(i));
        let on_resolved;
        let playbook = match lifecycle::steps_for(arrival.phase, playbook, force) {
            Some(Steps::Main) => *playbook,
            Some(Steps::OnResolved) => {
                on_resolved = playbook.on_resolved_view();
                &on_resolved
            }
            None => {
                ui.errln(&format!(
                    "incident {} is {}: playbook {} would record it and run nothing (`--force` runs its steps)",
                    arrival.incident.id,
                    arrival.phase.as_str(),
                    playbook.name
                ));
                continue;
            }
        };
        let incident = view.as_ref().unwrap_or(&arrival.incident);
        let owned = with_ownership(incident, catalog, playbook, None);
        // The teams the run would tell, as it would choose them.
        let (targeted, _) = impact::target_teams(
            ctx,
            &arrival.incident.id,
            playbook,
            owned.as_ref().unwrap_or(incident),
        )?;
        let playbook = targeted.as_ref().unwrap_or(playbook);
        let secrets = ctx.secrets(playbook).unwrap_or_default();
        let plan = engine::plan::plan(
            playbook,
            owned.as_ref().unwrap_or(incident),
            inputs,
            &secrets,
            false,
            ctx.run_clock(),
        )?;
        if !print_plan(ui, playbook, &plan)? {
            exit = exit.max(EXIT_FAILED);
        }
    }
    Ok(exit)
}

/// Prints one playbook's plan; `false` when a step's action did not render.
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
