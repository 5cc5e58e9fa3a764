//! The run's output budget: how much step output one run stores in all.
//!
//! Each stream of a step is already cut at 1 MiB as it is read, but a run of
//! a thousand chatty steps would still write gigabytes to its timeline and
//! fill the disk it needs for the record. Past [`RUN_OUTPUT_CAP`] bytes of
//! stored output (stdout, stderr and HTTP bodies together), each stream keeps
//! only its first [`SPENT_KEEP`] bytes, with a marker saying so. The cut is
//! made before the output is recorded or handed to later steps, so
//! templates see what the timeline holds, and a resumed run the same.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::context::StepOutput;
use crate::secret::Redactor;

/// Bytes of step output one run stores in all before cutting harder.
pub const RUN_OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// What each stream still keeps once the run's budget is spent.
pub const SPENT_KEEP: usize = 4 * 1024;

/// What one run has left to store.
#[derive(Debug)]
pub(crate) struct Budget {
    left: AtomicUsize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            left: AtomicUsize::new(RUN_OUTPUT_CAP),
        }
    }
}

impl Budget {
    /// Charges `output` to the budget, cutting each stream that does not fit
    /// (never inside a secret `redactor` knows).
    pub(crate) fn charge(&self, output: &mut StepOutput, redactor: &Redactor) {
        let body_cut = self.cut(&mut output.body, "body", redactor);
        if body_cut {
            output.json = serde_json::Value::Null;
        }
        self.cut(&mut output.stdout, "output", redactor);
        self.cut(&mut output.stderr, "output", redactor);
    }

    /// Takes `text` out of the budget; when it does not fit, keeps what
    /// does (at least [`SPENT_KEEP`] bytes) and says so. Whether it was cut.
    /// The head kept past the budget is not charged: it is bounded by the
    /// number of steps.
    fn cut(&self, text: &mut String, what: &str, redactor: &Redactor) -> bool {
        let len = text.len();
        let mut granted = 0;
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                granted = len.min(left);
                Some(left - granted)
            });
        let keep = granted.max(SPENT_KEEP);
        if len <= keep {
            return false;
        }
        let mut at = redactor.safe_cut(text.as_bytes(), keep);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push_str(&format!(
            "\n[irctl: {what} truncated: the run's {} MiB output budget is spent]",
            RUN_OUTPUT_CAP / (1024 * 1024)
        ));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::context::StepStatus;

    fn output(stdout: &str) -> StepOutput {
        let mut o = StepOutput::empty(StepStatus::Succeeded);
        o.stdout = stdout.to_string();
        o
    }

    #[test]
    fn output_within_the_budget_is_kept_whole_and_past_it_cut_with_a_marker() {
        let budget = Budget {
            left: AtomicUsize::new(SPENT_KEEP * 3),
        };
        let redactor = Redactor::default();
        let mut first = output(&"a".repeat(SPENT_KEEP * 2));
        budget.charge(&mut first, &redactor);
        assert_eq!(first.stdout.len(), SPENT_KEEP * 2);
        // Half fits; the rest is cut at what is left.
        let mut second = output(&"b".repeat(SPENT_KEEP * 2));
        budget.charge(&mut second, &redactor);
        assert!(second.stdout.starts_with(&"b".repeat(SPENT_KEEP)));
        assert!(
            second
                .stdout
                .ends_with("[irctl: output truncated: the run's 16 MiB output budget is spent]")
        );
        // Spent: each stream still keeps its head.
        let mut third = output(&"é".repeat(SPENT_KEEP));
        third.body = "{\"a\": 1}".repeat(SPENT_KEEP);
        third.json = serde_json::json!({"a": 1});
        budget.charge(&mut third, &redactor);
        assert!(third.stdout.starts_with(&"é".repeat(SPENT_KEEP / 2)));
        assert!(third.stdout.len() < SPENT_KEEP + 100);
        assert!(third.body.contains("[irctl: body truncated"));
        assert_eq!(third.json, serde_json::Value::Null);
        let mut small = output("ok");
        budget.charge(&mut small, &redactor);
        assert_eq!(small.stdout, "ok");
    }

    #[test]
    fn the_cut_never_splits_a_secret() {
        let budget = Budget {
            left: AtomicUsize::new(0),
        };
        let secret = "s3cr3t-value-xyz";
        let redactor = Redactor::new([&crate::secret::Secret::new(secret)]);
        let text = format!("{}{secret}tail", "x".repeat(SPENT_KEEP - 4));
        let mut o = output(&text);
        budget.charge(&mut o, &redactor);
        assert!(
            !o.stdout.contains("s3cr"),
            "{}",
            &o.stdout[SPENT_KEEP - 10..]
        );
    }
}
