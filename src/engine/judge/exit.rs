//! How a process's end becomes an attempt: its exit status, its captured
//! output, and a timeout or cancellation that stopped it.

use super::{failure, text};
use crate::engine::Attempt;
use crate::engine::context::{StepOutput, StepStatus};
use crate::engine::response::ProcessRun;

/// Exit 0 succeeds; any other exit fails and may be retried.
pub(super) fn process(run: ProcessRun) -> Attempt {
    let mut output = StepOutput::empty(StepStatus::Failed);
    output.stdout = text(run.stdout, "output");
    output.stderr = text(run.stderr, "output");
    output.duration_ms = run.duration.as_millis() as u64;
    let exit = match run.end {
        Ok(exit) => exit,
        Err(stopped) => {
            output.exit_code = stopped.exit.and_then(|e| e.code);
            return failure(output, stopped.error);
        }
    };
    // A signal shows as the shell's `128 + n`, so `steps.X.exit_code` is always set.
    output.exit_code = exit.code.or(exit.signal.map(|s| 128 + s));
    match exit.code {
        Some(0) => Attempt::ok(output),
        Some(code) => Attempt::failed(output, format!("exited with status {code}"), true),
        None => Attempt::failed(output, "killed by a signal".into(), true),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixture::{exited, judge, shell, stopped, verdict};
    use crate::engine::context::StepStatus;
    use crate::engine::response::{Captured, Exit, StepError};

    #[test]
    fn exit_zero_succeeds_with_its_output() {
        let a = judge(&shell(), exited(Some(0), None, Captured::text("ok\n")));
        assert_eq!(verdict(&a), (StepStatus::Succeeded, None, false));
        assert_eq!(a.output.status, StepStatus::Succeeded);
        assert_eq!(a.output.exit_code, Some(0));
        assert_eq!(
            (a.output.stdout.as_str(), a.output.stderr.as_str()),
            ("ok\n", "warn\n")
        );
        assert_eq!(a.output.duration_ms, 12);
    }

    #[test]
    fn a_non_zero_exit_fails_and_may_be_retried() {
        let a = judge(&shell(), exited(Some(3), None, Captured::default()));
        assert_eq!(
            verdict(&a),
            (StepStatus::Failed, Some("exited with status 3"), true)
        );
        assert_eq!(a.output.status, StepStatus::Failed);
        assert_eq!(a.output.exit_code, Some(3));
        assert_eq!(a.retry_after, None);
    }

    #[test]
    fn a_signal_shows_as_128_plus_its_number() {
        let a = judge(&shell(), exited(None, Some(9), Captured::default()));
        assert_eq!(
            verdict(&a),
            (StepStatus::Failed, Some("killed by a signal"), true)
        );
        assert_eq!(a.output.exit_code, Some(137));
    }

    #[test]
    fn truncated_output_says_so() {
        let big = Captured {
            bytes: b"abc".to_vec(),
            truncated: true,
        };
        let a = judge(&shell(), exited(Some(0), None, big));
        assert_eq!(a.output.stdout, "abc\n[irctl: output truncated at 1 MiB]");
    }

    #[test]
    fn a_timeout_times_out_keeps_partial_output_and_may_be_retried() {
        let exit = Exit {
            code: Some(143),
            signal: None,
        };
        let a = judge(
            &shell(),
            stopped(
                StepError::Timeout {
                    after: Duration::from_secs(20),
                },
                Some(exit),
            ),
        );
        assert_eq!(
            verdict(&a),
            (StepStatus::TimedOut, Some("timed out after 20.0s"), true)
        );
        assert_eq!(a.output.status, StepStatus::TimedOut);
        assert_eq!(a.output.exit_code, Some(143));
        assert_eq!(a.output.stdout, "partial\n");
        // Killed by our SIGTERM: the signal is not an exit code of the step's own.
        let killed = Exit {
            code: None,
            signal: Some(15),
        };
        let after = Duration::from_millis(300);
        let a = judge(
            &shell(),
            stopped(StepError::Timeout { after }, Some(killed)),
        );
        assert_eq!(a.output.exit_code, None);
        assert_eq!(a.error.as_deref(), Some("timed out after 300ms"));
    }
}
