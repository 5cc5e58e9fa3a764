//! `irctl runs` and `irctl stats`: the state directory's runs — with the
//! attempts a throttle held back, the deliveries serve keeps waiting for a
//! slot, and with `--all` the repeats — as a table or JSON, and the
//! numbers across incidents.

use chrono::{DateTime, Utc};

use super::context::Context;
use crate::cli::{OutputFormat, RunsArgs, StatsArgs};
use irctl::lifecycle::held::{self, Row};
use irctl::record::{self, RunFilter, RunSummary, Scope, show_time, stats};

/// Runs `runs`.
pub fn runs(args: RunsArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let since = since(&args.since, ctx)?;
    let filter = RunFilter {
        incident: args.incident.as_deref(),
        playbook: args.playbook.as_deref(),
        since,
    };
    let store = ctx.open_store(filter.scope())?;
    // Serve's deliveries waiting for a slot are live state: a queue that
    // cannot be read leaves them out, with a warning, not the listing.
    let waiting = irctl::serve::sqlite::waiting(&store.dir).unwrap_or_else(|e| {
        ui.warn(&format!("{e:#}"));
        Vec::new()
    });
    let (rows, warnings) = held::list(&store, &filter, args.all, waiting)?;
    ctx.warn_all(&warnings);
    let out = ctx.out();
    match args.format {
        OutputFormat::Json => out.json(&serde_json::to_string_pretty(&rows)?)?,
        OutputFormat::Table => {
            let mut table = ui.table(&[
                "RUN", "INCIDENT", "PLAYBOOK", "STATUS", "STARTED", "DURATION", "DRILL",
            ]);
            for row in &rows {
                table.add_row(match row {
                    Row::Run(s) => run_row(s),
                    Row::Held(h) => vec![
                        "-".into(),
                        h.incident_file_id.clone(),
                        h.playbook.clone(),
                        h.describe(),
                        show_time(h.started),
                        "-".into(),
                        "no".into(),
                    ],
                });
            }
            if rows.is_empty() {
                ui.errln(&format!(
                    "no runs{} in `{}`",
                    if filter.is_active() {
                        " match these filters"
                    } else {
                        ""
                    },
                    store.dir.display()
                ));
            } else {
                out.line(&table.to_string())?;
            }
        }
    }
    Ok(0)
}

/// A run's row of the table.
fn run_row(s: &RunSummary) -> Vec<String> {
    let playbook = match &s.commit {
        Some(c) => format!("{}@{}", s.playbook, irctl::timeline::short_id(c, 8)),
        None => s.playbook.clone(),
    };
    vec![
        s.run_id.clone(),
        // The file-safe form: every `--incident` accepts it, and it needs
        // no shell quoting (`{}:{alertname="X"}` does).
        s.incident_file_id.clone(),
        playbook,
        s.status.clone(),
        s.started.map(show_time).unwrap_or_else(|| "-".into()),
        s.duration_ms
            .map(|ms| irctl::duration::format(std::time::Duration::from_millis(ms)))
            .unwrap_or_else(|| "-".into()),
        if s.drill { "yes" } else { "no" }.to_string(),
    ]
}

/// Runs `stats`.
pub fn stats(args: StatsArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = &ctx.ui;
    let since = since(&args.since, ctx)?;
    let store = ctx.open_store(Scope::All)?;
    let (s, warnings) = stats::compute(&store, since)?;
    ctx.warn_all(&warnings);
    let out = ctx.out();
    if args.format == OutputFormat::Json {
        return out.json(&serde_json::to_string_pretty(&s)?).map(|()| 0);
    }
    let span = |v: &Option<irctl::record::times::Span>| {
        v.as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_else(|| "-".into())
    };
    let mut table = ui.table(&[
        "INCIDENT", "TITLE", "RUNS", "TTD", "TTA", "TTM", "TTR", "STATUS", "DRILL",
    ]);
    for i in &s.incidents {
        table.add_row(vec![
            irctl::record::file_safe_id(&i.id),
            i.title.clone(),
            i.runs.to_string(),
            span(&i.time_to_detect),
            span(&i.time_to_acknowledge),
            span(&i.time_to_mitigate),
            span(&i.time_to_resolve),
            if i.resolved { "resolved" } else { "ongoing" }.to_string(),
            if i.drill { "yes" } else { "no" }.to_string(),
        ]);
    }
    if !s.incidents.is_empty() {
        out.line(&table.to_string())?;
        out.line("")?;
    }
    let counts = |m: &std::collections::BTreeMap<String, usize>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    out.line(&format!(
        "incidents: {} ({} resolved), drills: {}",
        s.real_incidents, s.resolved, s.drill_incidents
    ))?;
    out.line(&format!(
        "MTTD: {}   MTTA: {}   MTTM: {}   MTTR: {}   (drills excluded)",
        span(&s.mttd),
        span(&s.mtta),
        span(&s.mttm),
        span(&s.mttr)
    ))?;
    out.line(&format!("runs: {}", counts(&s.runs)))?;
    out.line(&format!("drill runs: {}", counts(&s.drill_runs)))?;
    Ok(0)
}

/// Parses an optional `--since` (see [`record::parse_since`]) by the
/// context's clock, as a usage error naming the flag.
fn since(flag: &Option<String>, ctx: &Context) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(text) = flag.as_deref() else {
        return Ok(None);
    };
    let t =
        record::parse_since(text, ctx.clock()?).map_err(|e| anyhow::anyhow!("`--since`: {e}"))?;
    Ok(Some(t))
}
