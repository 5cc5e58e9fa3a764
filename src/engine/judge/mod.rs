//! The one place that decides how an attempt ended.
//!
//! Executors and `irctl test`'s canned stand-in only report a
//! [`Response`]; [`judge`] turns it, with the rendered [`Action`], into an
//! [`Attempt`]: its status, the outputs later steps read (`steps.X.*`), the
//! message users see, whether a retry may help and how long a server asked
//! us to wait. Every rule lives here once, so a test's canned answer ends
//! exactly as the same answer from a real process or server would.
//!
//! The rules for a process's end are in `exit.rs`, for a server's answer in
//! `reply.rs`; the errors both share are classified here.

use super::Attempt;
use super::action::Action;
use super::context::{StepOutput, StepStatus};
use super::notify::Notification;
use super::response::{Captured, Response, StepError};
use crate::secret::Redactor;

mod exit;
#[cfg(test)]
mod fixture;
mod reply;

/// The outcome of one execution of `action` that produced `response`.
/// `redactor` masks the secrets in the server's words quoted in a message
/// before they are cut to a snippet, so the cut cannot leave part of one.
pub fn judge(action: &Action, response: Response, redactor: &Redactor) -> Attempt {
    match response {
        Response::Process(run) => exit::process(run),
        Response::Http(answer) => reply::http(action, answer, redactor),
        Response::Shown => {
            let mut output = StepOutput::empty(StepStatus::Succeeded);
            match action {
                Action::Notify(Notification::Console(text)) => output.stdout = text.clone(),
                Action::Notify(Notification::Team(t)) => {
                    output.stdout = format!("sent to {}", t.summary());
                }
                _ => {}
            }
            Attempt::ok(output)
        }
        Response::Failed { error, duration } => {
            let mut output = StepOutput::empty(StepStatus::Failed);
            output.duration_ms = duration.as_millis() as u64;
            failure(output, error)
        }
    }
}

/// The status an error gives the step and whether trying again may help:
/// timeouts and transport trouble may pass, a bad action or an interrupted
/// run will not.
fn classify(error: &StepError) -> (StepStatus, bool) {
    match error {
        StepError::Timeout { .. } | StepError::RequestTimeout { .. } => {
            (StepStatus::TimedOut, true)
        }
        StepError::Cancelled { .. } => (StepStatus::Cancelled, false),
        StepError::Wait(_)
        | StepError::Connect { .. }
        | StepError::Redirects { .. }
        | StepError::Request { .. } => (StepStatus::Failed, true),
        StepError::EmptyCommand
        | StepError::NoWorkingDir(_)
        | StepError::Spawn { .. }
        | StepError::Method(_)
        | StepError::Client(_)
        | StepError::Unanswered(_)
        | StepError::Undelivered(_) => (StepStatus::Failed, false),
    }
}

fn failure(output: StepOutput, error: StepError) -> Attempt {
    let (status, retryable) = classify(&error);
    let mut attempt = Attempt::failed(output, error.to_string(), retryable);
    attempt.status = status;
    attempt.output.status = status;
    attempt
}

fn text(captured: Captured, what: &str) -> String {
    let mut text = String::from_utf8_lossy(&captured.bytes).into_owned();
    if captured.truncated {
        text.push_str(&format!("\n[irctl: {what} truncated at 1 MiB]"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::judge::fixture::{failed, judge, request, shell, stopped, verdict};

    #[test]
    fn cancellation_is_final() {
        let reason = Some("SIGINT".to_string());
        let a = judge(&shell(), stopped(StepError::Cancelled { reason }, None));
        assert_eq!(
            verdict(&a),
            (StepStatus::Cancelled, Some("cancelled: SIGINT"), false)
        );
        let a = judge(
            &Action::Http(request(&[])),
            failed(StepError::Cancelled { reason: None }),
        );
        assert_eq!(
            verdict(&a),
            (StepStatus::Cancelled, Some("cancelled"), false)
        );
        assert_eq!(a.output.duration_ms, 40);
    }

    #[test]
    fn a_process_that_cannot_start_is_not_retried() {
        let source = std::io::Error::from(std::io::ErrorKind::NotFound);
        let spawn = StepError::Spawn {
            program: "nope".into(),
            source,
        };
        let a = judge(&shell(), failed(spawn));
        assert_eq!(a.status, StepStatus::Failed);
        assert!(!a.retryable);
        assert!(
            a.error
                .as_deref()
                .unwrap()
                .starts_with("cannot start `nope`: "),
            "{:?}",
            a.error
        );
        let a = judge(&shell(), failed(StepError::NoWorkingDir("/gone".into())));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("working directory `/gone` does not exist"),
                false
            )
        );
        let a = judge(&shell(), failed(StepError::EmptyCommand));
        assert_eq!(
            verdict(&a),
            (StepStatus::Failed, Some("empty command"), false)
        );
        let wait = StepError::Wait(std::io::Error::other("gone"));
        let a = judge(&shell(), stopped(wait, None));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("cannot wait for the process: gone"),
                true
            )
        );
    }

    #[test]
    fn a_shown_console_notification_leaves_its_text() {
        let console = Action::Notify(Notification::Console("db down".into()));
        let a = judge(&console, Response::Shown);
        assert_eq!(verdict(&a), (StepStatus::Succeeded, None, false));
        assert_eq!(a.output.stdout, "db down");
    }

    #[test]
    fn transport_errors_name_the_server_and_may_be_retried() {
        let http = Action::Http(request(&[]));
        let connect = StepError::Connect {
            host: "127.0.0.1:9".into(),
            cause: Some("Connection refused (os error 111)".into()),
        };
        let a = judge(&http, failed(connect));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("cannot connect to 127.0.0.1:9: Connection refused (os error 111)"),
                true
            )
        );
        assert_eq!(a.output.http_status, None);
        assert_eq!(a.output.duration_ms, 40);
        let timeout = StepError::RequestTimeout {
            host: "api.example:8443".into(),
            cause: Some("operation timed out".into()),
        };
        let a = judge(&http, failed(timeout));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::TimedOut,
                Some("request to api.example:8443 timed out: operation timed out"),
                true
            )
        );
        let redirects = StepError::Redirects {
            host: "h".into(),
            cause: None,
        };
        assert_eq!(
            verdict(&judge(&http, failed(redirects))),
            (StepStatus::Failed, Some("too many redirects from h"), true)
        );
        let other = StepError::Request {
            host: "h".into(),
            cause: Some("broken body".into()),
        };
        assert_eq!(
            verdict(&judge(&http, failed(other))),
            (
                StepStatus::Failed,
                Some("request to h failed: broken body"),
                true
            )
        );
        let method = StepError::Method("GE T".into());
        assert_eq!(
            verdict(&judge(&http, failed(method))),
            (
                StepStatus::Failed,
                Some("invalid HTTP method `GE T`"),
                false
            )
        );
        let unanswered = StepError::Unanswered("no canned result".into());
        assert_eq!(
            verdict(&judge(&http, failed(unanswered))),
            (StepStatus::Failed, Some("no canned result"), false)
        );
    }
}
