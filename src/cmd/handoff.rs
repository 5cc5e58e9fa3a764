//! `irctl handoff`, `handoff accept` and `handoff remind`: give an incident
//! to another team with its whole story (see `irctl::handoff`), record that
//! the team took it, and announce again what nobody took.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use super::context::{Context, source_spec};
use super::{EXIT_FAILED, EXIT_USAGE};
use crate::cli::{HandoffAcceptArgs, HandoffArgs, HandoffCommand, HandoffRemindArgs, SourceArgs};
use irctl::engine::team::{self, Delivery, Outgoing};
use irctl::handoff::{self, Acceptance, Due, packet};
use irctl::record::ownership::open_handoff;
use irctl::record::{self, Scope, incident_log, postmortem, short_incident_id, show_time};
use irctl::secret::Secret;
use irctl::teams::{Channel, Team, Teams};
use irctl::timeline::{Handoff, HandoffReminded, Sent, stamp};

/// Runs `handoff` and its subcommands.
pub fn run(args: HandoffArgs, ctx: &Context) -> anyhow::Result<u8> {
    match args.command {
        Some(HandoffCommand::Accept(a)) => accept(a, ctx),
        Some(HandoffCommand::Remind(a)) => remind(a, ctx),
        None => send(args, ctx),
    }
}

/// The teams of the playbook source the flags name.
fn load_teams(args: &SourceArgs) -> anyhow::Result<Teams> {
    let read = irctl::source::read(&source_spec(args, &[])?)?;
    let (teams, diags, _) = read.teams();
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        anyhow::bail!(
            "the teams file has errors (first: {}:{}:{}: {}); run `irctl validate`",
            d.file,
            d.line,
            d.column,
            d.message
        );
    }
    teams.with_context(|| {
        format!(
            "no teams file (`{}`) in the playbook folder; it says how each team is reached",
            irctl::teams::FILES.join("` or `")
        )
    })
}

/// Sends `message` to `channels` of `team` with the secrets they name.
fn deliver(
    ctx: &Context,
    team: &Team,
    channels: &[&Channel],
    message: &Outgoing,
    secrets: &BTreeMap<String, Secret>,
) -> anyhow::Result<Vec<Sent>> {
    let redactor = ctx.redactor_with(secrets);
    let message = Outgoing {
        title: redactor.redact(&message.title),
        text: redactor.redact(&message.text),
        dedup_key: message.dedup_key.clone(),
        buttons: message.buttons.clone(),
    };
    let deliveries = team::send(
        team,
        channels,
        &message,
        secrets,
        &redactor,
        ctx.run_clock(),
    )?;
    Ok(deliveries.iter().map(sent).collect())
}

fn sent(d: &Delivery) -> Sent {
    Sent {
        target: d.service.as_str().to_string(),
        http_status: d.http_status,
        error: d.error.clone(),
    }
}

/// Prints how each channel answered; whether every one took the message.
fn report(ctx: &Context, sent: &[Sent]) -> bool {
    let mut ok = true;
    for s in sent {
        match &s.error {
            Some(e) => {
                ok = false;
                ctx.ui
                    .warn(&format!("{} did not take the message: {e}", s.target));
            }
            None => ctx.ui.errln(&format!(
                "sent to {}{}",
                s.target,
                s.http_status
                    .map(|c| format!(" (HTTP {c})"))
                    .unwrap_or_default()
            )),
        }
    }
    ok
}

/// `irctl handoff --incident ID --to TEAM`.
fn send(args: HandoffArgs, ctx: &Context) -> anyhow::Result<u8> {
    let (Some(query), Some(to)) = (&args.incident, &args.to) else {
        anyhow::bail!("name the incident (`--incident ID`) and the team (`--to TEAM`)");
    };
    let remind_after = args
        .remind_after
        .as_deref()
        .map(|d| {
            irctl::duration::parse(d)
                .map_err(|e| anyhow::anyhow!("`--remind-after`: {e}"))
                .and_then(|d| {
                    if d.is_zero() {
                        anyhow::bail!("`--remind-after` must be longer than zero")
                    }
                    Ok(d)
                })
        })
        .transpose()?;
    let clock = ctx.clock()?;
    let id = ctx.incident_id(query, true)?;
    let teams = load_teams(&args.source)?;
    let team = teams.get(to).map_err(anyhow::Error::msg)?;
    let secrets = ctx.resolve_secrets(&team.secrets())?;
    let store = ctx.open_store(Scope::Incident(&id))?;
    let (pm, warnings) = postmortem::build(&store, &id, clock, ctx.timeline_key()?.as_ref())?;
    ctx.warn_all(&warnings);
    let now = clock.now();
    let by = ctx.actor().to_string();
    let at = stamp(now);
    let packet = packet::build(
        &pm,
        &packet::Request {
            team,
            by: &by,
            message: args.message.as_deref(),
            at: &at,
        },
    );
    let redactor = ctx.redactor_with(&secrets);
    let markdown = redactor.redact(&packet.markdown);
    let path = match &args.out {
        Some(p) => p.clone(),
        None => packet_path(&store.dir, &id, now),
    };
    write_packet(&path, &markdown)?;
    let channels = team.announce_channels();
    let outgoing = Outgoing {
        title: packet.title.clone(),
        text: markdown,
        dedup_key: None,
        buttons: vec![handoff::accept_button(&id, &team.reference, &at)],
    };
    let sent = deliver(ctx, team, &channels, &outgoing, &secrets)?;
    let delivered = report(ctx, &sent);
    let event = incident_log::append(
        &store.dir,
        &id,
        "",
        Handoff {
            at,
            by,
            to: team.reference.clone(),
            message: args.message.clone(),
            sent,
            packet: Some(path.display().to_string()),
            remind_after_ms: remind_after.map(|d| d.as_millis() as u64),
        },
        redactor,
    )?;
    let short = short_incident_id(&id);
    ctx.out().line(&format!(
        "handed incident {id} ({short}) to {} (event {}); packet: {}",
        team.reference,
        event.seq,
        path.display()
    ))?;
    ctx.ui.errln(&format!(
        "the team owns it once it accepts: irctl handoff accept --incident {short} --as NAME"
    ));
    Ok(if delivered { 0 } else { EXIT_FAILED })
}

/// Where the packet goes by default: beside the incident's log.
fn packet_path(
    state_dir: &std::path::Path,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> PathBuf {
    let log = incident_log::path(state_dir, id);
    let dir = log
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.to_path_buf());
    dir.join(format!("handoff-{}.md", now.format("%Y%m%dT%H%M%SZ")))
}

fn write_packet(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    irctl::fsutil::write_replacing(path, text.as_bytes())
}

/// `irctl handoff accept --incident ID --as NAME`.
fn accept(args: HandoffAcceptArgs, ctx: &Context) -> anyhow::Result<u8> {
    let clock = ctx.clock()?;
    let id = ctx.incident_id(&args.incident, true)?;
    let log = incident_log::read(ctx.state_dir(), &id)?;
    ctx.warn_all(&log.warnings);
    let by = ctx.actor().to_string();
    match handoff::accept(
        ctx.state_dir(),
        &id,
        &by,
        Some(handoff::VIA_CLI),
        clock.now(),
        ctx.redactor(),
        None,
    )? {
        Acceptance::Accepted { accepted, latency } => {
            let team = accepted.team;
            ctx.out().line(&format!(
                "{by} accepted incident {id} for {team} after {}; {team} owns it now",
                irctl::duration::format(latency)
            ))?;
            Ok(0)
        }
        Acceptance::Already { by, team } => {
            ctx.ui.errln(&format!(
                "the hand-off to {team} was already accepted by {by}"
            ));
            Ok(EXIT_USAGE)
        }
        Acceptance::NoneOpen | Acceptance::Unknown | Acceptance::Superseded { .. } => {
            ctx.ui.errln(&format!(
                "incident {id} has no hand-off waiting for acceptance (`irctl handoff --incident {} --to TEAM` offers one)",
                short_incident_id(&id)
            ));
            Ok(EXIT_USAGE)
        }
    }
}

/// `irctl handoff remind`: for each open hand-off, what is due now, sent
/// once — under a per-incident lock, and recorded before the lock is let go.
fn remind(args: HandoffRemindArgs, ctx: &Context) -> anyhow::Result<u8> {
    let clock = ctx.clock()?;
    let ids = match &args.incident {
        Some(q) => vec![ctx.incident_id(q, true)?],
        None => incident_log::logged_ids(ctx.state_dir())?,
    };
    let mut teams: Option<Teams> = None;
    let mut exit = 0;
    let mut done = 0;
    for id in ids {
        let lock = lock_incident(ctx.state_dir(), &id)?;
        let log = incident_log::read(ctx.state_dir(), &id)?;
        ctx.warn_all(&log.warnings);
        let Some((event, handoff)) = open_handoff(&log.events) else {
            continue;
        };
        if teams.is_none() {
            teams = Some(load_teams(&args.source)?);
        }
        let Some(team) = teams.as_ref().and_then(|t| t.get(&handoff.to).ok()) else {
            ctx.ui.warn(&format!(
                "incident {id}: team `{}` is no longer in the teams file; not reminded",
                handoff.to
            ));
            continue;
        };
        let now = clock.now();
        let Some(due) = handoff::reminder_due(&log.events, event, handoff, team, now) else {
            continue;
        };
        let secrets = ctx.resolve_secrets(&team.secrets())?;
        let short = short_incident_id(&id);
        let waited = record::parse_time(&handoff.at)
            .and_then(|t| (now - t).to_std().ok())
            .unwrap_or_default();
        let (channels, reminder, escalated) = match due {
            Due::Remind(n) => (team.announce_channels(), n, false),
            Due::Escalate => (team.pager_channels(), 0, true),
        };
        let packet_note = handoff
            .packet
            .as_deref()
            .map(|p| format!(" The hand-off packet: {p}."))
            .unwrap_or_default();
        let outgoing = Outgoing {
            title: format!(
                "Not accepted after {}: incident {short} handed to {}",
                irctl::duration::format(waited),
                team.display_name()
            ),
            text: format!(
                "{} handed incident `{id}` to {} at {} and nobody has accepted it yet.{packet_note} Accept it: `irctl handoff accept --incident {short} --as NAME`",
                handoff.by, team.reference, handoff.at
            ),
            dedup_key: escalated.then(|| {
                format!(
                    "irctl-handoff-{}-{}",
                    &incident_log::id_hash(&id)[..16],
                    event.seq
                )
            }),
            buttons: vec![handoff::accept_button(&id, &handoff.to, &handoff.at)],
        };
        let sent = deliver(ctx, team, &channels, &outgoing, &secrets)?;
        if !report(ctx, &sent) {
            exit = EXIT_FAILED;
        }
        incident_log::append(
            ctx.state_dir(),
            &id,
            "",
            HandoffReminded {
                at: stamp(now),
                team: team.reference.clone(),
                handoff: event.seq,
                reminder,
                escalated,
                sent,
            },
            ctx.redactor_with(&secrets),
        )?;
        drop(lock);
        done += 1;
        ctx.out().line(&format!(
            "incident {id} ({short}): hand-off to {} {} at {}",
            team.reference,
            if escalated {
                "escalated to its pagers".to_string()
            } else {
                format!("announced again (reminder {reminder})")
            },
            show_time(now)
        ))?;
    }
    if done == 0 {
        ctx.ui.errln("no hand-off is due for a reminder");
    }
    Ok(exit)
}

/// Held while one incident's reminder is decided, sent and recorded, so two
/// `remind` runs at once never send the same reminder twice.
struct IncidentLock {
    _file: std::fs::File,
}

fn lock_incident(state_dir: &std::path::Path, id: &str) -> anyhow::Result<IncidentLock> {
    let name = format!("handoff-{}.lock", &incident_log::id_hash(id)[..24]);
    let path = state_dir.join("locks").join(name);
    let file = irctl::lock::open(&path)?;
    // Sending may take a while (three channels, retries): wait longer than for a note.
    irctl::lock::lock_within(&file, &path, std::time::Duration::from_secs(120))?;
    Ok(IncidentLock { _file: file })
}
