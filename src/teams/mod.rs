//! How to reach a team: `teams.yaml`, an irctl file kept in the playbook
//! repository beside the playbooks (or in its `catalog/` folder, next to
//! the Backstage catalog files).
//!
//! Each team is keyed by its Backstage entity reference ([`EntityRef`],
//! `group:default/platform`) and lists its channels — Slack incoming
//! webhook, Microsoft Teams workflow, PagerDuty routing key, generic
//! webhook — by the *name* of the secret that holds the URL or key, never
//! by value: the file is reviewed and read by everyone, the values live in
//! the secret store ([`crate::secret`]). [`check`] reads the file with every
//! finding at file:line:column; [`bind`] connects a playbook set's
//! `notify: { team: … }` steps to their teams and reports what does not
//! fit. Sending lives with the other notifications
//! ([`crate::engine::notify::team`]).

pub mod bind;
mod file;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use crate::catalog::EntityRef;
pub use bind::bind;
pub use file::check;

use crate::playbook::load::SourceFile;

/// Where the teams file is looked for, relative to the playbook folder (or
/// `--repo-path`), in order; at most one may exist.
pub const FILES: &[&str] = &["teams.yaml", "catalog/teams.yaml"];

/// How long a hand-off waits for acceptance before it is announced again,
/// when the team does not say.
pub const DEFAULT_REMIND_AFTER: Duration = Duration::from_secs(15 * 60);

/// The `team` values that name a team through the catalog instead of a
/// reference (`notify: { team: owner }`).
pub const KEYWORDS: &[&str] = &["owner", "impacted"];

/// A kind of channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelKind {
    /// A Slack incoming webhook URL.
    Slack,
    /// A Microsoft Teams Workflows webhook URL.
    Teams,
    /// A PagerDuty Events API v2 routing key.
    Pagerduty,
    /// A generic JSON webhook URL.
    Webhook,
}

impl ChannelKind {
    /// The name as written in `teams.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// Whether the channel pages someone: a hand-off pages only when it escalates.
    pub fn pages(self) -> bool {
        self == ChannelKind::Pagerduty
    }
}

/// One channel: its kind and the name of the secret holding its URL or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// What kind of service it is.
    pub kind: ChannelKind,
    /// The secret's name.
    pub secret: String,
    /// A PagerDuty channel's Events API endpoint (an EU service region);
    /// PagerDuty's default when unset.
    pub endpoint: Option<String>,
}

/// A team and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    /// Its canonical entity reference.
    pub reference: String,
    /// A name for people (`Database team`); the reference when unset.
    pub title: Option<String>,
    /// Its channels, in file order.
    pub channels: Vec<Channel>,
    /// How long a hand-off to it waits for acceptance before it is announced again.
    pub remind_after: Duration,
    /// How long a hand-off waits before its PagerDuty channels are paged;
    /// `None` pages only when the team has no other channel.
    pub escalate_after: Option<Duration>,
}

impl Team {
    /// What people call the team.
    pub fn display_name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.reference)
    }

    /// The names of the secrets its channels need, each once, in order.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.channels {
            if !out.contains(&c.secret) {
                out.push(c.secret.clone());
            }
        }
        out
    }

    /// The channels a hand-off is announced on: all but the pagers, or
    /// the pagers when there is nothing else.
    pub fn announce_channels(&self) -> Vec<&Channel> {
        let chat: Vec<&Channel> = self.channels.iter().filter(|c| !c.kind.pages()).collect();
        if chat.is_empty() {
            self.channels.iter().collect()
        } else {
            chat
        }
    }

    /// The channels an escalation pages.
    pub fn pager_channels(&self) -> Vec<&Channel> {
        self.channels.iter().filter(|c| c.kind.pages()).collect()
    }
}

/// A team a `team: owner|impacted` step reaches for one incident: the
/// channels it can be reached on now, and what its message's `team` is.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipient {
    /// The team, with only the channels whose secret is set.
    pub team: Team,
    /// `team` in the message's template context: `ref`, `name`, `title`,
    /// `services` (its impacted services), `role` (`owner` or `impacted`).
    pub context: serde_json::Value,
}

/// The teams of a repository, by canonical reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Teams {
    /// The file they were read from, as shown to users.
    pub file: String,
    /// The teams.
    pub teams: BTreeMap<String, Team>,
}

impl Teams {
    /// The team `reference` names (any form Backstage accepts).
    pub fn get(&self, reference: &str) -> Result<&Team, String> {
        if KEYWORDS.contains(&reference.trim()) {
            return Err(needs_catalog(reference.trim()));
        }
        let canonical = EntityRef::team(reference)?.to_string();
        self.teams.get(&canonical).ok_or_else(|| {
            let help =
                crate::diagnostic::did_you_mean(&canonical, self.teams.keys().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
            format!("team `{canonical}` is not in `{}`{help}", self.file)
        })
    }
}

/// The error for `team: owner|impacted` before the catalog exists.
pub fn needs_catalog(keyword: &str) -> String {
    format!(
        "`team: {keyword}` needs the service catalog to know which team that is; name the team (`group:default/NAME`) instead"
    )
}

/// The teams file in the playbook folder `dir`, if there is one (the first of [`FILES`]).
pub fn find_in_dir(dir: &Path) -> Vec<SourceFile> {
    FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .map(|p| SourceFile {
            path: p.to_string_lossy().trim_start_matches("./").to_string(),
            bytes: crate::capped::read_to_string(&p, MAX_TEAMS_BYTES)
                .map(String::into_bytes)
                .map_err(|e| {
                    crate::diagnostic::Diagnostic::error(
                        &p.to_string_lossy(),
                        crate::yaml::Pos::UNKNOWN,
                        "yaml-syntax",
                        format!("cannot read the teams file: {e}"),
                    )
                }),
            provenance: crate::playbook::Provenance::default(),
        })
        .collect()
}

/// Whether `rel` (a path relative to the playbook folder, `/`-separated)
/// is a teams file rather than a playbook.
pub fn is_teams_file(rel: &str) -> bool {
    FILES.contains(&rel)
}

/// Largest teams file read.
pub const MAX_TEAMS_BYTES: u64 = 1024 * 1024;

/// Reads the teams files found (at most one may exist): the teams, and the findings.
pub fn load(
    found: &[SourceFile],
) -> (
    Option<Teams>,
    Vec<crate::diagnostic::Diagnostic>,
    Option<String>,
) {
    let Some(first) = found.first() else {
        return (None, Vec::new(), None);
    };
    let mut diags = Vec::new();
    for other in &found[1..] {
        diags.push(
            crate::diagnostic::Diagnostic::error(
                &other.path,
                crate::yaml::Pos::new(1, 1),
                "duplicate-teams-file",
                format!("a second teams file; `{}` is the one read", first.path),
            )
            .with_help("keep one of `teams.yaml` and `catalog/teams.yaml`"),
        );
    }
    let bytes = match &first.bytes {
        Ok(b) => b,
        Err(d) => {
            diags.push(d.clone());
            return (None, diags, None);
        }
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        diags.push(crate::diagnostic::Diagnostic::error(
            &first.path,
            crate::yaml::Pos::UNKNOWN,
            "yaml-syntax",
            "file is not valid UTF-8",
        ));
        return (None, diags, None);
    };
    let (teams, found_diags) = check(&first.path, text);
    diags.extend(found_diags);
    (teams, diags, Some(text.to_string()))
}
