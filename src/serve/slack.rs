//! `POST /hooks/slack/interactivity`: the clicks on the Approve, Deny and
//! Accept buttons of irctl's Slack messages ([`crate::engine::blocks`]).
//!
//! Slack posts a click as `application/x-www-form-urlencoded` with one
//! `payload` field (JSON, `type: block_actions`), signed with the app's
//! signing secret: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret,
//! "v0:" + X-Slack-Request-Timestamp + ":" + body))`. The signature is
//! checked on the raw bytes before anything parses them, in constant time
//! against every configured secret (`SERVE_SLACK_SIGNING_SECRET`, `_2` …
//! `_9` for rotation), and a timestamp more than five minutes off is a
//! replay: 401. Then the click is recorded through the same library calls
//! as the CLI — [`approval::give`] (`irctl approve`) and
//! [`handoff::accept`] (`irctl handoff accept`) — as `slack:USER_ID
//! (name)`; nothing runs inside the request. Slack shows any answer but a
//! 200 as an error, so everything a person can cause (a stale button, a
//! second click, an approver who is not allowed) is a 200 with an
//! ephemeral text saying why; only a malformed request is a 400. A click
//! that was recorded also replaces the original message with the outcome,
//! through the payload's `response_url` ([`super::slack_update`]).

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::Shared;
use super::http::answer;
use super::slack_update;
use super::store::Store;
use crate::approval::{self, Answer, Refused};
use crate::engine::blocks::{Button, HandoffRef, StepRef};
use crate::handoff::{self, Acceptance};
use crate::secret::{Redactor, Secret};
use crate::template::markup;

/// Slack's signature header.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// Slack's timestamp header.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
/// How far a request's timestamp may be from now (Slack's advice: 5 minutes).
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request is not taken as Slack's.
#[derive(Debug, PartialEq, Eq)]
pub enum Unverified {
    /// No signing secret is configured: every request is refused (403).
    NotConfigured,
    /// The signature or timestamp is missing, malformed, stale or wrong (401).
    Invalid(&'static str),
}

/// Checks Slack's signature of `body` with `headers` at `now` (Unix
/// seconds) against every one of `secrets`.
pub fn verify(
    secrets: &[Secret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), Unverified> {
    if secrets.is_empty() {
        return Err(Unverified::NotConfigured);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(stamp) = header(TIMESTAMP_HEADER) else {
        return Err(Unverified::Invalid("no X-Slack-Request-Timestamp"));
    };
    let Ok(at) = stamp.parse::<i64>() else {
        return Err(Unverified::Invalid("the timestamp is not Unix seconds"));
    };
    if now.abs_diff(at) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(Unverified::Invalid(
            "the timestamp is more than 5 minutes off (a replay?)",
        ));
    }
    let Some(signature) = header(SIGNATURE_HEADER) else {
        return Err(Unverified::Invalid("no X-Slack-Signature"));
    };
    let Some(signature) = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return Err(Unverified::Invalid("the signature is not `v0=<hex>`"));
    };
    let mut ok = false;
    for key in secrets {
        // HMAC takes keys of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()) else {
            continue;
        };
        mac.update(b"v0:");
        mac.update(stamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        // Every secret is tried, so timing tells nothing about which one was close.
        ok |= mac.verify_slice(&signature).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(Unverified::Invalid("the signature does not match"))
    }
}

/// The parts of a `block_actions` payload irctl reads.
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: Option<User>,
    #[serde(default)]
    actions: Vec<Action>,
    /// Where the original message can be replaced (checked before use).
    response_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    username: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
}

/// A click, read from a verified request.
#[derive(Debug, PartialEq, Eq)]
pub enum Click {
    /// Something other than a button click (a shortcut, a modal).
    Other(String),
    /// A click on a button that is not irctl's, or whose value names nothing.
    Foreign,
    /// One of irctl's buttons, clicked by `who`.
    Button {
        /// The Slack user id.
        user: String,
        /// `slack:USER_ID (name)`, as recorded.
        who: String,
        /// The button.
        button: Button,
        /// Slack's URL for replacing the message (unchecked).
        response_url: Option<String>,
    },
}

/// Reads the click in a form body; `Err` says why it is malformed.
pub fn parse(body: &[u8]) -> Result<Click, String> {
    let Some(json) = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
    else {
        return Err("no `payload` field in the form body".into());
    };
    let payload: Payload =
        serde_json::from_str(&json).map_err(|e| format!("`payload` is not Slack's JSON: {e}"))?;
    if payload.kind != "block_actions" {
        return Ok(Click::Other(payload.kind));
    }
    let Some(user) = payload.user else {
        return Err("a `block_actions` payload without `user`".into());
    };
    let plain = !user.id.is_empty()
        && user.id.len() <= 64
        && user.id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !plain {
        return Err("`user.id` is not a Slack user id".into());
    }
    if payload.actions.is_empty() {
        return Err("a `block_actions` payload without `actions`".into());
    }
    let button = payload
        .actions
        .iter()
        .find_map(|a| Button::parse(&a.action_id, a.value.as_deref().unwrap_or("")));
    let Some(button) = button else {
        return Ok(Click::Foreign);
    };
    let name: String = user
        .username
        .or(user.name)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let who = if name.trim().is_empty() {
        format!("slack:{}", user.id)
    } else {
        format!("slack:{} ({})", user.id, name.trim())
    };
    Ok(Click::Button {
        user: user.id,
        who,
        button,
        response_url: payload.response_url,
    })
}

/// Slack's answer to the person who clicked: a message only they see,
/// leaving the original message as it is.
fn ephemeral(text: &str) -> Response {
    answer(
        StatusCode::OK,
        json!({ "response_type": "ephemeral", "replace_original": false, "text": text }),
    )
}

/// `POST /hooks/slack/interactivity`.
pub async fn interactivity<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return answer(e.status(), json!({ "error": e.body_text() }));
        }
    };
    let now = chrono::Utc::now();
    match verify(
        shared.credentials().slack_signing(),
        &headers,
        &body,
        now.timestamp(),
    ) {
        Ok(()) => {}
        Err(Unverified::NotConfigured) => {
            return answer(
                StatusCode::FORBIDDEN,
                json!({ "error": format!("no Slack signing secret is configured: set `{}`", super::auth::SLACK_SIGNING) }),
            );
        }
        Err(Unverified::Invalid(why)) => {
            return answer(StatusCode::UNAUTHORIZED, json!({ "error": why }));
        }
    }
    let (user, who, button, response_url) = match parse(&body) {
        Err(why) => return answer(StatusCode::BAD_REQUEST, json!({ "error": why })),
        Ok(Click::Other(kind)) => {
            return ephemeral(&format!(
                "irctl answers only its own buttons, not `{}` interactions.",
                markup::slack(&kind.chars().take(40).collect::<String>())
            ));
        }
        Ok(Click::Foreign) => {
            return ephemeral("This button is not one of irctl's, or names nothing irctl knows.");
        }
        Ok(Click::Button {
            user,
            who,
            button,
            response_url,
        }) => (user, who, button, response_url),
    };
    let worker = shared.clone();
    let done = tokio::task::spawn_blocking(move || {
        let state_dir = &worker.launcher.state_dir;
        match button {
            Button::Approve(step) => answer_step(state_dir, &worker, &user, &who, &step, true, now),
            Button::Deny(step) => answer_step(state_dir, &worker, &user, &who, &step, false, now),
            Button::Accept(h) => accept(state_dir, &who, &h, now),
        }
    })
    .await;
    let Reply {
        to_user,
        log,
        update,
    } = done.unwrap_or_else(|e| {
        Reply::from((
            "irctl could not record this click; try again, or use the command in the message."
                .into(),
            format!("error: a Slack click failed: {e}"),
        ))
    });
    (shared.log)(&format!("slack: {log}"));
    // Only once the click is recorded, and never in the way of the answer.
    if let (Some(text), Some(url)) = (update, response_url) {
        shared.slack_update.send(&url, &text, shared.log.clone());
    }
    ephemeral(&to_user)
}

/// What a click comes to.
struct Reply {
    /// What to tell the person who clicked (mrkdwn).
    to_user: String,
    /// What serve logs.
    log: String,
    /// The outcome the original message is replaced with, once recorded.
    update: Option<String>,
}

impl From<(String, String)> for Reply {
    fn from((to_user, log): (String, String)) -> Reply {
        Reply {
            to_user,
            log,
            update: None,
        }
    }
}

fn e(s: &str) -> String {
    markup::slack(s)
}

/// Approves (or declines) a waiting step for `who`.
fn answer_step<S>(
    state_dir: &Path,
    shared: &Shared<S>,
    user: &str,
    who: &str,
    step: &StepRef,
    approved: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Reply {
    let what = format!("step `{}` of run `{}`", e(&step.step), e(&step.run));
    if !shared.slack_approvers.is_empty() && !shared.slack_approvers.iter().any(|a| a == user) {
        return Reply::from((
            format!(
                "You may not answer approvals: irctl serve takes them only from the Slack users its `--slack-approver` names. {what} still waits."
            ),
            format!(
                "{who} may not answer approvals (not a --slack-approver); {} of run {} still waits",
                step.step, step.run
            ),
        ));
    }
    let ids_ok = approval::check_run_id(&step.run).is_ok()
        && approval::check_step_id(&step.step).is_ok()
        && !step.nonce.is_empty()
        && step.nonce.bytes().all(|b| b.is_ascii_hexdigit());
    if !ids_ok {
        return Reply::from((
            "This button names no run irctl knows.".into(),
            format!("{who} clicked a button naming no run"),
        ));
    }
    let stale = |first: Option<Answer>| -> Reply {
        Reply::from(match first {
            Some(a) => (
                format!(
                    "{what} was already answered: {} by {} ({}). An answer is given once.",
                    if a.approved { "approved" } else { "declined" },
                    e(&a.by),
                    e(&a.via)
                ),
                format!(
                    "{who} clicked an answered request ({} of run {})",
                    step.step, step.run
                ),
            ),
            None => (
                format!(
                    "{what} no longer waits for this request (the run finished, or asked again in a newer message: answer that one)."
                ),
                format!(
                    "{who} clicked an expired request ({} of run {})",
                    step.step, step.run
                ),
            ),
        })
    };
    let open = match approval::request(state_dir, &step.run, &step.step) {
        Ok(open) => open,
        Err(err) => {
            return Reply::from((
                format!("irctl could not read the request of {what}."),
                format!("error: cannot read the approval request of {who}'s click: {err:#}"),
            ));
        }
    };
    if open.as_ref().is_none_or(|r| r.nonce != step.nonce) {
        return stale(approval::answer_of(
            state_dir,
            &step.run,
            &step.step,
            &step.nonce,
        ));
    }
    let at = crate::timeline::stamp(now);
    let given = Answer {
        approved,
        by: who.to_string(),
        via: "slack".into(),
        reason: None,
        at: at.clone(),
    };
    let verb = if approved { "approved" } else { "declined" };
    match approval::give(state_dir, &step.run, &step.step, given) {
        Ok(g) => Reply {
            to_user: format!(
                "You {verb} {what}: {}{}",
                e(&g.request.question),
                if approved {
                    " The run continues."
                } else {
                    " The step will not run."
                }
            ),
            log: format!("{who} {verb} step {} of run {}", step.step, step.run),
            update: Some(slack_update::answered(
                approved,
                who,
                &at,
                &step.step,
                &step.run,
                &g.request.question,
            )),
        },
        Err(err) => match err.downcast_ref::<Refused>() {
            Some(Refused::AlreadyAnswered { answer, .. }) => stale(Some((**answer).clone())),
            Some(refused) => Reply::from((
                e(&refused.to_string()),
                format!("{who}'s click refused: {refused}"),
            )),
            None => Reply::from((
                format!(
                    "irctl could not record your answer to {what}; use the command in the message."
                ),
                format!("error: cannot record {who}'s answer: {err:#}"),
            )),
        },
    }
}

/// Accepts a hand-off for `who`.
fn accept(
    state_dir: &Path,
    who: &str,
    h: &HandoffRef,
    now: chrono::DateTime<chrono::Utc>,
) -> Reply {
    let incident = crate::record::short_incident_id(&h.incident);
    let accepted = handoff::accept(
        state_dir,
        &h.incident,
        who,
        Some(handoff::VIA_SLACK),
        now,
        Redactor::default(),
        Some(h),
    );
    let said = match accepted {
        Ok(Acceptance::Accepted { accepted, latency }) => {
            let after = crate::duration::format(latency);
            return Reply {
                to_user: format!(
                    "You accepted incident `{}` for {} after {after}: the team owns it now.",
                    e(&incident),
                    e(&accepted.team),
                ),
                log: format!("{who} accepted incident {incident} for {}", accepted.team),
                update: Some(slack_update::accepted(
                    who,
                    &accepted.at,
                    &incident,
                    &accepted.team,
                    &after,
                )),
            };
        }
        Ok(Acceptance::Already { by, team }) => (
            format!(
                "This hand-off of incident `{}` to {} was already accepted by {}.",
                e(&incident),
                e(&team),
                e(&by)
            ),
            format!("{who} clicked an accepted hand-off of incident {incident}"),
        ),
        Ok(Acceptance::Superseded { to }) => (
            format!(
                "Incident `{}` was handed off again since (to {}); accept the newer message.",
                e(&incident),
                e(&to)
            ),
            format!("{who} clicked a superseded hand-off of incident {incident}"),
        ),
        Ok(Acceptance::NoneOpen | Acceptance::Unknown) => (
            format!(
                "This hand-off is not in the record of incident `{}`.",
                e(&incident)
            ),
            format!("{who} clicked an unknown hand-off of incident {incident}"),
        ),
        Err(err) => (
            "irctl could not record the acceptance; use the command in the message.".into(),
            format!("error: cannot record {who}'s acceptance of incident {incident}: {err:#}"),
        ),
    };
    Reply::from(said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn signed(key: &str, at: i64, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("v0:{at}:").as_bytes());
        mac.update(body);
        let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(&sig).unwrap());
        h.insert(TIMESTAMP_HEADER, HeaderValue::from(at));
        h
    }

    #[test]
    fn signatures_rotate_go_stale_and_cover_the_body() {
        let secrets = [Secret::new("new-signing-1"), Secret::new("old-signing-2")];
        let now = 1_700_000_000;
        let body = b"payload=%7B%7D";
        for key in ["new-signing-1", "old-signing-2"] {
            assert_eq!(
                verify(&secrets, &signed(key, now - 5, body), body, now),
                Ok(())
            );
        }
        let bad = |h: &HeaderMap, b: &[u8]| {
            matches!(verify(&secrets, h, b, now), Err(Unverified::Invalid(_)))
        };
        assert!(bad(&signed("wrong", now, body), body));
        assert!(bad(&signed("new-signing-1", now - 301, body), body));
        assert!(bad(&signed("new-signing-1", now + 301, body), body));
        assert!(bad(&signed("new-signing-1", now, body), b"payload=%7B%7D "));
        assert!(bad(&HeaderMap::new(), body));
        assert_eq!(
            verify(&[], &signed("x", now, body), body, now),
            Err(Unverified::NotConfigured)
        );
    }

    fn form(payload: &serde_json::Value) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    #[test]
    fn a_click_names_its_user_and_button() {
        let step = StepRef {
            run: "r-1".into(),
            step: "restart".into(),
            nonce: "ab".into(),
        };
        let b = Button::Deny(step);
        let payload = json!({
            "type": "block_actions",
            "user": { "id": "U123", "username": "ana\u{7}\nx", "name": "ana" },
            "actions": [
                { "action_id": "other", "value": "1" },
                { "action_id": b.action_id(), "value": b.value() }
            ],
            "response_url": "https://hooks.slack.com/actions/T/1/x"
        });
        assert_eq!(
            parse(&form(&payload)),
            Ok(Click::Button {
                user: "U123".into(),
                who: "slack:U123 (anax)".into(),
                button: b,
                response_url: Some("https://hooks.slack.com/actions/T/1/x".into())
            })
        );
        let shortcut = json!({ "type": "shortcut", "user": { "id": "U1" } });
        assert_eq!(parse(&form(&shortcut)), Ok(Click::Other("shortcut".into())));
        let foreign = json!({ "type": "block_actions", "user": { "id": "U1" }, "actions": [{ "action_id": "x" }] });
        assert_eq!(parse(&form(&foreign)), Ok(Click::Foreign));
        for bad in [
            json!({ "type": "block_actions", "actions": [] }),
            json!({ "type": "block_actions", "user": { "id": "U1" }, "actions": [] }),
            json!({ "type": "block_actions", "user": { "id": "../x" }, "actions": [{ "action_id": "x" }] }),
        ] {
            assert!(parse(&form(&bad)).is_err(), "{bad}");
        }
        assert!(parse(b"payload=%7Bnot").is_err());
        assert!(parse(b"other=1").is_err());
    }
}
