//! The words of an approval request, as a notification carries them: the
//! playbook, run and step, the question, how long it waits, and the exact
//! commands that approve and deny. Every value is escaped for the chat
//! service's markup, so an alert label inside the question can neither
//! mention a channel nor disguise a link.

use std::time::Duration;

use crate::template::{Sink, markup};

/// One approval request, in words.
#[derive(Clone, Debug)]
pub struct Ask<'a> {
    /// The playbook.
    pub playbook: &'a str,
    /// The run.
    pub run: &'a str,
    /// The step.
    pub step: &'a str,
    /// The request's nonce, which its buttons name.
    pub nonce: &'a str,
    /// The question, rendered and redacted.
    pub question: &'a str,
    /// How long the step waits before it is declined.
    pub timeout: Duration,
    /// The command that approves.
    pub approve: &'a str,
    /// The command that declines.
    pub deny: &'a str,
}

/// `value` escaped for `sink`'s markup (Slack, Teams), as is elsewhere.
fn escaped(value: &str, sink: Sink) -> String {
    match sink {
        Sink::Slack => markup::slack(value),
        Sink::Teams => markup::teams(value),
        _ => value.to_string(),
    }
}

/// The request's lines, for a message in `sink`'s markup.
pub fn text(ask: &Ask<'_>, sink: Sink) -> String {
    let e = |v: &str| escaped(v, sink);
    format!(
        "Approval needed: step {} of playbook {} (run {})\nQuestion: {}\nWaits {}, then the step is declined.\nApprove: {}\nDeny: {}",
        e(ask.step),
        e(ask.playbook),
        e(ask.run),
        e(ask.question),
        crate::duration::format(ask.timeout),
        e(ask.approve),
        e(ask.deny),
    )
}

/// The request as JSON fields, for a webhook's body or PagerDuty's details.
pub fn fields(ask: &Ask<'_>) -> serde_json::Value {
    serde_json::json!({
        "playbook": ask.playbook,
        "run": ask.run,
        "step": ask.step,
        "question": ask.question,
        "timeout_ms": ask.timeout.as_millis() as u64,
        "approve": ask.approve,
        "deny": ask.deny,
        "text": text(ask, Sink::Text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_text_in_chat_markup() {
        let ask = Ask {
            playbook: "p",
            run: "r-1",
            step: "restart",
            nonce: "00ff",
            question: "Restart <!channel> <http://evil|db-1>?",
            timeout: Duration::from_secs(1800),
            approve: "irctl approve r-1 restart --state-dir /s",
            deny: "irctl approve r-1 restart --state-dir /s --deny",
        };
        let slack = text(&ask, Sink::Slack);
        assert!(
            slack.contains("Restart &lt;!channel&gt; &lt;http://evil|db-1&gt;?"),
            "{slack}"
        );
        assert!(!slack.contains("<!channel>"));
        assert!(slack.contains("Approve: irctl approve r-1 restart --state-dir /s\n"));
        let teams = text(&ask, Sink::Teams);
        assert!(teams.contains(r"\<\!channel\>"), "{teams}");
        assert!(text(&ask, Sink::Text).contains("Waits 30m00s, then"));
    }
}
