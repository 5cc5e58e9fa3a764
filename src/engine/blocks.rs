//! Slack Block Kit buttons on the messages that wait for someone: an
//! approval request (Approve / Deny) and a hand-off (Accept).
//!
//! Both ends of a button live here: what a message carries and how
//! `irctl serve` reads a click back ([`Button::parse`]), so the two cannot
//! drift apart. A button's `action_id` says what it does and its `value`
//! names only the pending thing — run, step and request nonce; incident,
//! team and hand-off time — never a secret: Slack stores and echoes it.
//! The message's `text` stays as it was (Slack shows it in notifications,
//! and it keeps the exact CLI commands for a workspace without
//! interactivity); when buttons are added, that text is repeated as
//! section blocks, because a message with blocks shows only its blocks.
//! Every string placed in a block is already escaped for mrkdwn by the
//! caller, or is one of irctl's own plain ids.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `action_id` of the button that approves a waiting step.
pub const APPROVE: &str = "irctl_approve";
/// `action_id` of the button that declines a waiting step.
pub const DENY: &str = "irctl_deny";
/// `action_id` of the button that accepts a hand-off.
pub const ACCEPT: &str = "irctl_handoff_accept";

/// Longest `text` of a section block Slack takes.
const SECTION_MAX: usize = 3000;
/// Most blocks Slack takes in one message.
const BLOCKS_MAX: usize = 50;
/// Longest button `value` Slack takes.
const VALUE_MAX: usize = 2000;

/// The pending approval a button answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRef {
    /// The run.
    pub run: String,
    /// The waiting step.
    pub step: String,
    /// The request's nonce: a button of an earlier attempt answers nothing.
    pub nonce: String,
}

/// The hand-off a button accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffRef {
    /// The incident id, as recorded.
    pub incident: String,
    /// The team it was handed to (canonical reference).
    pub team: String,
    /// When it was handed off (the `handoff` event's `at`): a button of an
    /// earlier hand-off accepts nothing.
    pub at: String,
}

/// One of irctl's buttons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Button {
    /// Approve the step.
    Approve(StepRef),
    /// Decline the step.
    Deny(StepRef),
    /// Accept the hand-off.
    Accept(HandoffRef),
}

impl Button {
    /// Its `action_id`.
    pub fn action_id(&self) -> &'static str {
        match self {
            Button::Approve(_) => APPROVE,
            Button::Deny(_) => DENY,
            Button::Accept(_) => ACCEPT,
        }
    }

    /// Its `value`: the pending thing, as compact JSON.
    pub fn value(&self) -> String {
        let v = match self {
            Button::Approve(s) | Button::Deny(s) => serde_json::to_string(s),
            Button::Accept(h) => serde_json::to_string(h),
        };
        v.unwrap_or_default()
    }

    /// The button a click names (its `action_id` and `value`); `None` when
    /// it is not one of irctl's or its value names nothing.
    pub fn parse(action_id: &str, value: &str) -> Option<Button> {
        match action_id {
            APPROVE => serde_json::from_str(value).ok().map(Button::Approve),
            DENY => serde_json::from_str(value).ok().map(Button::Deny),
            ACCEPT => serde_json::from_str(value).ok().map(Button::Accept),
            _ => None,
        }
    }

    /// The Block Kit `button` element.
    fn element(&self) -> Value {
        let mut b = json!({
            "type": "button",
            "action_id": self.action_id(),
            "value": self.value(),
        });
        match self {
            Button::Approve(s) => {
                b["text"] = plain("Approve");
                b["style"] = "primary".into();
                // A misclick must not restart production: Slack asks once more.
                b["confirm"] = json!({
                    "title": plain("Approve this step?"),
                    "text": plain(&cut(
                        &format!("Step {} of run {} runs as soon as you confirm.", s.step, s.run),
                        300,
                    )),
                    "confirm": plain("Approve"),
                    "deny": plain("Cancel"),
                });
            }
            Button::Deny(_) => {
                b["text"] = plain("Deny");
                b["style"] = "danger".into();
            }
            Button::Accept(_) => {
                b["text"] = plain("Accept");
                b["style"] = "primary".into();
            }
        }
        b
    }
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text })
}

/// `s` cut to at most `max` characters.
fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `text` (mrkdwn, already escaped) as section blocks of at most Slack's
/// length each, split between lines where it can; at most `max` blocks,
/// the last saying the rest is in the message's text.
fn sections(text: &str, max: usize) -> Vec<Value> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            let room = SECTION_MAX - current.chars().count();
            if line.chars().count() <= room {
                current.push_str(line);
                break;
            }
            if !current.is_empty() {
                chunks.push(std::mem::take(&mut current));
                continue;
            }
            let at = split_point(line, SECTION_MAX);
            chunks.push(line[..at].to_string());
            line = &line[at..];
        }
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks.retain(|c| !c.trim().is_empty());
    if chunks.len() > max {
        chunks.truncate(max.saturating_sub(1));
        chunks.push("… (shortened; the whole message is in its text)".into());
    }
    chunks
        .into_iter()
        .map(|c| json!({ "type": "section", "text": { "type": "mrkdwn", "text": c } }))
        .collect()
}

/// The byte index at most `max` characters into `line`, moved back before
/// an `&` that starts an escape there, so `&amp;` is never cut in two.
fn split_point(line: &str, max: usize) -> usize {
    let at = line
        .char_indices()
        .nth(max)
        .map(|(i, _)| i)
        .unwrap_or(line.len());
    match line[..at].rfind('&') {
        Some(amp) if at - amp < 6 && amp > 0 => amp,
        _ => at,
    }
}

/// Adds `buttons` to a Slack message `body` whose text people read is
/// `text` (mrkdwn, escaped): after the author's own `blocks` when it has
/// them (with `extra`, the lines irctl added to the text, as a section), or
/// after `text` as sections. A button whose value Slack would refuse is
/// left out; the text still says how to answer.
pub fn add_buttons(body: &mut Value, text: &str, extra: Option<&str>, buttons: &[Button]) {
    let elements: Vec<Value> = buttons
        .iter()
        .filter(|b| b.value().len() <= VALUE_MAX)
        .map(Button::element)
        .collect();
    if elements.is_empty() {
        return;
    }
    let actions = json!({ "type": "actions", "elements": elements });
    let Some(map) = body.as_object_mut() else {
        return;
    };
    match map.get_mut("blocks").and_then(Value::as_array_mut) {
        Some(blocks) => {
            let room = BLOCKS_MAX.saturating_sub(blocks.len() + 1);
            if let Some(extra) = extra {
                blocks.extend(sections(extra, room));
            }
            if blocks.len() < BLOCKS_MAX {
                blocks.push(actions);
            }
        }
        None => {
            let mut blocks = sections(text, BLOCKS_MAX - 1);
            blocks.push(actions);
            map.insert("blocks".into(), Value::Array(blocks));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> StepRef {
        StepRef {
            run: "20240101T000000Z-abcdef".into(),
            step: "restart".into(),
            nonce: "00ff00ff00ff00ff".into(),
        }
    }

    #[test]
    fn a_button_reads_back_as_itself_and_nothing_else_does() {
        let handoff = HandoffRef {
            incident: "{}:{alertname=\"A\"}".into(),
            team: "group:default/dba".into(),
            at: "2024-01-01T00:00:00.000Z".into(),
        };
        for b in [
            Button::Approve(step()),
            Button::Deny(step()),
            Button::Accept(handoff),
        ] {
            assert_eq!(Button::parse(b.action_id(), &b.value()), Some(b.clone()));
        }
        let approve = Button::Approve(step());
        assert_eq!(Button::parse("other", &approve.value()), None);
        assert_eq!(Button::parse(ACCEPT, &approve.value()), None);
        assert_eq!(Button::parse(APPROVE, "not json"), None);
        assert_eq!(
            Button::parse(APPROVE, r#"{"run":"r","step":"s","nonce":"n","x":1}"#),
            None
        );
    }

    #[test]
    fn text_becomes_sections_then_buttons() {
        let mut body = json!({ "text": "hello &lt;!channel&gt;\nApprove: irctl approve r s" });
        let text = body["text"].as_str().unwrap().to_string();
        add_buttons(
            &mut body,
            &text,
            None,
            &[Button::Approve(step()), Button::Deny(step())],
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert_eq!(blocks[0]["text"]["text"], text.as_str());
        assert_eq!(blocks[1]["elements"][0]["action_id"], APPROVE);
        assert_eq!(blocks[1]["elements"][0]["style"], "primary");
        assert!(blocks[1]["elements"][0]["confirm"].is_object());
        assert_eq!(blocks[1]["elements"][1]["action_id"], DENY);
        assert_eq!(body["text"], text.as_str(), "the text stays");
    }

    #[test]
    fn the_authors_blocks_stay_first() {
        let mut body = json!({ "text": "t", "blocks": [{ "type": "divider" }] });
        add_buttons(
            &mut body,
            "t",
            Some("the request"),
            &[Button::Approve(step())],
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "divider");
        assert_eq!(blocks[1]["text"]["text"], "the request");
        assert_eq!(blocks[2]["type"], "actions");
    }

    #[test]
    fn long_text_is_split_within_slacks_limits_and_escapes_stay_whole() {
        let line = format!("{}&amp;tail\n", "x".repeat(2996));
        let text = line.repeat(80);
        let mut body = json!({ "text": text });
        add_buttons(&mut body, &text, None, &[Button::Deny(step())]);
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), BLOCKS_MAX);
        for b in &blocks[..BLOCKS_MAX - 1] {
            let t = b["text"]["text"].as_str().unwrap();
            assert!(t.chars().count() <= SECTION_MAX);
            assert!(
                !t.ends_with('&') && !t.ends_with("&am"),
                "{}",
                &t[t.len() - 8..]
            );
        }
        assert!(
            blocks[BLOCKS_MAX - 2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("shortened")
        );
        assert_eq!(blocks[BLOCKS_MAX - 1]["type"], "actions");
    }

    #[test]
    fn a_value_slack_would_refuse_leaves_the_text_alone() {
        let huge = HandoffRef {
            incident: "i".repeat(3000),
            team: "t".into(),
            at: "a".into(),
        };
        let mut body = json!({ "text": "t" });
        add_buttons(&mut body, "t", None, &[Button::Accept(huge)]);
        assert!(body.get("blocks").is_none());
    }
}
