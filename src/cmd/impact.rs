//! The part of `irctl run` that aims `notify: { team: owner|impacted }`
//! steps at one incident's teams and records the impact notices sent, so
//! an episode tells each impacted team once.

use super::context::Context;
use irctl::engine;
use irctl::playbook::Playbook;
use irctl::record;
use irctl::secret::Redactor;

/// `playbook` with its `team: owner|impacted` steps aimed at the teams of
/// `incident` (`None` when it has none), and what that decided.
pub fn target_teams(
    ctx: &Context,
    incident_id: &str,
    playbook: &Playbook,
    incident: &irctl::incident::Incident,
) -> anyhow::Result<(Option<Playbook>, engine::team::Targets)> {
    let keyword = |s: &irctl::playbook::Step| {
        matches!(&s.action, irctl::playbook::StepAction::Notify(n)
            if n.team.as_ref().is_some_and(|t| irctl::teams::KEYWORDS.contains(&t.value.trim())))
    };
    if !playbook
        .steps
        .iter()
        .chain(&playbook.on_resolved)
        .any(keyword)
    {
        return Ok((None, engine::team::Targets::default()));
    }
    // Teams already told in this episode are not told again (a repeat
    // delivery, `--again`, a second routing playbook).
    let log = record::incident_log::read(ctx.state_dir(), incident_id)?;
    let noticed = log
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            // One that reached no channel does not count: a later run, with
            // the secret set, still tells the team.
            irctl::timeline::Payload::ImpactNotice(n) if !n.sent.is_empty() => Some(n.team.clone()),
            _ => None,
        })
        .collect();
    let file = ctx.secrets_file();
    let has_secret = |name: &str| {
        irctl::secret::resolve_optional(name, file)
            .ok()
            .flatten()
            .is_some()
    };
    let mut targeted = playbook.clone();
    let ownership = incident.ownership.as_deref();
    let targets = engine::team::target(&mut targeted, ownership, &noticed, &has_secret);
    for s in &targets.secrets {
        if !targeted.secrets.contains(s) {
            targeted.secrets.push(s.clone());
        }
    }
    Ok((Some(targeted), targets))
}

/// Records an `impact_notice` for each impacted team a finished step told
/// (or found no way to tell), so the episode never tells it twice.
pub fn record_notices(
    ctx: &Context,
    incident_id: &str,
    playbook: &Playbook,
    targets: &engine::team::Targets,
    result: &engine::RunResult,
    redactor: &Redactor,
) -> anyhow::Result<()> {
    for n in &targets.notices {
        let delivered = result
            .steps
            .iter()
            .any(|s| s.id.as_str() == n.step && s.status == engine::context::StepStatus::Succeeded);
        if !delivered {
            continue;
        }
        record::incident_log::append(
            ctx.state_dir(),
            incident_id,
            "",
            irctl::timeline::ImpactNotice {
                at: irctl::timeline::stamp(ctx.run_clock().now()),
                team: n.team.clone(),
                services: n.services.clone(),
                playbook: playbook.name.clone(),
                run: result.run_id.to_string(),
                step: n.step.clone(),
                sent: n.channels.clone(),
                skipped: n.skipped.clone(),
            },
            redactor.clone(),
        )?;
    }
    Ok(())
}
