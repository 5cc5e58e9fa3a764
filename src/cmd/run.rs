//! `irctl run`: choose the playbook, resolve secrets, run the engine with live
//! progress, print the summary, and exit with the run's outcome.

use std::sync::Arc;

use crate::cli::RunArgs;
use crate::cmd::execution::{self, cancel_on_signal};
use crate::cmd::{EXIT_FAILED, EXIT_INTERRUPTED, load_index, read_incident};
use crate::ui::{Paint, Tone, Ui};
use irctl::engine::{self, Confirmer, Observer, RunOptions, RunStatus, context::StepStatus};
use irctl::matching;
use irctl::playbook::Playbook;
use irctl::timeline::{Event, Payload, describe};

/// Runs `run`.
pub fn run(args: RunArgs, ui: &Ui) -> anyhow::Result<u8> {
    let incident = read_incident(&args.incident)?;
    let mut indexed = load_index(&args.source, ui)?;
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

    // Which playbooks, and the warning to record when one was forced. Only
    // those are then checked in full.
    let mut chosen: Vec<(String, Option<String>)> = Vec::new();
    if let Some(name) = &args.playbook {
        let Some(p) = index.get(name) else {
            return Err(execution::unknown_playbook(
                name,
                index.entries.iter().map(|p| p.name.as_str()),
            ));
        };
        let labels = incident.match_labels();
        let value = minijinja::Value::from_serialize(incident.to_template_value());
        let warning = matching::explain(p, &labels, &value)
            .map(|why| format!("playbook `{name}` does not match this incident ({why}); running it because it was named"));
        if let Some(w) = &warning {
            ui.warn(w);
        }
        chosen.push((name.clone(), warning));
    } else {
        let selection = matching::select(&index.entries, &incident);
        match selection.winners.as_slice() {
            [] => {
                ui.errln(&format!(
                    "error: no playbook matches incident `{}`; `irctl match` shows why each did not, `irctl run NAME` runs one anyway",
                    incident.id
                ));
                return Ok(EXIT_FAILED);
            }
            [_] => {}
            many if !args.all_matching => {
                ui.errln(&format!(
                    "error: {} playbooks tie for incident `{}`: {}; name one (`irctl run NAME`) or pass `--all-matching`",
                    many.len(),
                    incident.id,
                    many.join(", ")
                ));
                return Ok(EXIT_FAILED);
            }
            _ => {}
        }
        chosen.extend(selection.winners.into_iter().map(|name| (name, None)));
    }
    let names: Vec<&str> = chosen.iter().map(|(n, _)| n.as_str()).collect();
    let set = indexed.load(&names);
    let chosen: Vec<(&Playbook, Option<String>)> = chosen
        .iter()
        .map(|(name, warning)| match set.get(name) {
            Some(p) => Ok((p, warning.clone())),
            // Only when the cached summary was wrong about the file.
            None => Err(anyhow::anyhow!(
                "playbook `{name}` has errors; run `irctl validate` for details"
            )),
        })
        .collect::<anyhow::Result<_>>()?;

    let mut exit = 0u8;
    for (playbook, warning) in chosen {
        if args.dry_run {
            let secrets = execution::secrets(playbook, &args.exec).unwrap_or_default();
            let plan = engine::plan::plan(playbook, &incident, &inputs, &secrets, false)?;
            let ok = print_plan(ui, playbook, &plan)?;
            if !ok {
                exit = exit.max(EXIT_FAILED);
            }
            continue;
        }
        let secrets = execution::secrets(playbook, &args.exec)?;
        let opts = RunOptions {
            state_dir: execution::state_dir(&args.exec),
            concurrency: usize::from(args.exec.concurrency),
            yes: args.yes,
            verbose: args.exec.verbose,
            drill: false,
            executor: None,
            inputs: inputs.clone(),
            secrets,
            match_warning: warning,
            actor: irctl::env::actor(),
            deadline: None,
            resume: None,
        };
        let code = execute(ui, playbook, &incident, opts)?;
        exit = exit.max(code);
        if code == EXIT_INTERRUPTED {
            break;
        }
    }
    Ok(exit)
}

/// Runs the engine with live progress and prints the summary; the exit code of the run.
pub(crate) fn execute(
    ui: &Ui,
    playbook: &Playbook,
    incident: &irctl::incident::Incident,
    opts: RunOptions,
) -> anyhow::Result<u8> {
    let runtime = execution::runtime()?;
    let paint = ui.err_paint();
    let result = runtime.block_on(async {
        let cancel_rx = cancel_on_signal();
        let observer: Arc<dyn Observer> = Arc::new(Progress { ui: *ui, paint });
        let confirmer: Arc<dyn Confirmer> = Arc::new(TtyConfirmer { ui: *ui });
        engine::run(playbook, incident, opts, observer, confirmer, cancel_rx).await
    })?;
    // The runtime owns no process after the run; don't wait on stray blocking reads.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));

    let mut table = ui.table(&["STEP", "STATUS", "ATTEMPTS", "DURATION", "REASON"]);
    for s in &result.steps {
        table.add_row(vec![
            s.id.to_string(),
            s.status.as_str().to_string(),
            s.attempts.to_string(),
            irctl::duration::format(std::time::Duration::from_millis(s.duration_ms)),
            s.reason.clone().unwrap_or_default(),
        ]);
    }
    ui.outln(&table.to_string())?;
    ui.outln(&format!(
        "run {} {} in {}",
        result.run_id,
        result.status.as_str(),
        irctl::duration::format(result.duration)
    ))?;
    ui.outln(&format!("timeline: {}", result.timeline.display()))?;
    Ok(match result.status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed => EXIT_FAILED,
        // 130 is for a person or a supervisor stopping irctl; a deadline
        // (the playbook's `timeout`, a drill's `max_duration`) is the work
        // failing to get done in time.
        RunStatus::Cancelled
            if matches!(result.cancelled_by.as_deref(), Some("SIGINT" | "SIGTERM")) =>
        {
            EXIT_INTERRUPTED
        }
        RunStatus::Cancelled => EXIT_FAILED,
    })
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

/// An event's description laid out under a progress line: continuation
/// lines (a console notification's text, a multi-line error) indented, or
/// only the first line when `whole` is false (a step's script is in the
/// timeline; progress names it).
pub(crate) fn progress_words(e: &Event, whole: bool) -> String {
    let words = describe(e);
    if whole {
        return words.replace('\n', "\n    ");
    }
    match words.split_once('\n') {
        Some((first, _)) => format!("{first} \u{2026}"),
        None => words,
    }
}

/// Live progress on stderr.
struct Progress {
    ui: Ui,
    paint: Paint,
}

impl Observer for Progress {
    fn on_event(&self, e: &Event) {
        let p = self.paint;
        let step = e.step().unwrap_or_default();
        let words = progress_words(e, !matches!(e.payload, Payload::StepStarted(_)));
        let line = match &e.payload {
            Payload::RunStarted(_) => {
                // The run id goes to stdout first, so scripts can capture it.
                let _ = self.ui.outln(&format!("run {}", e.run_id));
                format!("{words} for incident {}", e.incident_id)
            }
            Payload::Warning(_) => p.paint(Tone::Warning, &format!("warning: {words}")),
            Payload::StepStarted(_) => {
                format!("  {} {step} {words}", p.paint(Tone::Running, "\u{25b8}"))
            }
            Payload::StepRetrying(_) => {
                format!("  {} {step} {words}", p.paint(Tone::Retrying, "\u{21bb}"))
            }
            Payload::StepFinished(f) if f.status == StepStatus::Succeeded => {
                format!("  {} {step} {words}", p.paint(Tone::Succeeded, "\u{2714}"))
            }
            Payload::StepFinished(_) => {
                format!("  {} {step} {words}", p.paint(Tone::Failed, "\u{2718}"))
            }
            Payload::StepSkipped(_) => format!("  {} {step} {words}", p.paint(Tone::Muted, "-")),
            Payload::StepSimulated(_) => {
                format!("  {} {step} {words}", p.paint(Tone::Simulated, "\u{2248}"))
            }
            Payload::Notification(_) => {
                format!("  {} {step} {words}", p.paint(Tone::Notified, "\u{2709}"))
            }
            Payload::Confirmation(_) => format!("  ? {step} {words}"),
            Payload::RunCancelled(_) => p.paint(Tone::Alarm, &format!("run {words}")),
            _ => return,
        };
        self.ui.errln(&line);
    }

    fn on_output(&self, step: &str, stream: &str, line: &str) {
        let tag = if stream == "stderr" {
            self.paint.paint(Tone::Retrying, "!")
        } else {
            self.paint.paint(Tone::Muted, "|")
        };
        self.ui.errln(&format!("    {tag} {step}: {line}"));
    }
}

/// Asks on the terminal; with no terminal, nobody can approve.
struct TtyConfirmer {
    ui: Ui,
}

impl Confirmer for TtyConfirmer {
    fn confirm(&self, step: &str, question: &str) -> Option<bool> {
        self.ui.ask(&format!("? [{step}] {question}"))
    }
}
