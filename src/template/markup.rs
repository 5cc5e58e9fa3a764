//! Escaping for chat markup: a value placed in a Slack or Teams message
//! must read as text, so an alert label can neither ping a channel
//! (`<!channel>`, `<@U123>`) nor show one link text over another URL
//! (`<http://evil|Open runbook>`, `[Open runbook](http://evil)`).
//!
//! Only values are escaped (see the formatter in `mod.rs`); the author's
//! literal template text keeps its markup, so a playbook can still write
//! `<!here>` itself.

/// Escapes `s` for Slack mrkdwn. Slack parses `&`, `<` and `>` as control
/// characters and documents exactly these three HTML entities as their
/// escapes; every mention, link and command needs a `<`.
pub fn slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The characters that start Markdown structure in an Adaptive Card
/// `TextBlock` (a CommonMark subset): links and images, emphasis, code,
/// autolinks and HTML, headings, tables, entity references, and the
/// `{{DATE(…)}}` functions. `:`, `/`, `.` and `-` stay, so a bare URL or a
/// host name shows itself (a list marker they might form is only layout).
const TEAMS_SPECIAL: &[char] = &[
    '\\', '`', '*', '_', '~', '[', ']', '(', ')', '<', '>', '#', '!', '|', '{', '}', '&',
];

/// Escapes `s` for Teams: a backslash before each character that could
/// start Markdown structure (CommonMark lets a backslash escape any ASCII
/// punctuation, and the escaped character shows as itself).
pub fn teams(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if TEAMS_SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_mentions_and_links_become_text() {
        assert_eq!(
            slack("<!channel> <@U123> <http://evil|Open runbook> &lt;"),
            "&lt;!channel&gt; &lt;@U123&gt; &lt;http://evil|Open runbook&gt; &amp;lt;"
        );
        assert_eq!(slack("db-1 *down*"), "db-1 *down*");
    }

    #[test]
    fn teams_links_and_markup_become_text() {
        assert_eq!(teams("[click](http://evil)"), r"\[click\]\(http://evil\)");
        assert_eq!(teams("**b** <at>x</at> \\"), r"\*\*b\*\* \<at\>x\</at\> \\");
        assert_eq!(teams("plain words"), "plain words");
    }
}
