//! What `/metrics` shows, in the Prometheus text exposition format:
//! deliveries by source and outcome, the queue, runs in flight, how started
//! runs ended, the recorded runs by playbook and status, and — from what
//! each `irctl run` reported ([`super::outcome`]) — runs by playbook and
//! status, runs held back by reason (repeat, throttle), step durations by
//! playbook, step kind and status, and skipped steps by reason.
//!
//! Label values are escaped as the format requires, and their number is
//! bounded: sources are the built-in ones and the loaded mappings, step
//! kinds, statuses and reasons come from fixed lists (anything else is
//! `other`), and at most [`MAX_PLAYBOOKS`] playbook names are kept apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::outcome::Outcome;

/// Recorded runs by (playbook, status).
pub type RunCounts = BTreeMap<(String, String), u64>;

/// Playbook names kept as their own label value; later ones are `other`.
pub const MAX_PLAYBOOKS: usize = 256;

/// Upper bounds of the step duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0];

const KINDS: &[&str] = &["shell", "http", "notify"];
const STEP_STATUSES: &[&str] = &[
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "simulated",
];
const RUN_STATUSES: &[&str] = &["succeeded", "failed", "cancelled"];
const SKIP_REASONS: &[&str] = &[
    "when_false",
    "upstream_failed",
    "need_skipped",
    "nothing_failed",
    "run_cancelled",
    "earlier_attempt",
];
const HELD_REASONS: &[&str] = &[
    "repeat",
    "in_progress",
    "once_within",
    "max_runs",
    "concurrency",
    "not_auto",
];

/// `value` when it is one of `known`, else `other`.
fn known(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or("other")
}

/// One histogram series.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// What the runs reported.
#[derive(Debug, Default)]
struct Reported {
    playbooks: BTreeSet<String>,
    runs: BTreeMap<(String, &'static str), u64>,
    held: BTreeMap<(String, &'static str), u64>,
    steps: BTreeMap<(String, &'static str, &'static str), Histogram>,
    skips: BTreeMap<(String, &'static str), u64>,
}

impl Reported {
    /// `name` as a label value: itself while fewer than [`MAX_PLAYBOOKS`]
    /// names are known, else `other`.
    fn playbook(&mut self, name: &str) -> String {
        if self.playbooks.contains(name) {
            return name.to_string();
        }
        if self.playbooks.len() < MAX_PLAYBOOKS {
            self.playbooks.insert(name.to_string());
            return name.to_string();
        }
        "other".to_string()
    }

    fn add(&mut self, o: &Outcome) {
        let playbook = self.playbook(&o.playbook);
        match o.decision.as_str() {
            "ran" => {
                let status = known(o.status.as_deref().unwrap_or(""), RUN_STATUSES);
                *self.runs.entry((playbook.clone(), status)).or_default() += 1;
                for step in &o.steps {
                    let kind = known(&step.kind, KINDS);
                    let status = known(&step.status, STEP_STATUSES);
                    if let Some(reason) = &step.skip {
                        let reason = known(reason, SKIP_REASONS);
                        *self.skips.entry((playbook.clone(), reason)).or_default() += 1;
                    }
                    // A step that never started took no time worth a bucket.
                    if step.skip.is_none() {
                        self.steps
                            .entry((playbook.clone(), kind, status))
                            .or_default()
                            .observe(step.duration_ms as f64 / 1000.0);
                    }
                }
            }
            "repeat" | "in_progress" | "not_auto" => {
                let reason = known(&o.decision, HELD_REASONS);
                *self.held.entry((playbook, reason)).or_default() += 1;
            }
            "throttled" => {
                let reason = known(o.reason.as_deref().unwrap_or(""), HELD_REASONS);
                *self.held.entry((playbook, reason)).or_default() += 1;
            }
            _ => {}
        }
    }
}

/// Counters kept while serve runs.
#[derive(Debug, Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(String, &'static str), u64>>,
    exits: Mutex<BTreeMap<String, u64>>,
    reported: Mutex<Reported>,
    /// Runs started and not yet ended.
    pub in_flight: AtomicU64,
    /// Background fetches of a `--repo` source.
    pub git: GitRefresh,
}

/// Background fetches of a `--repo` source (see `serve::refresh`).
#[derive(Debug, Default)]
pub struct GitRefresh {
    enabled: AtomicBool,
    last_success: AtomicU64,
    failures: AtomicU64,
}

impl GitRefresh {
    /// Shows the refresh families (only a `--repo` source has them).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Records a fetch that succeeded now.
    pub fn succeeded(&self) {
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        self.last_success.store(now, Ordering::Relaxed);
    }

    /// Counts a fetch that failed.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        family(
            out,
            "irctl_serve_git_refresh_last_success_timestamp_seconds",
            "gauge",
            "When the playbook repository was last fetched successfully (Unix time).",
        );
        let _ = writeln!(
            out,
            "irctl_serve_git_refresh_last_success_timestamp_seconds {}",
            self.last_success.load(Ordering::Relaxed)
        );
        family(
            out,
            "irctl_serve_git_refresh_failures_total",
            "counter",
            "Background fetches of the playbook repository that failed.",
        );
        let _ = writeln!(
            out,
            "irctl_serve_git_refresh_failures_total {}",
            self.failures.load(Ordering::Relaxed)
        );
    }
}

impl Metrics {
    /// Counts one delivery to `source` (a built-in source's name or
    /// `mapping:NAME` of a loaded mapping) that ended as `outcome`
    /// (`accepted`, `duplicate`, `ignored`, `malformed`, `unauthorized`,
    /// `forbidden`, `too_large`, `queue_full`, `draining`, `store_error`).
    pub fn delivery(&self, source: &str, outcome: &'static str) {
        if let Ok(mut m) = self.deliveries.lock() {
            *m.entry((source.to_string(), outcome)).or_default() += 1;
        }
    }

    /// Counts what one `irctl run` reported.
    pub fn reported(&self, outcomes: &[Outcome]) {
        if let Ok(mut r) = self.reported.lock() {
            for o in outcomes {
                r.add(o);
            }
        }
    }

    /// Counts one run that ended as `outcome`.
    pub fn run_ended(&self, outcome: &str) {
        if let Ok(mut m) = self.exits.lock() {
            *m.entry(outcome.to_string()).or_default() += 1;
        }
    }

    /// The exposition text; `runs` are the recorded runs by (playbook, status).
    pub fn render(&self, depth: u64, runs: &RunCounts) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "irctl_serve_deliveries_total",
            "counter",
            "Deliveries received, by source and outcome.",
        );
        if let Ok(m) = self.deliveries.lock() {
            for ((source, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "irctl_serve_deliveries_total{{source=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(source)
                );
            }
        }
        family(
            &mut out,
            "irctl_serve_queue_depth",
            "gauge",
            "Deliveries stored and not yet processed.",
        );
        let _ = writeln!(out, "irctl_serve_queue_depth {depth}");
        family(
            &mut out,
            "irctl_serve_runs_in_flight",
            "gauge",
            "Runs started by serve and still running.",
        );
        let _ = writeln!(
            out,
            "irctl_serve_runs_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "irctl_serve_run_exits_total",
            "counter",
            "Runs started by serve, by how `irctl run` ended.",
        );
        if let Ok(m) = self.exits.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "irctl_serve_run_exits_total{{outcome=\"{}\"}} {n}",
                    label(outcome)
                );
            }
        }
        family(
            &mut out,
            "irctl_runs",
            "gauge",
            "Runs recorded in the state directory, by playbook and status.",
        );
        for ((playbook, status), n) in runs {
            let _ = writeln!(
                out,
                "irctl_runs{{playbook=\"{}\",status=\"{}\"}} {n}",
                label(playbook),
                label(status)
            );
        }
        if let Ok(r) = self.reported.lock() {
            render_reported(&mut out, &r);
        }
        self.git.render(&mut out);
        out
    }
}

fn render_reported(out: &mut String, r: &Reported) {
    family(
        out,
        "irctl_serve_runs_total",
        "counter",
        "Runs serve started, by playbook and how the run ended.",
    );
    for ((playbook, status), n) in &r.runs {
        let _ = writeln!(
            out,
            "irctl_serve_runs_total{{playbook=\"{}\",status=\"{status}\"}} {n}",
            label(playbook)
        );
    }
    family(
        out,
        "irctl_serve_runs_held_total",
        "counter",
        "Playbooks not run for a delivery, by reason: repeat, in_progress (repeats of an episode), once_within, max_runs, concurrency (throttles), not_auto (left to people).",
    );
    for ((playbook, reason), n) in &r.held {
        let _ = writeln!(
            out,
            "irctl_serve_runs_held_total{{playbook=\"{}\",reason=\"{reason}\"}} {n}",
            label(playbook)
        );
    }
    family(
        out,
        "irctl_serve_step_duration_seconds",
        "histogram",
        "How long the steps of runs serve started took, by playbook, step kind and status.",
    );
    for ((playbook, kind, status), h) in &r.steps {
        let labels = format!(
            "playbook=\"{}\",kind=\"{kind}\",status=\"{status}\"",
            label(playbook)
        );
        for (le, n) in BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(
                out,
                "irctl_serve_step_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "irctl_serve_step_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nirctl_serve_step_duration_seconds_sum{{{labels}}} {}\nirctl_serve_step_duration_seconds_count{{{labels}}} {}",
            h.count, h.sum, h.count
        );
    }
    family(
        out,
        "irctl_serve_steps_skipped_total",
        "counter",
        "Steps of runs serve started that did not run, by playbook and reason (when_false, upstream_failed, need_skipped, nothing_failed, run_cancelled).",
    );
    for ((playbook, reason), n) in &r.skips {
        let _ = writeln!(
            out,
            "irctl_serve_steps_skipped_total{{playbook=\"{}\",reason=\"{reason}\"}} {n}",
            label(playbook)
        );
    }
}

pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped as the exposition format requires.
pub(super) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::outcome::StepOutcome;

    #[test]
    fn renders_families_and_escapes_labels() {
        let m = Metrics::default();
        m.delivery("alertmanager", "accepted");
        m.delivery("alertmanager", "accepted");
        let mut runs = BTreeMap::new();
        runs.insert(("a\"b".to_string(), "succeeded".to_string()), 3);
        let text = m.render(4, &runs);
        assert!(text.contains(
            "irctl_serve_deliveries_total{source=\"alertmanager\",outcome=\"accepted\"} 2"
        ));
        assert!(text.contains("irctl_serve_queue_depth 4"));
        assert!(text.contains("irctl_runs{playbook=\"a\\\"b\",status=\"succeeded\"} 3"));
    }

    fn step(kind: &str, status: &str, ms: u64, skip: Option<&str>) -> StepOutcome {
        StepOutcome {
            kind: kind.into(),
            status: status.into(),
            duration_ms: ms,
            skip: skip.map(str::to_string),
        }
    }

    #[test]
    fn reported_runs_fill_bounded_escaped_families() {
        let m = Metrics::default();
        let hostile = "p\"}\n# TYPE x counter\\";
        m.delivery("mapping:dd\"x", "accepted");
        m.reported(&[
            Outcome {
                playbook: hostile.into(),
                decision: "ran".into(),
                reason: None,
                status: Some("succeeded".into()),
                steps: vec![
                    step("shell", "succeeded", 700, None),
                    step("shell", "succeeded", 20_000, None),
                    step("evil\"kind", "made-up", 5, None),
                    step("http", "skipped", 0, Some("when_false")),
                    step("http", "skipped", 0, Some("}{")),
                ],
            },
            Outcome::decided("q", "throttled", Some("max_runs")),
            Outcome::decided("q", "throttled", Some("\"injected")),
            Outcome::decided("q", "repeat", None),
        ]);
        let text = m.render(0, &BTreeMap::new());
        let p = "p\\\"}\\n# TYPE x counter\\\\";
        for want in [
            "irctl_serve_deliveries_total{source=\"mapping:dd\\\"x\",outcome=\"accepted\"} 1"
                .to_string(),
            format!("irctl_serve_runs_total{{playbook=\"{p}\",status=\"succeeded\"}} 1"),
            format!(
                "irctl_serve_step_duration_seconds_bucket{{playbook=\"{p}\",kind=\"shell\",status=\"succeeded\",le=\"1\"}} 1"
            ),
            format!(
                "irctl_serve_step_duration_seconds_bucket{{playbook=\"{p}\",kind=\"shell\",status=\"succeeded\",le=\"30\"}} 2"
            ),
            format!(
                "irctl_serve_step_duration_seconds_bucket{{playbook=\"{p}\",kind=\"shell\",status=\"succeeded\",le=\"+Inf\"}} 2"
            ),
            format!(
                "irctl_serve_step_duration_seconds_sum{{playbook=\"{p}\",kind=\"shell\",status=\"succeeded\"}} 20.7"
            ),
            format!(
                "irctl_serve_step_duration_seconds_count{{playbook=\"{p}\",kind=\"other\",status=\"other\"}} 1"
            ),
            format!("irctl_serve_steps_skipped_total{{playbook=\"{p}\",reason=\"when_false\"}} 1"),
            format!("irctl_serve_steps_skipped_total{{playbook=\"{p}\",reason=\"other\"}} 1"),
            "irctl_serve_runs_held_total{playbook=\"q\",reason=\"max_runs\"} 1".to_string(),
            "irctl_serve_runs_held_total{playbook=\"q\",reason=\"other\"} 1".to_string(),
            "irctl_serve_runs_held_total{playbook=\"q\",reason=\"repeat\"} 1".to_string(),
        ] {
            assert!(text.contains(&want), "missing {want}\nin\n{text}");
        }
        // No value breaks out of its line: every line is a comment or a sample.
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("irctl_"),
                "{line}"
            );
        }
    }

    #[test]
    fn playbook_labels_are_bounded() {
        let m = Metrics::default();
        let many: Vec<Outcome> = (0..MAX_PLAYBOOKS + 50)
            .map(|i| Outcome::decided(&format!("p{i}"), "repeat", None))
            .collect();
        m.reported(&many);
        let text = m.render(0, &BTreeMap::new());
        let series = text
            .lines()
            .filter(|l| l.starts_with("irctl_serve_runs_held_total{"))
            .count();
        assert_eq!(series, MAX_PLAYBOOKS + 1);
        assert!(
            text.contains("irctl_serve_runs_held_total{playbook=\"other\",reason=\"repeat\"} 50")
        );
    }
}
