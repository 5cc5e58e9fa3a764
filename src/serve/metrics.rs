//! What `/metrics` shows, in the Prometheus text exposition format:
//! deliveries by source and outcome, the queue, runs in flight, how started
//! runs ended, and the recorded runs by playbook and status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Recorded runs by (playbook, status).
pub type RunCounts = BTreeMap<(String, String), u64>;

/// Counters kept while serve runs.
#[derive(Debug, Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    exits: Mutex<BTreeMap<String, u64>>,
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
    /// Counts one delivery to `source` that ended as `outcome`
    /// (`accepted`, `duplicate`, `ignored`, `malformed`, `unauthorized`,
    /// `forbidden`, `too_large`, `queue_full`, `draining`, `store_error`).
    pub fn delivery(&self, source: &'static str, outcome: &'static str) {
        if let Ok(mut m) = self.deliveries.lock() {
            *m.entry((source, outcome)).or_default() += 1;
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
                    "irctl_serve_deliveries_total{{source=\"{source}\",outcome=\"{outcome}\"}} {n}"
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
        self.git.render(&mut out);
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped as the exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
