//! How a server's answer becomes an attempt: the expected status, the
//! body and headers later steps read, a notification service's documented
//! error explained, and the `Retry-After` to honour before trying again.

use std::time::Duration;

use super::text;
use crate::engine::Attempt;
use crate::engine::action::Action;
use crate::engine::context::{StepOutput, StepStatus};
use crate::engine::notify::{self, Notification};
use crate::engine::response::{Captured, HttpReply};
use crate::secret::Redactor;

/// Longest `Retry-After` honoured as given.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// An expected status (any 2xx unless `expect` says) succeeds; 429 and 5xx
/// may be retried, after the server's `Retry-After` when it sent one. A
/// notification service's documented error reply is explained.
pub(super) fn http(action: &Action, reply: HttpReply, redactor: &Redactor) -> Attempt {
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::judge::fixture::{judge, post, reply, request, verdict};
    use crate::engine::notify::Service;
    use crate::engine::response::Response;

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
}
