//! After a click on one of irctl's Slack buttons is recorded, the message
//! that carried the buttons is replaced with the outcome — who approved,
//! declined or accepted, and when — so the channel sees the answer and
//! nobody clicks a stale button.
//!
//! Slack puts a `response_url` in every `block_actions` payload; a JSON
//! POST to it with `replace_original: true` replaces the original message
//! (Slack's "Updating messages using response_url"). That URL arrives in
//! the request body, so it is checked before anything is sent to it: only
//! `https://hooks.slack.com/…` (no credentials, the default port), or an
//! origin given with `--slack-response-origin`, which must be plain
//! loopback (tests and local Slack emulators). The POST follows no
//! redirect, is bounded by [`TIMEOUT`], and runs in its own task after the
//! click is recorded and answered: it can neither block nor undo the
//! recording, and a failure is only logged (never with the URL, which
//! works as a credential for that message).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use url::Url;

use super::Log;
use crate::secret::Redactor;
use crate::template::markup;

/// Slack's host for `response_url`s.
pub const SLACK_HOST: &str = "hooks.slack.com";
/// How long one update may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How to update messages, as the flags say.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// More origins a `response_url` may point to (`--slack-response-origin`);
    /// each must be `http(s)://` on a loopback address.
    pub origins: Vec<String>,
    /// What the texts must not show.
    pub redactor: Redactor,
}

/// Sends the updates.
pub struct Updater {
    client: reqwest::Client,
    origins: Vec<url::Origin>,
    redactor: Redactor,
}

impl Updater {
    /// Checks `settings` (a non-loopback origin is an error) and builds the client.
    pub fn new(settings: &Settings) -> anyhow::Result<Updater> {
        let mut origins = Vec::new();
        for given in &settings.origins {
            origins.push(loopback_origin(given)?);
        }
        let client = crate::tls::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("irctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for Slack message updates")?;
        Ok(Updater {
            client,
            origins,
            redactor: settings.redactor.clone(),
        })
    }

    /// `url` as a URL an update may be posted to, or why not.
    pub fn check(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|_| "`response_url` is not a URL".to_string())?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("`response_url` carries credentials".into());
        }
        let slack = parsed.scheme() == "https"
            && parsed.host_str() == Some(SLACK_HOST)
            && parsed.port().is_none();
        if slack || self.origins.contains(&parsed.origin()) {
            Ok(parsed)
        } else {
            Err(format!(
                "`response_url` points to `{}`, not to https://{SLACK_HOST}",
                shown_host(&parsed)
            ))
        }
    }

    /// Replaces the message of the click whose `response_url` is `url` with
    /// `text` (mrkdwn, its values already escaped), in the background; what
    /// went wrong is logged.
    pub fn send(&self, url: &str, text: &str, log: Log) {
        let target = match self.check(url) {
            Ok(u) => u,
            Err(why) => {
                log(&format!(
                    "warning: slack: the message is not updated: {why}"
                ));
                return;
            }
        };
        let body = json!({
            "replace_original": true,
            "text": self.redactor.redact(text),
        });
        let client = self.client.clone();
        tokio::spawn(async move {
            let host = shown_host(&target);
            let sent = client.post(target).json(&body).send().await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => log(&format!(
                    "warning: slack: `{host}` refused the message update: HTTP {}",
                    r.status().as_u16()
                )),
                Err(e) if e.is_timeout() => log(&format!(
                    "warning: slack: the message update to `{host}` timed out after {}",
                    crate::duration::format(TIMEOUT)
                )),
                Err(e) => log(&format!(
                    "warning: slack: cannot update the message at `{host}`: {}",
                    e.without_url()
                )),
            }
        });
    }
}

/// The host (and port) of `url`, for messages: never its path, which
/// carries Slack's token for the message.
fn shown_host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "?".into(),
    }
}

/// The origin `given` names, refused unless it is plain HTTP(S) on a
/// loopback address with nothing else.
fn loopback_origin(given: &str) -> anyhow::Result<url::Origin> {
    let refuse = || {
        anyhow::anyhow!(
            "`--slack-response-origin {given}` must be `http://127.0.0.1:PORT` (or another loopback address): only loopback may stand in for Slack"
        )
    };
    let url = Url::parse(given).map_err(|_| refuse())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let plain = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none();
    if !(loopback && plain) {
        return Err(refuse());
    }
    Ok(url.origin())
}

/// The replacement text of an answered approval: `approved` or not, by
/// `who` at `at`, of `step` of `run` that asked `question`.
pub fn answered(
    approved: bool,
    who: &str,
    at: &str,
    step: &str,
    run: &str,
    question: &str,
) -> String {
    let e = markup::slack;
    format!(
        "{} by {} at {}: step `{}` of run `{}` — {}{}",
        if approved { "*Approved*" } else { "*Declined*" },
        e(who),
        e(at),
        e(step),
        e(run),
        e(question),
        if approved {
            " The run continues."
        } else {
            " The step will not run."
        }
    )
}

/// The replacement text of an accepted hand-off of `incident` to `team`.
pub fn accepted(who: &str, at: &str, incident: &str, team: &str, after: &str) -> String {
    let e = markup::slack;
    format!(
        "*Accepted* by {} at {}: incident `{}` is owned by {} now (the hand-off waited {}).",
        e(who),
        e(at),
        e(incident),
        e(team),
        e(after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn updater(origins: &[&str]) -> anyhow::Result<Updater> {
        Updater::new(&Settings {
            origins: origins.iter().map(|s| s.to_string()).collect(),
            redactor: Redactor::default(),
        })
    }

    #[test]
    fn only_slack_or_a_loopback_stand_in_is_posted_to() {
        let u = updater(&["http://127.0.0.1:4000"]).unwrap();
        assert!(u.check("https://hooks.slack.com/actions/T1/2/abc").is_ok());
        assert!(u.check("http://127.0.0.1:4000/actions/x").is_ok());
        for bad in [
            "http://hooks.slack.com/actions/T1/2/abc",
            "https://hooks.slack.com:8443/actions/T1/2/abc",
            "https://hooks.slack.com.evil.example/actions",
            "https://evil.example/?h=hooks.slack.com",
            "https://user:pw@hooks.slack.com/actions/T1/2/abc",
            "http://127.0.0.1:4001/actions/x",
            "https://127.0.0.1:4000/actions/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            let e = u.check(bad).unwrap_err();
            assert!(!e.contains("abc") && !e.contains("actions"), "{e}");
        }
        for bad in [
            "http://10.0.0.1:80",
            "http://example.com:80",
            "ftp://127.0.0.1:21",
            "http://127.0.0.1:80/path",
            "http://u:p@127.0.0.1:80",
        ] {
            assert!(updater(&[bad]).is_err(), "{bad}");
        }
        assert!(updater(&["http://[::1]:9000", "http://localhost:9000/"]).is_ok());
    }

    #[test]
    fn texts_escape_what_people_and_playbooks_wrote() {
        let t = answered(
            true,
            "slack:U1 (<!channel>)",
            "t",
            "s",
            "r",
            "Restart <@U2> & go?",
        );
        assert!(
            t.contains("&lt;!channel&gt;") && t.contains("&lt;@U2&gt; &amp; go?"),
            "{t}"
        );
        let t = accepted("slack:U1 (a<b)", "t", "i", "group:default/<dba>", "1m");
        assert!(t.contains("a&lt;b") && t.contains("&lt;dba&gt;"), "{t}");
    }
}
