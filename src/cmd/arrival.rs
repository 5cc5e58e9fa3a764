//! What `irctl run` records and says about a payload's place in its episode
//! when that is not simply "run the playbook": a late copy of a resolved
//! incident, runs in flight told of a resolution, throttled playbooks, and a
//! resolution's or acknowledgement's announcement. Apart from `run.rs`,
//! which decides; these only report the decision.

use super::context::{Context, Indexed};
use irctl::lifecycle::throttle;
use irctl::lifecycle::{self, Arrival};
use irctl::record;
use irctl::secret::Redactor;

/// Tells the episode's runs in flight that a resolved payload arrived,
/// stopping those whose playbook says `cancel_on_resolve`, and says so.
pub(super) fn settle_in_flight(
    ctx: &Context,
    indexed: &mut Indexed,
    arrival: &Arrival,
    redactor: &Redactor,
) -> anyhow::Result<()> {
    let settled = lifecycle::settle_in_flight(
        ctx.state_dir(),
        arrival,
        ctx.actor(),
        |name| {
            indexed
                .load(&[name])
                .get(name)
                .is_some_and(|p| p.cancel_on_resolve)
        },
        lifecycle::CANCEL_GRACE,
    )?;
    for s in settled {
        let what = match s.stopped {
            None => "goes on; steps not yet started see `incident.resolved`",
            Some(lifecycle::Stopped::Cancelled) => "was cancelled (`cancel_on_resolve`)",
            Some(lifecycle::Stopped::Killed) => {
                "was killed: it did not stop within the grace period after SIGTERM (`cancel_on_resolve`)"
            }
        };
        ctx.ui
            .errln(&ctx.out_redacting(redactor.clone()).redact(&format!(
                "incident {} resolved while run {} (playbook {}) was in flight: the run {what}",
                arrival.incident.id, s.run.run_id, s.run.playbook
            )));
    }
    Ok(())
}

/// `warning` with a note that `--again` overrode the limit `t`.
pub(super) fn overridden_warning(warning: Option<String>, t: &throttle::Throttled) -> String {
    let next = t
        .next_run_at
        .map(|at| format!(" (the next run was allowed from {})", record::show_time(at)))
        .unwrap_or_default();
    let note = format!("throttle `{}` overridden with `--again`{next}", t.rule);
    match warning {
        Some(w) => format!("{w}; {note}"),
        None => note,
    }
}

/// Records and says that `playbook` was not run because `t` held.
pub(super) fn throttled(
    ctx: &Context,
    arrival: &Arrival,
    playbook: &str,
    t: &throttle::Throttled,
    redactor: &Redactor,
) -> anyhow::Result<()> {
    let at = ctx.run_clock().now();
    throttle::record(
        ctx.state_dir(),
        arrival,
        playbook,
        t,
        ctx.actor(),
        at,
        redactor.clone(),
    )?;
    let next = match t.next_run_at {
        Some(at) => format!(
            "; the next run is allowed from {} (`--again` runs it anyway)",
            record::show_time(at)
        ),
        None => "; no slot came free in time".to_string(),
    };
    let text = format!(
        "incident {} ({}): playbook {} is throttled by `{}`; recorded as `run_throttled`, not run{next}",
        arrival.incident.id,
        record::short_incident_id(&arrival.incident.id),
        playbook,
        t.rule
    );
    ctx.ui
        .errln(&ctx.out_redacting(redactor.clone()).redact(&text));
    Ok(())
}

/// Says on stderr what a resolved or acknowledged payload did to the record,
/// and whether anything runs for it.
pub(super) fn announce<T>(
    ctx: &Context,
    arrival: &Arrival,
    runs: &[T],
    force: bool,
    redactor: &Redactor,
) {
    let Some(done) = &arrival.recorded else {
        return;
    };
    let id = &arrival.incident.id;
    let short = record::short_incident_id(id);
    let recorded = match &done.already {
        Some(last) => format!(
            "already recorded at {}",
            record::event_time(last)
                .map(record::show_time)
                .unwrap_or_default()
        ),
        None => "recorded".to_string(),
    };
    let ran = if runs.is_empty() {
        "no playbook run"
    } else if force {
        "running the playbook anyway (`--force`)"
    } else {
        "running its playbook's `on_resolved` steps"
    };
    let text = format!(
        "incident {id} ({short}) {} at {}; {recorded}, {ran}",
        arrival.phase.as_str(),
        record::show_time(done.when),
    );
    ctx.ui
        .errln(&ctx.out_redacting(redactor.clone()).redact(&text));
}
/// What `irctl run` says of a firing payload that came after its episode
/// resolved but describes alerts that started before that: a delayed or
/// re-sent notification must not run a remediation for a resolved incident.
pub(super) fn late_copy(arrival: &Arrival) -> String {
    let stamp = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(irctl::timeline::stamp)
            .unwrap_or_else(|| "an unknown time".into())
    };
    format!(
        "incident `{}` resolved at {}, and this firing payload's newest alert started at {}, before that: a late copy of the resolved incident, not run (a new firing opens a new episode; `--force` runs it anyway)",
        arrival.incident.id,
        stamp(arrival.episode.resolved_at),
        stamp(arrival.incident.newest_firing_start()),
    )
}
