//! Remote URLs and credentials.
//!
//! A remote is split once into what libgit2 connects to (user name kept, for
//! ssh), what users see (no user-info at all) and the secrets it carried, so
//! no token, password or user name reaches output, errors or timelines. The
//! credentials callback answers libgit2 from `IRCTL_GIT_TOKEN`, the URL's
//! password, the git credential helper, or the ssh agent — each once, so a
//! wrong credential fails fast instead of looping.

use std::path::Path;

use anyhow::Context as _;
use git2::{Cred, CredentialType};

use crate::secret::{Redactor, Secret};

/// Environment variable holding an https token.
pub const TOKEN_ENV: &str = crate::env::GIT_TOKEN;

/// User name sent with a token when the URL names none (GitHub, Gitea and
/// GitLab all accept a token as the password of any user).
const TOKEN_USER: &str = "x-access-token";

/// A remote repository location, split for connecting and for showing.
#[derive(Clone, Debug)]
pub struct RemoteUrl {
    /// What libgit2 connects to: the URL without a password.
    pub fetch: String,
    /// What users see: the URL without any user-info.
    pub display: String,
    /// The host, for "cannot reach" messages (the path for local repositories).
    pub host: String,
    /// The user name from the URL, if any.
    pub username: Option<String>,
    /// The password from the URL, if any.
    pub password: Option<Secret>,
    /// Tokens from the URL's query (`?private_token=…`), masked in `display`.
    pub query_tokens: Vec<Secret>,
}

/// Query parameters that carry an access token in Git hosts' URLs (GitLab's
/// `private_token`, OAuth's `access_token`, and the generic `token`).
const TOKEN_PARAMS: &[&str] = &["private_token", "access_token", "token", "oauth_token"];

/// `url`'s query with every token parameter's value masked, and those values.
fn mask_query(url: &url::Url) -> (Option<String>, Vec<Secret>) {
    let mut tokens = Vec::new();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            if TOKEN_PARAMS.iter().any(|p| k.eq_ignore_ascii_case(p)) {
                tokens.push(Secret::new(v.as_ref()));
                (k.into_owned(), crate::secret::MASK.to_string())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    if tokens.is_empty() {
        return (url.query().map(str::to_string), tokens);
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    (Some(query), tokens)
}

/// What credential a `--repo` value carries, if any: a password in the
/// URL's user-info or a token among its query parameters. Such a value on
/// irctl's own command line is readable by every user of the machine
/// (`ps`, `/proc/PID/cmdline`), so it is accepted from `IRCTL_REPO` only.
pub fn credential_in(input: &str) -> Option<&'static str> {
    let input = input.trim();
    if !input.contains("://") {
        return None;
    }
    let url = url::Url::parse(input).ok()?;
    if url.password().is_some() {
        return Some("a password");
    }
    url.query_pairs()
        .any(|(k, _)| TOKEN_PARAMS.iter().any(|p| k.eq_ignore_ascii_case(p)))
        .then_some("an access token")
}

/// Refuses a `--repo` given on the command line that carries a credential
/// (see [`credential_in`]), before anything connects. The error never
/// repeats the value.
pub fn refuse_in_argv(input: &str) -> anyhow::Result<()> {
    match credential_in(input) {
        None => Ok(()),
        Some(what) => anyhow::bail!(
            "`--repo` carries {what}, and irctl's command line is visible to every user of this machine (`ps`): \
             set the URL in `IRCTL_REPO` instead, or pass it without the credential and set the token in `{TOKEN_ENV}` \
             (or configure a git credential helper)"
        ),
    }
}

impl RemoteUrl {
    /// Parses `--repo`: a URL (`https://`, `ssh://`, `git://`, `file://`), an
    /// scp-like `user@host:path`, or a local path.
    pub fn parse(input: &str) -> anyhow::Result<RemoteUrl> {
        let input = input.trim();
        if input.is_empty() {
            anyhow::bail!("`--repo` is empty");
        }
        if input.contains("://") {
            return Self::parse_url(input);
        }
        if let Some(remote) = Self::parse_scp(input) {
            return Ok(remote);
        }
        let path = Path::new(input);
        let abs = path
            .canonicalize()
            .with_context(|| format!("repository path `{input}` does not exist"))?;
        let shown = abs.to_string_lossy().into_owned();
        Ok(RemoteUrl {
            fetch: shown.clone(),
            display: shown.clone(),
            host: shown,
            username: None,
            password: None,
            query_tokens: Vec::new(),
        })
    }

    fn parse_url(input: &str) -> anyhow::Result<RemoteUrl> {
        let mut url = url::Url::parse(input).map_err(|e| {
            // The input may carry a password: never echo it.
            anyhow::anyhow!("invalid repository URL: {e}")
        })?;
        match url.scheme() {
            "https" | "http" | "ssh" | "git" | "file" => {}
            other => anyhow::bail!(
                "unsupported repository URL scheme `{other}`; use https, ssh, git, file or a local path"
            ),
        }
        let username = (!url.username().is_empty()).then(|| decode(url.username()));
        let password = url.password().map(|p| Secret::new(decode(p)));
        let _ = url.set_password(None);
        let fetch = url.to_string();
        let _ = url.set_username("");
        let (query, query_tokens) = mask_query(&url);
        url.set_query(query.as_deref());
        let display = url.to_string();
        let host = url
            .host_str()
            .map(|h| match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
            .unwrap_or_else(|| url.path().to_string());
        Ok(RemoteUrl {
            fetch,
            display,
            host,
            username,
            password,
            query_tokens,
        })
    }

    /// `[user@]host:path`, as git reads it: a colon before any slash.
    fn parse_scp(input: &str) -> Option<RemoteUrl> {
        let colon = input.find(':')?;
        if input[..colon].contains('/') || Path::new(input).exists() {
            return None;
        }
        let (user, host) = match input[..colon].rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, &input[..colon]),
        };
        if host.is_empty() || colon + 1 == input.len() {
            return None;
        }
        let path = &input[colon + 1..];
        Some(RemoteUrl {
            fetch: input.to_string(),
            display: format!("{host}:{path}"),
            host: host.to_string(),
            username: user,
            password: None,
            query_tokens: Vec::new(),
        })
    }

    /// Removes everything secret from `text`: the connect URL becomes the
    /// display URL, and the password and token are masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(&self.fetch, &self.display);
        if let Some(user) = &self.username {
            // URLs libgit2 derives from ours (`…/info/refs`) carry the user too.
            text = text.replace(&format!("//{user}@"), "//");
        }
        let mut secrets: Vec<Secret> = self
            .password
            .iter()
            .chain(&self.query_tokens)
            .cloned()
            .collect();
        if let Some(token) = token() {
            secrets.push(token);
        }
        Redactor::new(&secrets).redact(&text)
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The https token from the environment, if set.
pub fn token() -> Option<Secret> {
    crate::env::git_token().map(Secret::new)
}

/// Answers libgit2's credential requests for `remote`, each kind once.
pub struct Credentials {
    remote: RemoteUrl,
    tried_userpass: bool,
    tried_ssh: bool,
    tried_username: bool,
}

impl Credentials {
    /// Nothing tried yet.
    pub fn new(remote: &RemoteUrl) -> Self {
        Credentials {
            remote: remote.clone(),
            tried_userpass: false,
            tried_ssh: false,
            tried_username: false,
        }
    }

    /// The callback body: `url` and `username` come from libgit2.
    pub fn answer(
        &mut self,
        url: &str,
        username: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let user = username
            .map(str::to_string)
            .or_else(|| self.remote.username.clone());
        if allowed.contains(CredentialType::SSH_KEY) && !self.tried_ssh {
            self.tried_ssh = true;
            return Cred::ssh_key_from_agent(user.as_deref().unwrap_or("git"));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && !self.tried_userpass {
            self.tried_userpass = true;
            if let Some(password) = &self.remote.password {
                return Cred::userpass_plaintext(user.as_deref().unwrap_or(""), password.expose());
            }
            if let Some(token) = token() {
                return Cred::userpass_plaintext(
                    user.as_deref().unwrap_or(TOKEN_USER),
                    token.expose(),
                );
            }
            let config = git2::Config::open_default()?;
            return Cred::credential_helper(&config, url, user.as_deref()).map_err(|_| {
                git2::Error::from_str(&format!(
                    "`{}` asks for credentials: set `{TOKEN_ENV}` or configure a git credential helper",
                    self.remote.display
                ))
            });
        }
        if allowed.contains(CredentialType::USERNAME) && !self.tried_username {
            self.tried_username = true;
            return Cred::username(user.as_deref().unwrap_or("git"));
        }
        Err(git2::Error::from_str(&format!(
            "authentication failed for `{}` (tried {})",
            self.remote.display,
            self.tried()
        )))
    }

    fn tried(&self) -> String {
        let mut kinds = Vec::new();
        if self.tried_ssh {
            kinds.push("the ssh agent");
        }
        if self.tried_userpass {
            kinds.push(if self.remote.password.is_some() {
                "the URL's password"
            } else if token().is_some() {
                "`IRCTL_GIT_TOKEN`"
            } else {
                "the git credential helper"
            });
        }
        if kinds.is_empty() {
            "no credentials".to_string()
        } else {
            kinds.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_user_info_is_split_off() {
        let r =
            RemoteUrl::parse("https://alice:s3cr3t-pw@git.example.com/ops/playbooks.git").unwrap();
        assert_eq!(r.fetch, "https://alice@git.example.com/ops/playbooks.git");
        assert_eq!(r.display, "https://git.example.com/ops/playbooks.git");
        assert_eq!(r.host, "git.example.com");
        assert_eq!(r.username.as_deref(), Some("alice"));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("s3cr3t-pw"));
        assert_eq!(
            r.scrub("failed https://alice@git.example.com/ops/playbooks.git: s3cr3t-pw"),
            "failed https://git.example.com/ops/playbooks.git: ***"
        );
        assert_eq!(
            r.scrub("404 at https://alice@git.example.com/ops/playbooks.git/info/refs"),
            "404 at https://git.example.com/ops/playbooks.git/info/refs"
        );
    }

    #[test]
    fn query_tokens_are_masked_like_user_info() {
        let r = RemoteUrl::parse(
            "https://git.example.com/ops/playbooks.git?private_token=glpat-abc123def456&ref=x",
        )
        .unwrap();
        assert!(r.fetch.contains("private_token=glpat-abc123def456"));
        assert_eq!(
            r.display,
            "https://git.example.com/ops/playbooks.git?private_token=***&ref=x"
        );
        assert_eq!(
            r.scrub("failed glpat-abc123def456 at https://git.example.com/ops/playbooks.git?private_token=glpat-abc123def456&ref=x"),
            "failed *** at https://git.example.com/ops/playbooks.git?private_token=***&ref=x"
        );
        let r = RemoteUrl::parse("https://h.example/r.git?Access_Token=t0k3n-value").unwrap();
        assert_eq!(r.display, "https://h.example/r.git?Access_Token=***");
    }

    #[test]
    fn credentials_are_found_in_user_info_and_token_queries_only() {
        assert_eq!(
            credential_in("https://alice:pw@git.example.com/r.git"),
            Some("a password")
        );
        assert_eq!(
            credential_in("https://h.example/r.git?ref=x&Private_Token=t"),
            Some("an access token")
        );
        for clean in [
            "https://alice@git.example.com/r.git",
            "https://h.example/r.git?ref=main",
            "git@github.com:org/playbooks.git",
            "ssh://git@h.example/r.git",
            "/srv/playbooks",
            "http://[::1",
        ] {
            assert_eq!(credential_in(clean), None, "{clean}");
        }
        let err = refuse_in_argv("https://u:hunter2@h.example/r.git").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(err.to_string().contains("IRCTL_REPO"));
    }

    #[test]
    fn scp_like_drops_the_user_when_shown() {
        let r = RemoteUrl::parse("git@github.com:org/playbooks.git").unwrap();
        assert_eq!(r.fetch, "git@github.com:org/playbooks.git");
        assert_eq!(r.display, "github.com:org/playbooks.git");
        assert_eq!(r.host, "github.com");
        assert_eq!(r.username.as_deref(), Some("git"));
    }

    #[test]
    fn ports_are_part_of_the_host() {
        let r = RemoteUrl::parse("git://127.0.0.1:9418/repo.git").unwrap();
        assert_eq!(r.host, "127.0.0.1:9418");
        assert!(RemoteUrl::parse("ftp://example.com/x").is_err());
        assert!(RemoteUrl::parse("/definitely/not/here").is_err());
    }
}
