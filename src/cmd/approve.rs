//! `irctl approve RUN_ID STEP [--deny]`: answer a `confirm` step that waits
//! for approval in another process (a run under `irctl serve`, or
//! `irctl run --approval wait`). The answer goes to a file the waiting run
//! picks up ([`irctl::approval`]); the run, the timeline's one writer,
//! records it. Refusals (not waiting, run gone, answered already) exit 1.

use super::EXIT_FAILED;
use super::context::Context;
use crate::cli::ApproveArgs;
use irctl::approval::{self, Answer, Refused};

/// Runs `approve`.
pub fn run(args: ApproveArgs, ctx: &Context) -> anyhow::Result<u8> {
    approval::check_step_id(&args.step)?;
    let run = irctl::record::resolve_run(ctx.state_dir(), &args.run_id)?;
    let answer = Answer {
        approved: !args.deny,
        by: ctx.actor().to_string(),
        via: if args.deny {
            "irctl approve --deny"
        } else {
            "irctl approve"
        }
        .into(),
        reason: args
            .reason
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(|r| ctx.redactor().redact(r)),
        at: irctl::timeline::stamp(ctx.run_clock().now()),
    };
    match approval::give(ctx.state_dir(), &run, &args.step, answer) {
        Ok(given) => {
            ctx.out().line(&format!(
                "{} step {} of run {} as {}: {}",
                if given.answer.approved {
                    "approved"
                } else {
                    "declined"
                },
                args.step,
                run,
                given.answer.by,
                given.request.question
            ))?;
            Ok(0)
        }
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            ctx.ui.error(&e);
            Ok(EXIT_FAILED)
        }
        Err(e) => Err(e),
    }
}
