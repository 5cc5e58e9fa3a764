//! `irctl run`: choose the playbook, resolve secrets, run the engine with live
//! progress, print the summary, and exit with the run's outcome.

use std::io::Write;
use std::sync::Arc;

use crate::cli::RunArgs;
use crate::cmd::execution::{self, ask, cancel_on_signal};
use crate::cmd::{EXIT_FAILED, EXIT_INTERRUPTED, load_index, read_incident};
use crate::ui::Ui;
use irctl::engine::{self, Confirmer, Observer, RunOptions, RunStatus, context::StepStatus};
use irctl::matching;
use irctl::playbook::Playbook;
use irctl::record::str_field as field;
use irctl::timeline::Event;

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
        let value = irctl::template::value(incident.to_template_value());
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
            actor: actor(),
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

/// The login of whoever runs irctl, for the record.
pub fn actor() -> String {
    std::env::var("IRCTL_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs the engine with live progress and prints the summary; the exit code of the run.
pub(crate) fn execute(
    ui: &Ui,
    playbook: &Playbook,
    incident: &irctl::incident::Incident,
    opts: RunOptions,
) -> anyhow::Result<u8> {
    let runtime = execution::runtime()?;
    let color = ui.color_err();
    let result = runtime.block_on(async {
        let cancel_rx = cancel_on_signal();
        let observer: Arc<dyn Observer> = Arc::new(Progress { color });
        let confirmer: Arc<dyn Confirmer> = Arc::new(TtyConfirmer);
        engine::run(playbook, incident, opts, observer, confirmer, cancel_rx).await
    })?;
    // The runtime owns no process after the run; don't wait on stray blocking reads.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));

    let mut table = ui.table(&["STEP", "STATUS", "ATTEMPTS", "DURATION", "REASON"]);
    for s in &result.steps {
        table.add_row(vec![
            s.id.clone(),
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
                for l in describe_action(a).lines() {
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

fn describe_action(a: &serde_json::Value) -> String {
    if let Some(s) = a.get("shell").and_then(|v| v.as_str()) {
        return format!("$ {s}");
    }
    if let Some(argv) = a.get("command").and_then(|v| v.as_array()) {
        let words: Vec<String> = argv
            .iter()
            .map(|w| irctl::template::shell_quote(w.as_str().unwrap_or_default()))
            .collect();
        return format!("$ {}", words.join(" "));
    }
    if a.get("notify").and_then(|v| v.as_str()) == Some("console") {
        return format!(
            "console: {}",
            a.get("text").and_then(|v| v.as_str()).unwrap_or_default()
        );
    }
    let method = a.get("method").and_then(|v| v.as_str()).unwrap_or("GET");
    let url = a.get("url").and_then(|v| v.as_str()).unwrap_or_default();
    let mut out = match a.get("notify").and_then(|v| v.as_str()) {
        Some(service) => format!("{service}: {method} {url}"),
        None => format!("{method} {url}"),
    };
    if let Some(body) = a.get("body").and_then(|v| v.as_str()) {
        out.push_str(&format!("\nbody: {body}"));
    }
    out
}

/// Live progress on stderr.
struct Progress {
    color: bool,
}

impl Progress {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl Observer for Progress {
    fn on_event(&self, e: &Event) {
        let step = field(e, "step");
        let line = match e.kind.as_str() {
            "run_started" => {
                let commit = e
                    .data
                    .get("provenance")
                    .and_then(|p| p.get("commit"))
                    .and_then(|c| c.as_str())
                    .map(|c| format!("@{}", irctl::timeline::short_id(c, 8)))
                    .unwrap_or_default();
                // The run id goes to stdout first, so scripts can capture it.
                let _ = writeln!(std::io::stdout(), "run {}", e.run_id);
                format!(
                    "playbook {}{commit} for incident {}",
                    field(e, "playbook"),
                    e.incident_id
                )
            }
            "warning" => self.paint("1;33", &format!("warning: {}", field(e, "message"))),
            "step_started" => {
                let attempt = e.data.get("attempt").and_then(|a| a.as_u64()).unwrap_or(1);
                if attempt > 1 {
                    format!(
                        "  {} {step} (attempt {attempt})",
                        self.paint("36", "\u{25b8}")
                    )
                } else {
                    format!("  {} {step}", self.paint("36", "\u{25b8}"))
                }
            }
            "step_retrying" => format!(
                "  {} {step} attempt {} failed: {}; retrying in {}",
                self.paint("33", "\u{21bb}"),
                e.data.get("attempt").and_then(|a| a.as_u64()).unwrap_or(0),
                field(e, "error"),
                irctl::duration::format(std::time::Duration::from_millis(
                    e.data.get("delay_ms").and_then(|d| d.as_u64()).unwrap_or(0)
                ))
            ),
            "step_finished" => {
                let status = field(e, "status");
                let ms = e
                    .data
                    .get("duration_ms")
                    .and_then(|d| d.as_u64())
                    .unwrap_or(0);
                let took = irctl::duration::format(std::time::Duration::from_millis(ms));
                if status == StepStatus::Succeeded.as_str() {
                    format!("  {} {step} {took}", self.paint("32", "\u{2714}"))
                } else {
                    format!(
                        "  {} {step} {status}: {}",
                        self.paint("31", "\u{2718}"),
                        field(e, "error")
                    )
                }
            }
            "step_skipped" => format!(
                "  {} {step} {}: {}",
                self.paint("90", "-"),
                field(e, "status"),
                field(e, "reason")
            ),
            "step_simulated" => format!(
                "  {} {step} simulated (drill)",
                self.paint("35", "\u{2248}")
            ),
            "notification" if field(e, "target") == "console" => {
                let text = field(e, "text");
                let mut out = format!("  {} {step}:", self.paint("1;35", "\u{2709}"));
                for l in text.lines() {
                    out.push_str(&format!("\n    {l}"));
                }
                out
            }
            "notification" => format!("  \u{2709} {step}: sent to {}", field(e, "target")),
            "confirmation" => format!("  ? {step}: {} ({})", field(e, "answer"), field(e, "via")),
            "run_cancelled" => {
                self.paint("1;31", &format!("run cancelled: {}", field(e, "signal")))
            }
            _ => return,
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn on_output(&self, step: &str, stream: &str, line: &str) {
        let mut err = std::io::stderr().lock();
        let tag = if stream == "stderr" {
            self.paint("33", "!")
        } else {
            self.paint("90", "|")
        };
        let _ = writeln!(err, "    {tag} {step}: {line}");
    }
}

/// Asks on the terminal; with no terminal, nobody can approve.
struct TtyConfirmer;

impl Confirmer for TtyConfirmer {
    fn confirm(&self, step: &str, question: &str) -> Option<bool> {
        ask(&format!("? [{step}] {question}"))
    }
}
