//! `irctl resume RUN_ID`: read the run back from its timeline, refuse what
//! must not be resumed (a succeeded run, a changed playbook without
//! `--force`, a repeat of a non-idempotent step nobody approved), and run the
//! rest through the engine, appending to the same timeline.
//! [`irctl::engine::resume::Plan`] decides what is reused and run again.

use super::context::Context;
use super::{EXIT_FAILED, live};
use crate::cli::ResumeArgs;
use irctl::engine::RunOptions;
use irctl::engine::resume::{self, Ended, Plan};
use irctl::id::StepId;
use irctl::timeline::{Approval, ResumeNote};

/// Runs `resume`.
pub fn run(args: ResumeArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let state_dir = ctx.state_dir().to_path_buf();
    let prior = resume::read(&state_dir, &args.run_id)?;
    if prior.ended == Ended::Succeeded {
        anyhow::bail!(
            "run `{}` succeeded; there is nothing to resume (start a new one with `irctl run`)",
            prior.run_id
        );
    }
    let set = ctx.load_playbooks(&args.source)?;
    let Some(playbook) = set.get(&prior.playbook) else {
        anyhow::bail!(
            "run `{}` ran playbook `{}`, which is not in `{}`",
            prior.run_id,
            prior.playbook,
            args.source.playbooks.display()
        );
    };
    let on_resolved;
    let playbook = if prior.ran_on_resolved(playbook) {
        on_resolved = playbook.on_resolved_view();
        &on_resolved
    } else {
        playbook
    };
    let mut note = ResumeNote {
        previous: Some(prior.ended.as_str().to_string()),
        ..ResumeNote::default()
    };
    // Reused steps are taken on the timeline's word: say so when that word
    // may have been edited, and keep the finding in the record.
    let timeline_key = ctx.timeline_key()?;
    if let Some(problem) =
        irctl::record::verify::verify_with(&prior.path, timeline_key.as_ref())?.problem
    {
        ui.warn(&format!(
            "the hash chain of run `{}` is broken ({}); the steps it records as succeeded may have been edited",
            prior.run_id, problem.message
        ));
        note.chain_broken = Some(problem.message);
    }
    if let Some(why) = resume::changed_playbook(&prior, playbook) {
        if !args.force {
            // From Git, the version that ran is one flag away.
            let pin = match (&args.source.repo, &prior.provenance.commit) {
                (Some(_), Some(commit)) => {
                    format!(", or `--ref {commit}` to resume with the version that ran")
                }
                _ => String::new(),
            };
            anyhow::bail!("{why}; pass `--force` to resume with the current file{pin}");
        }
        ui.warn(&format!("{why}; resuming with the current file (--force)"));
        note.forced = Some(true);
        note.recorded_provenance = Some(prior.provenance.clone());
    }
    // Refuse before asking anyone anything when the run is still going.
    drop(irctl::lock::acquire(
        &state_dir,
        &prior.incident.id,
        &playbook.name,
        &prior.run_id,
    )?);

    let actor = ctx.actor().to_string();
    let plan = Plan::of(&prior, playbook);
    let mut approvals = Vec::new();
    for step in resume::repeats_needing_approval(&prior, &plan.done, playbook) {
        let question = format!(
            "step `{}` is `idempotent: false` and already ran in an earlier attempt; run it again?",
            step.id
        );
        let via = if args.yes {
            "--yes"
        } else {
            match ui.ask(&format!("? {question}")) {
                Some(true) => "tty",
                Some(false) => {
                    ui.errln(&format!(
                        "error: re-running step `{}` was declined; nothing was resumed",
                        step.id
                    ));
                    return Ok(EXIT_FAILED);
                }
                None => {
                    ui.errln(&format!(
                        "error: step `{}` is `idempotent: false` and already ran in an earlier attempt of run `{}`; pass `--yes` to run it again (or resume from a terminal to be asked)",
                        step.id, prior.run_id
                    ));
                    return Ok(EXIT_FAILED);
                }
            }
        };
        approvals.push(Approval {
            step: step.id.clone(),
            by: actor.clone(),
            via: via.to_string(),
        });
    }
    if !approvals.is_empty() {
        note.approved_repeats = Some(approvals);
    }

    ui.errln(&format!(
        "resuming run {} (attempt {}, previous attempt {}): reusing {}; running {}",
        prior.run_id,
        prior.attempts + 1,
        prior.ended.as_str(),
        list(plan.done.keys()),
        list(plan.rerun.iter()),
    ));
    if prior.torn_tail {
        ui.warn("the timeline ends in a torn line (the process was killed mid-write); it is cut off before resuming");
    }

    // `team: owner|impacted` steps are aimed again at the incident's teams
    // (its ownership is read back from `run_started`), leaving out those
    // this episode already told, as `irctl run` does.
    let (targeted, targets) = if prior.drill {
        (None, irctl::engine::team::Targets::default())
    } else {
        super::impact::target_teams(ctx, &prior.incident.id, playbook, &prior.incident)?
    };
    let playbook = targeted.as_ref().unwrap_or(playbook);
    let secrets = ctx.secrets(playbook)?;
    let opts = RunOptions {
        state_dir,
        concurrency: usize::from(args.exec.concurrency),
        yes: args.yes,
        verbose: args.exec.verbose,
        drill: prior.drill,
        executor: None,
        inputs: plan.inputs.clone(),
        secrets,
        match_warning: (!targets.warnings.is_empty()).then(|| targets.warnings.join("; ")),
        actor,
        deadline: plan.deadline,
        resume: Some(plan.resume(&prior, note)),
        clock: ctx.run_clock(),
        timeline_key,
    };
    // Like `irctl run`, the run id comes first on stdout for scripts.
    ui.outln(&format!("run {}", prior.run_id))?;
    let wait = args.approval == crate::cli::ApprovalMode::Wait;
    let (code, result) = live::execute_reporting(ui, playbook, &prior.incident, opts, wait)?;
    let redactor = ctx.payload_redactor(&prior.incident);
    super::impact::record_notices(
        ctx,
        &prior.incident.id,
        playbook,
        &targets,
        &result,
        &redactor,
    )?;
    Ok(code)
}

fn list<'a>(items: impl Iterator<Item = &'a StepId>) -> String {
    let v: Vec<&str> = items.map(StepId::as_str).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}
