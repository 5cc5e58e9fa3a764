//! `irctl run`: place the payload in its episode (recording a resolution or
//! an acknowledgement), choose the playbook, ask the lifecycle rule whether
//! it runs (a repeat or a resolution may not), resolve secrets, run the
//! engine with live progress, print the summary and the incident's id, and
//! exit with the run's outcome.
//!
//! Several playbooks may answer one incident: every matching `kind:
//! routing` playbook and the one remediation playbook. Each gets its own
//! run, timeline, repeat and throttle decision. They run one after the
//! other, routing first: routing playbooks only send messages (seconds),
//! so telling the owner and the impacted teams never waits behind a
//! remediation that may take many minutes, and the terminal shows one run's
//! progress at a time rather than two interleaved.

use super::arrival::{announce, late_copy, overridden_warning, settle_in_flight, throttled};
use super::context::{Context, read_incident, with_ownership};
use super::dry_run::dry_run;
use super::{EXIT_FAILED, EXIT_INTERRUPTED, impact, live};
use crate::cli::{ApprovalMode, RunArgs};
use irctl::engine::RunOptions;
use irctl::lifecycle::throttle::{self, Admission, NoWait};
use irctl::lifecycle::{self, Decision, Phase, Steps};
use irctl::matching::{self, Choice};
use irctl::playbook::Playbook;
use irctl::record;
use irctl::serve::outcome::{self, Outcome};

/// Runs `run`.
pub fn run(args: RunArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let mut indexed = ctx.load_index(&args.source)?;
    let incident = read_incident(&args.incident, ctx.run_clock(), &indexed.mappings)?;
    let catalog = ctx.load_catalog(&args.source, &[], false)?;
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

    let redactor = ctx.payload_redactor(&incident);
    let arrival = lifecycle::arrive(
        ctx.state_dir(),
        incident,
        ctx.actor(),
        ctx.run_clock(),
        redactor.clone(),
        !args.dry_run,
    )?;
    if arrival.late && !args.force {
        ui.errln(&late_copy(&arrival));
        if let Some(path) = &args.outcome_file
            && let Err(e) = outcome::append(path, &Outcome::decided("", outcome::LATE, None))
        {
            ui.warn(&format!("{e:#}"));
        }
        return Ok(0);
    }
    if !args.dry_run {
        settle_in_flight(ctx, &mut indexed, &arrival, &redactor)?;
    }
    let index = &indexed.index;
    let incident = &arrival.incident;
    let firing = arrival.phase == Phase::Firing || args.force;

    // Only the playbooks chosen are then checked in full.
    let chosen = match matching::choose(
        &index.entries,
        incident,
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
        // A resolution that no playbook answers is still recorded.
        Choice::NoMatch if !firing => Vec::new(),
        Choice::Tie(many) if !firing => many
            .into_iter()
            .map(|playbook| matching::Run {
                playbook,
                warning: None,
                alert: None,
                routing: false,
            })
            .collect(),
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
    let chosen_remediation = chosen.iter().any(|c| !c.routing);
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

    let report = |o: Outcome| {
        if let Some(path) = &args.outcome_file
            && let Err(e) = outcome::append(path, &o)
        {
            ui.warn(&format!("{e:#}"));
        }
    };
    // Unattended runs (`irctl serve`) start only playbooks that opted in;
    // leaving the others to people is what they asked for, not a failure.
    let mut exit = 0u8;
    let mut chosen: Vec<(&Playbook, Option<String>, Option<usize>)> = if args.auto_only {
        let (auto, mut manual): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|(p, _, _)| p.auto);
        manual.dedup_by(|a, b| a.0.name == b.0.name);
        for (playbook, _, _) in &manual {
            ui.errln(&format!(
                "note: playbook `{}` is not `auto: true`, so it is not run unattended; run it by hand with `irctl run {}`",
                playbook.name, playbook.name
            ));
            report(Outcome::decided(&playbook.name, outcome::NOT_AUTO, None));
        }
        auto
    } else {
        chosen
    };
    // A deferred delivery tried again: the other playbooks already ran.
    if !args.only_playbooks.is_empty() {
        chosen.retain(|(p, _, _)| args.only_playbooks.contains(&p.name));
    }

    if args.dry_run {
        let catalog = catalog.as_ref();
        return Ok(exit.max(dry_run(
            ui, ctx, &arrival, &chosen, &inputs, args.force, catalog,
        )?));
    }

    // Decide for every playbook first, so a resolution is announced once,
    // saying whether anything runs for it.
    let opts = lifecycle::Options {
        again: args.again,
        force: args.force,
    };
    let mut runs = Vec::new();
    // Under `--defer-slots`, a slot is taken before the run is counted, and
    // a playbook without one is left out whole (every alert of it).
    let mut deferred: Vec<&str> = Vec::new();
    let waiting_since = args
        .waiting_since
        .and_then(chrono::DateTime::from_timestamp_millis);
    for (playbook, warning, alert) in chosen {
        // A per-alert run sees the incident narrowed to its alert, and is
        // told apart from the other alerts' runs by that alert's key.
        let view = alert.and_then(|i| incident.for_alert(i));
        let alert_key = view.as_ref().and_then(|v| v.alert_key());
        match lifecycle::decide(
            ctx.state_dir(),
            &arrival,
            playbook,
            alert_key.as_deref(),
            opts,
        )? {
            Decision::Run {
                steps,
                forced,
                ticket,
            } => {
                let mut slot = None;
                if args.defer_slots
                    && steps == Steps::Main
                    && playbook.limits.concurrency.is_some()
                    && !runs
                        .iter()
                        .any(|r: &Admitted<'_>| r.0.name == playbook.name)
                {
                    if deferred.contains(&playbook.name.as_str()) {
                        continue;
                    }
                    let behind = args.behind.contains(&playbook.name);
                    let now = ctx.run_clock().now();
                    match throttle::slot_without_waiting(
                        ctx.state_dir(),
                        playbook,
                        behind,
                        waiting_since,
                        now,
                    )? {
                        NoWait::Slot(s) => slot = Some(s),
                        NoWait::Defer => {
                            deferred.push(&playbook.name);
                            report(Outcome::decided(
                                &playbook.name,
                                outcome::DEFERRED,
                                Some("concurrency"),
                            ));
                            ui.errln(&ctx.out_redacting(redactor.clone()).redact(&format!(
                                "incident {} ({}): playbook {} waits for a free slot (`concurrency: {}`); not run yet, tried again later",
                                incident.id,
                                record::short_incident_id(&incident.id),
                                playbook.name,
                                playbook.limits.concurrency.unwrap_or_default()
                            )));
                            continue;
                        }
                        NoWait::GiveUp(t) => {
                            drop(ticket);
                            throttled(ctx, &arrival, &playbook.name, &t, &redactor)?;
                            report(Outcome::decided(&playbook.name, "throttled", Some(t.kind)));
                            exit = exit.max(EXIT_FAILED);
                            continue;
                        }
                    }
                }
                // Throttles count remediation; a resolution's `on_resolved`
                // steps are neither held back nor counted.
                let admission = match steps {
                    Steps::Main => throttle::admit(
                        ctx.state_dir(),
                        playbook,
                        &incident.id,
                        ctx.run_clock().now(),
                        args.again,
                    )?,
                    Steps::OnResolved => Admission::Admitted { overridden: None },
                };
                match admission {
                    Admission::Admitted { overridden } => {
                        let warning = match overridden {
                            Some(t) => Some(overridden_warning(warning, &t)),
                            None => warning,
                        };
                        runs.push((playbook, warning, view, steps, forced, ticket, slot));
                    }
                    Admission::Throttled(t) => {
                        drop(ticket);
                        throttled(ctx, &arrival, &playbook.name, &t, &redactor)?;
                        report(Outcome::decided(&playbook.name, "throttled", Some(t.kind)));
                    }
                }
            }
            Decision::RecordOnly => {}
            Decision::Repeat { earlier } => {
                report(Outcome::decided(&playbook.name, "repeat", None));
                let at = ctx.run_clock().now();
                lifecycle::record_repeat(
                    ctx.state_dir(),
                    &arrival,
                    &playbook.name,
                    Some(&earlier.run_id),
                    ctx.actor(),
                    at,
                    redactor.clone(),
                )?;
                ui.errln(&ctx.out_redacting(redactor.clone()).redact(&format!(
                    "incident {} ({}): playbook {} already ran for this episode (run {}, {}); recorded as `alert_repeated`, not run again (`--again` runs it anyway)",
                    incident.id,
                    record::short_incident_id(&incident.id),
                    playbook.name,
                    earlier.run_id,
                    earlier.status
                )));
            }
            Decision::InProgress => {
                let what = format!(
                    "incident {} ({}): playbook {} is being run by another `irctl run` right now",
                    incident.id,
                    record::short_incident_id(&incident.id),
                    playbook.name,
                );
                let what = ctx.out_redacting(redactor.clone()).redact(&what);
                report(Outcome::decided(&playbook.name, "in_progress", None));
                if args.again {
                    ui.errln(&format!("error: {what}; wait for it to finish"));
                    exit = exit.max(EXIT_FAILED);
                    continue;
                }
                let at = ctx.run_clock().now();
                lifecycle::record_repeat(
                    ctx.state_dir(),
                    &arrival,
                    &playbook.name,
                    None,
                    ctx.actor(),
                    at,
                    redactor.clone(),
                )?;
                ui.errln(&format!(
                    "{what}; recorded as `alert_repeated`, not run again"
                ));
            }
        }
    }
    announce(ctx, &arrival, &runs, args.force, &redactor);
    if !chosen_remediation && firing && !runs.is_empty() {
        ui.warn(&format!(
            "no remediation playbook matches incident `{}`; running its routing playbooks only",
            incident.id
        ));
    }
    let teams = indexed.teams();

    for (playbook, warning, view, steps, forced, ticket, slot) in runs {
        let incident = view.as_ref().unwrap_or(incident);
        let owned = with_ownership(incident, catalog.as_ref(), playbook, teams.as_ref());
        let incident = owned.as_ref().unwrap_or(incident);
        if let Some(w) = &warning {
            ui.warn(w);
        }
        let mut warnings: Vec<String> = warning.into_iter().collect();
        let (targeted, targets) =
            impact::target_teams(ctx, &arrival.incident.id, playbook, incident)?;
        let playbook = targeted.as_ref().unwrap_or(playbook);
        // Shown with the run's other warnings as it starts.
        warnings.extend(targets.warnings.iter().cloned());
        if forced {
            warnings.push(format!(
                "forced (`--force`): the playbook's steps ran for a {} payload",
                arrival.phase.as_str()
            ));
        }
        let on_resolved;
        let playbook = match steps {
            Steps::Main => playbook,
            Steps::OnResolved => {
                on_resolved = playbook.on_resolved_view();
                &on_resolved
            }
        };
        let secrets = ctx.secrets(playbook)?;
        // Held until the run has finished, like the ticket.
        let slot = match slot {
            Some(slot) => Some(slot),
            None => throttle::take_slot(ctx.state_dir(), playbook, throttle::slot_wait(playbook))?,
        };
        let Some(slot) = slot else {
            let t = throttle::concurrency_held(playbook);
            throttled(ctx, &arrival, &playbook.name, &t, &redactor)?;
            report(Outcome::decided(&playbook.name, "throttled", Some(t.kind)));
            exit = exit.max(EXIT_FAILED);
            continue;
        };
        if let Some(waited) = slot.waited {
            warnings.push(format!(
                "waited {} for a free slot (`concurrency: {}`)",
                irctl::duration::format(waited),
                playbook.limits.concurrency.unwrap_or_default()
            ));
        }
        let opts = RunOptions {
            state_dir: ctx.state_dir().to_path_buf(),
            concurrency: usize::from(args.exec.concurrency),
            yes: args.yes,
            verbose: args.exec.verbose,
            drill: false,
            executor: None,
            inputs: inputs.clone(),
            secrets,
            match_warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
            actor: ctx.actor().to_string(),
            deadline: None,
            resume: None,
            clock: ctx.run_clock(),
            timeline_key: ctx.timeline_key()?,
        };
        let wait = args.approval == ApprovalMode::Wait;
        let (code, result) = live::execute_reporting(ui, playbook, incident, opts, wait)?;
        drop(slot);
        drop(ticket);
        report(Outcome::ran(
            playbook,
            result.status.as_str(),
            &result.steps,
        ));
        impact::record_notices(
            ctx,
            &arrival.incident.id,
            playbook,
            &targets,
            &result,
            &redactor,
        )?;
        ctx.out_redacting(redactor.clone()).line(&format!(
            "incident: {} (short id {})",
            incident.id,
            record::short_incident_id(&incident.id)
        ))?;
        exit = exit.max(code);
        if code == EXIT_INTERRUPTED {
            break;
        }
    }
    if !deferred.is_empty() && exit == 0 {
        exit = outcome::EXIT_DEFERRED;
    }
    Ok(exit)
}

/// A run decided and admitted: its playbook, warning, incident view,
/// steps, whether forced, its ticket, and the slot taken for it already.
type Admitted<'a> = (
    &'a Playbook,
    Option<String>,
    Option<irctl::incident::Incident>,
    Steps,
    bool,
    lifecycle::Ticket,
    Option<throttle::Slot>,
);
