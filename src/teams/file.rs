//! The `teams.yaml` format, v1, and its checks.
//!
//! ```yaml
//! version: 1
//! secrets: [SLACK_DBA_WEBHOOK, PD_DBA_ROUTING_KEY]   # every secret a channel names
//! teams:
//!   group:default/dba:            # `dba` and `group:dba` are the same team
//!     title: Database team
//!     remind_after: 15m           # re-announce an unaccepted hand-off
//!     escalate_after: 30m         # then page its PagerDuty channels
//!     channels:
//!       - slack: SLACK_DBA_WEBHOOK
//!       - pagerduty: PD_DBA_ROUTING_KEY
//! ```
//!
//! A channel names a secret; a URL, a key or a template in its place is
//! an error that never repeats the value.

use std::collections::{BTreeMap, HashSet};

use indexmap::IndexMap;
use serde::Deserialize;

use super::{Channel, ChannelKind, EntityRef, KEYWORDS, Team, Teams};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::yaml::{self, Locator, Spanned};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeams {
    version: Spanned<u32>,
    #[serde(default)]
    secrets: Vec<Spanned<String>>,
    #[serde(default)]
    teams: IndexMap<String, RawTeam>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    remind_after: Option<Spanned<String>>,
    #[serde(default)]
    escalate_after: Option<Spanned<String>>,
    #[serde(default)]
    channels: Vec<RawChannel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    #[serde(default)]
    slack: Option<Spanned<String>>,
    #[serde(default)]
    teams: Option<Spanned<String>>,
    #[serde(default)]
    pagerduty: Option<Spanned<String>>,
    #[serde(default)]
    webhook: Option<Spanned<String>>,
    #[serde(default)]
    endpoint: Option<Spanned<String>>,
}

/// Whether `name` is written like a secret's name (`SLACK_DBA_WEBHOOK`).
fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// What a channel value that is not a secret name looks like, without repeating it.
fn looks_like(value: &str) -> &'static str {
    if value.contains("{{") || value.contains("{%") {
        "a template"
    } else if value.contains("://") {
        "a URL"
    } else {
        "a value"
    }
}

/// Reads `text` (the file `file`) into teams, with every finding; no
/// teams when any is an error.
pub fn check(file: &str, text: &str) -> (Option<Teams>, Vec<Diagnostic>) {
    let raw: RawTeams = match yaml::from_str(text) {
        Ok(r) => r,
        Err(e) => return (None, vec![Diagnostic::from_yaml(file, e, "schema")]),
    };
    let index = Locator::new(text);
    let mut diags = Vec::new();
    if raw.version.value != 1 {
        diags.push(Diagnostic::error(
            file,
            raw.version.pos,
            "schema",
            format!(
                "unsupported teams file version `{}`; this irctl reads version 1",
                raw.version.value
            ),
        ));
    }
    let declared: Vec<&str> = raw.secrets.iter().map(|s| s.value.as_str()).collect();
    for s in &raw.secrets {
        if !is_secret_name(&s.value) {
            diags.push(
                Diagnostic::error(
                    file,
                    s.pos,
                    "secret-value",
                    format!(
                        "`secrets:` lists {} where a secret's name belongs",
                        looks_like(&s.value)
                    ),
                )
                .with_help("name the secret (`SLACK_DBA_WEBHOOK`) and keep its value in `--secrets-file` or `IRCTL_SECRET_<NAME>`")
                .with_width(s.value.len()),
            );
        }
    }
    let mut used: HashSet<String> = HashSet::new();
    let mut teams = BTreeMap::new();
    for (key, raw_team) in &raw.teams {
        let pos = index.key_path("teams", &[key]);
        let reference = if KEYWORDS.contains(&key.as_str()) {
            Err(format!(
                "`{key}` is a keyword of `notify: {{ team: … }}`, not a team; key teams by their Backstage reference"
            ))
        } else {
            EntityRef::team(key).map(|r| r.to_string())
        };
        let reference = match reference {
            Ok(r) => r,
            Err(msg) => {
                diags.push(
                    Diagnostic::error(file, pos, "invalid-team-ref", msg)
                        .with_help("write `group:NAMESPACE/NAME`, e.g. `group:default/platform`")
                        .with_width(key.len()),
                );
                continue;
            }
        };
        if teams.contains_key(&reference) {
            diags.push(
                Diagnostic::error(
                    file,
                    pos,
                    "duplicate-team",
                    format!("team `{reference}` is listed twice"),
                )
                .with_width(key.len()),
            );
            continue;
        }
        let mut channels = Vec::new();
        for c in &raw_team.channels {
            let given: Vec<(ChannelKind, &Spanned<String>)> = [
                (ChannelKind::Slack, &c.slack),
                (ChannelKind::Teams, &c.teams),
                (ChannelKind::Pagerduty, &c.pagerduty),
                (ChannelKind::Webhook, &c.webhook),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
            let [(kind, secret)] = given.as_slice() else {
                let at = given.first().map_or(pos, |(_, v)| v.pos);
                diags.push(
                    Diagnostic::error(
                        file,
                        at,
                        "schema",
                        "a channel is exactly one of `slack`, `teams`, `pagerduty` or `webhook`",
                    )
                    .with_help("write each channel as its own list item: `- slack: SECRET_NAME`"),
                );
                continue;
            };
            let name = secret.value.trim();
            if !is_secret_name(name) {
                diags.push(
                    Diagnostic::error(
                        file,
                        secret.pos,
                        "secret-value",
                        format!(
                            "the `{}` channel of `{reference}` holds {} instead of a secret's name",
                            kind.as_str(),
                            looks_like(name)
                        ),
                    )
                    .with_help("channels name a secret (`- slack: SLACK_DBA_WEBHOOK`); keep the value in `--secrets-file` or `IRCTL_SECRET_<NAME>`, never in the repository")
                    .with_width(secret.value.len()),
                );
                continue;
            }
            if let Some(e) = &c.endpoint
                && (*kind != ChannelKind::Pagerduty
                    || !(e.value.starts_with("https://") || e.value.starts_with("http://"))
                    || e.value.contains("{{"))
            {
                diags.push(
                    Diagnostic::error(
                        file,
                        e.pos,
                        "schema",
                        "`endpoint` is a PagerDuty channel's Events API URL (`https://events.eu.pagerduty.com/v2/enqueue`)",
                    )
                    .with_width(e.value.len()),
                );
            }
            used.insert(name.to_string());
            if !declared.contains(&name) {
                diags.push(
                    Diagnostic::error(
                        file,
                        secret.pos,
                        "undeclared-secret",
                        format!("secret `{name}` is not declared in `secrets:`"),
                    )
                    .with_help(
                        did_you_mean(name, declared.iter().copied()).unwrap_or_else(|| {
                            format!("add `{name}` to the file's `secrets:` list")
                        }),
                    )
                    .with_width(name.len()),
                );
            }
            channels.push(Channel {
                kind: *kind,
                secret: name.to_string(),
                endpoint: c.endpoint.as_ref().map(|e| e.value.clone()),
            });
        }
        if raw_team.channels.is_empty() {
            diags.push(
                Diagnostic::error(
                    file,
                    pos,
                    "no-channel",
                    format!("team `{reference}` has no channel: nothing could reach it"),
                )
                .with_help("add `channels:` with at least one of `slack`, `teams`, `pagerduty` or `webhook`")
                .with_width(key.len()),
            );
        }
        let duration = |d: &Option<Spanned<String>>, what: &str, diags: &mut Vec<Diagnostic>| {
            let d = d.as_ref()?;
            match crate::duration::parse(&d.value) {
                Ok(v) if !v.is_zero() => Some(v),
                Ok(_) => {
                    diags.push(Diagnostic::error(
                        file,
                        d.pos,
                        "invalid-duration",
                        format!("`{what}` must be longer than zero"),
                    ));
                    None
                }
                Err(msg) => {
                    diags.push(
                        Diagnostic::error(file, d.pos, "invalid-duration", msg)
                            .with_width(d.value.len()),
                    );
                    None
                }
            }
        };
        let remind_after = duration(&raw_team.remind_after, "remind_after", &mut diags)
            .unwrap_or(super::DEFAULT_REMIND_AFTER);
        let escalate_after = duration(&raw_team.escalate_after, "escalate_after", &mut diags);
        teams.insert(
            reference.clone(),
            Team {
                reference,
                title: raw_team.title.clone(),
                channels,
                remind_after,
                escalate_after,
            },
        );
    }
    for s in &raw.secrets {
        if is_secret_name(&s.value) && !used.contains(&s.value) {
            diags.push(
                Diagnostic::warning(
                    file,
                    s.pos,
                    "unused-secret",
                    format!("secret `{}` is declared but no channel names it", s.value),
                )
                .with_width(s.value.len()),
            );
        }
    }
    diags.sort_by_key(|d| (d.line, d.column, d.severity));
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    (
        Some(Teams {
            file: file.to_string(),
            teams,
        }),
        diags,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: 1
secrets: [SLACK_DBA, PD_DBA]
teams:
  dba:
    title: Database team
    remind_after: 10m
    channels:
      - slack: SLACK_DBA
      - pagerduty: PD_DBA
";

    #[test]
    fn reads_teams_keyed_canonically() {
        let (teams, diags) = check("teams.yaml", GOOD);
        assert!(diags.is_empty(), "{diags:?}");
        let teams = teams.unwrap();
        let dba = teams.get("group:default/dba").unwrap();
        assert_eq!(dba.display_name(), "Database team");
        assert_eq!(dba.remind_after, std::time::Duration::from_secs(600));
        assert_eq!(dba.secrets(), ["SLACK_DBA", "PD_DBA"]);
        assert_eq!(teams.get("dba").unwrap().reference, "group:default/dba");
        assert!(
            teams
                .get("owner")
                .unwrap_err()
                .contains("needs the service catalog")
        );
        assert!(teams.get("dab").unwrap_err().contains("did you mean"));
    }

    #[test]
    fn values_in_place_of_names_are_errors_that_do_not_repeat_them() {
        let text = "version: 1
secrets: [SLACK_DBA]
teams:
  group:default/dba:
    channels:
      - slack: https://hooks.slack.com/services/T0/B0/s3cr3tvalue
      - pagerduty: \"{{ secrets.PD }}\"
      - webhook: SLACK_DBX
  group:default/empty: {}
  component:default/orders:
    channels: [{ slack: SLACK_DBA }]
";
        let (teams, diags) = check("teams.yaml", text);
        assert!(teams.is_none());
        let shown: Vec<String> = diags
            .iter()
            .map(|d| format!("{}:{} {} {}", d.line, d.column, d.code, d.message))
            .collect();
        assert!(
            shown.iter().all(|s| !s.contains("s3cr3tvalue")),
            "{shown:#?}"
        );
        assert!(shown.contains(&"6:16 secret-value the `slack` channel of `group:default/dba` holds a URL instead of a secret's name".to_string()), "{shown:#?}");
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("7:20 secret-value") && s.contains("a template")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("8:18 undeclared-secret")),
            "{shown:#?}"
        );
        assert!(
            shown.iter().any(|s| s.starts_with("9:3 no-channel")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("10:3 invalid-team-ref") && s.contains("not a team")),
            "{shown:#?}"
        );
        let undeclared = diags
            .iter()
            .find(|d| d.code == "undeclared-secret")
            .unwrap();
        assert_eq!(
            undeclared.help.as_deref(),
            Some("did you mean `SLACK_DBA`?")
        );
    }
}
