//! The one place that decides how an attempt ended.
//!
//! Executors and `irctl test`'s canned stand-in only report a
//! [`Response`]; [`judge`] turns it, with the rendered [`Action`], into an
//! [`Attempt`]: its status, the outputs later steps read (`steps.X.*`), the
//! message users see, whether a retry may help and how long a server asked
//! us to wait. Every rule lives here once, so a test's canned answer ends
//! exactly as the same answer from a real process or server would.

use std::time::Duration;

use super::Attempt;
use super::action::Action;
use super::context::{StepOutput, StepStatus};
use super::notify::{self, Notification};
use super::response::{Captured, HttpReply, ProcessRun, Response, StepError};
use crate::secret::Redactor;

/// Longest `Retry-After` honoured as given.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The outcome of one execution of `action` that produced `response`.
/// `redactor` masks the secrets in the server's words quoted in a message
/// before they are cut to a snippet, so the cut cannot leave part of one.
pub fn judge(action: &Action, response: Response, redactor: &Redactor) -> Attempt {
    match response {
        Response::Process(run) => process(run),
        Response::Http(reply) => http(action, reply, redactor),
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

/// Exit 0 succeeds; any other exit fails and may be retried.
fn process(run: ProcessRun) -> Attempt {
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

/// An expected status (any 2xx unless `expect` says) succeeds; 429 and 5xx
/// may be retried, after the server's `Retry-After` when it sent one. A
/// notification service's documented error reply is explained.
fn http(action: &Action, reply: HttpReply, redactor: &Redactor) -> Attempt {
    let status = reply.status;
    let mut output = StepOutput::empty(StepStatus::Failed);
    output.http_status = Some(status);
    output.duration_ms = reply.duration.as_millis() as u64;
    output.json = serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null);
    output.body = text(
        Captured {
            bytes: reply.body,
            truncated: reply.truncated,
        },
        "body",
    );
    let retry_after = reply
        .headers
        .get("retry-after")
        .and_then(|v| retry_after(v));
    output.headers = reply.headers;
    let expect = action.request().map(|r| r.expect.as_slice()).unwrap_or(&[]);
    let accepted = if expect.is_empty() {
        (200..300).contains(&status)
    } else {
        expect.contains(&status)
    };
    if accepted {
        return Attempt::ok(output);
    }
    let explained = match action {
        Action::Notify(Notification::Post(post)) => {
            notify::explain_failure(post.service, status, &output.body, &output.json)
        }
        _ => None,
    };
    let message = explained.unwrap_or_else(|| {
        let host = action
            .request()
            .map(|r| r.host())
            .unwrap_or_else(|| "the server".into());
        let expected = if expect.is_empty() {
            "2xx".to_string()
        } else {
            expect
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let snippet: String = redactor.redact(&output.body).chars().take(200).collect();
        let mut message = format!("{host} answered HTTP {status} (expected {expected})");
        if !snippet.trim().is_empty() {
            message.push_str(": ");
            message.push_str(snippet.trim());
        }
        message
    });
    let retryable = status == 429 || status >= 500;
    let mut attempt = Attempt::failed(output, message, retryable);
    attempt.retry_after = retry_after;
    attempt
}

/// A `Retry-After` value: seconds, or an HTTP date; capped at an hour.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    delta.to_std().ok().map(|d| d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::http::{Body, Request};
    use crate::engine::notify::{Post, Service};
    use crate::engine::response::{Exit, Stopped};
    use crate::engine::shell::{Invocation, Program};
    use std::collections::BTreeMap;

    fn shell() -> Action {
        Action::Process(Invocation {
            program: Program::Shell("true".into()),
            env: Vec::new(),
            cwd: None,
            interpreter: None,
        })
    }

    fn request(expect: &[u16]) -> Request {
        Request {
            method: "POST".into(),
            url: "https://api.example:8443/drain".into(),
            headers: Vec::new(),
            body: Some(Body::Text("{}".into())),
            expect: expect.to_vec(),
            insecure: false,
            max_redirects: 5,
        }
    }

    fn post(service: Service) -> Action {
        Action::Notify(Notification::Post(Post {
            service,
            request: Request {
                url: "https://hooks.example/T1".into(),
                ..request(&[])
            },
            text: Some("hi".into()),
        }))
    }

    /// The judge with no secrets to mask.
    fn judge(action: &Action, response: Response) -> Attempt {
        super::judge(action, response, &Redactor::default())
    }

    fn exited(code: Option<i32>, signal: Option<i32>, stdout: Captured) -> Response {
        Response::Process(ProcessRun {
            end: Ok(Exit { code, signal }),
            stdout,
            stderr: Captured::text("warn\n"),
            duration: Duration::from_millis(12),
        })
    }

    fn stopped(error: StepError, exit: Option<Exit>) -> Response {
        Response::Process(ProcessRun {
            end: Err(Stopped { error, exit }),
            stdout: Captured::text("partial\n"),
            stderr: Captured::default(),
            duration: Duration::from_millis(5),
        })
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::Http(HttpReply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            truncated: false,
            duration: Duration::from_millis(30),
        })
    }

    fn failed(error: StepError) -> Response {
        Response::failed(error, Duration::from_millis(40))
    }

    /// Status, message and retryable, the parts every rule decides.
    fn verdict(a: &Attempt) -> (StepStatus, Option<&str>, bool) {
        (a.status, a.error.as_deref(), a.retryable)
    }

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
    fn a_2xx_succeeds_with_headers_body_and_json() {
        let a = judge(
            &Action::Http(request(&[])),
            reply(201, &[("content-type", "application/json")], r#"{"id":7}"#),
        );
        assert_eq!(verdict(&a), (StepStatus::Succeeded, None, false));
        assert_eq!(a.output.http_status, Some(201));
        assert_eq!(a.output.json["id"], 7);
        assert_eq!(a.output.body, r#"{"id":7}"#);
        assert_eq!(a.output.headers["content-type"], "application/json");
        assert_eq!(a.output.duration_ms, 30);
        let a = judge(&Action::Http(request(&[])), reply(204, &[], "not json"));
        assert_eq!(a.output.json, serde_json::Value::Null);
    }

    #[test]
    fn an_unexpected_status_names_host_port_and_expected_statuses() {
        let a = judge(&Action::Http(request(&[])), reply(409, &[], " busy \n"));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("api.example:8443 answered HTTP 409 (expected 2xx): busy"),
                false
            )
        );
        assert_eq!(a.output.http_status, Some(409));
        let a = judge(&Action::Http(request(&[202, 409])), reply(200, &[], ""));
        assert_eq!(
            a.error.as_deref(),
            Some("api.example:8443 answered HTTP 200 (expected 202, 409)")
        );
        let a = judge(&Action::Http(request(&[202, 409])), reply(409, &[], ""));
        assert_eq!(a.status, StepStatus::Succeeded);
        let long = "x".repeat(300);
        let a = judge(&Action::Http(request(&[])), reply(400, &[], &long));
        assert!(
            a.error
                .as_deref()
                .unwrap()
                .ends_with(&format!(": {}", "x".repeat(200)))
        );
    }

    #[test]
    fn throttling_and_server_errors_may_be_retried_after_retry_after() {
        let a = judge(
            &Action::Http(request(&[])),
            reply(503, &[("retry-after", " 7 ")], ""),
        );
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("api.example:8443 answered HTTP 503 (expected 2xx)"),
                true
            )
        );
        assert_eq!(a.retry_after, Some(Duration::from_secs(7)));
        let a = judge(&Action::Http(request(&[])), reply(429, &[], ""));
        assert!(a.retryable);
        assert_eq!(a.retry_after, None);
        let a = judge(
            &Action::Http(request(&[])),
            reply(404, &[("retry-after", "7")], ""),
        );
        assert!(!a.retryable);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("99999"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let d = retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        let far = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc2822();
        assert_eq!(retry_after(&far), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn a_truncated_body_says_so_and_is_not_json() {
        let a = judge(
            &Action::Http(request(&[])),
            Response::Http(HttpReply {
                status: 200,
                headers: BTreeMap::new(),
                body: b"{\"a\":".to_vec(),
                truncated: true,
                duration: Duration::ZERO,
            }),
        );
        assert_eq!(a.output.body, "{\"a\":\n[irctl: body truncated at 1 MiB]");
        assert_eq!(a.output.json, serde_json::Value::Null);
    }

    #[test]
    fn a_service_error_reply_is_explained() {
        let a = judge(&post(Service::Slack), reply(404, &[], "no_service"));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some(
                    "slack rejected the message (HTTP 404): no_service \u{2014} the webhook was revoked or is wrong"
                ),
                false
            )
        );
        let a = judge(
            &post(Service::Pagerduty),
            reply(429, &[("retry-after", "3")], "{}"),
        );
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("pagerduty is throttling events (HTTP 429)"),
                true
            )
        );
        assert_eq!(a.retry_after, Some(Duration::from_secs(3)));
        let a = judge(
            &post(Service::Pagerduty),
            reply(
                400,
                &[],
                r#"{"message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#,
            ),
        );
        assert_eq!(
            a.error.as_deref(),
            Some(
                "pagerduty rejected the event (HTTP 400): Event object is invalid: Length of 'routing_key' is incorrect"
            )
        );
        let a = judge(
            &post(Service::Teams),
            reply(400, &[], r#"{"error":{"message":"bad card"}}"#),
        );
        assert_eq!(
            a.error.as_deref(),
            Some("teams rejected the message (HTTP 400): bad card")
        );
        let a = judge(&post(Service::Webhook), reply(500, &[], ""));
        assert_eq!(
            verdict(&a),
            (
                StepStatus::Failed,
                Some("hooks.example answered HTTP 500 (expected 2xx)"),
                true
            )
        );
        let a = judge(&post(Service::Slack), reply(200, &[], "ok"));
        assert_eq!(a.status, StepStatus::Succeeded);
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
