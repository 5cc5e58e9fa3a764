//! Git-backed playbooks for `irctl serve`: fetch `--repo` in the background
//! every `--refresh`, and pin each run to the commit current when it starts.
//!
//! A fetch runs on a blocking thread under `--fetch-timeout` and never sits
//! in a delivery's path: workers only read the [`Pin`], and pass it to the
//! child run (`--pin-commit`), which then reads the cache at that commit
//! without fetching and records it. When the server is down the last good
//! commit keeps serving; the log warns once per failure streak, and
//! `/metrics` shows the last success and the failures.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;

use super::Log;
use super::metrics::GitRefresh;
use crate::source::auth::RemoteUrl;
use crate::source::{self, GitSpec, git};

/// What to refresh and how often.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Git source, as the flags describe it.
    pub spec: GitSpec,
    /// Time between fetches (`--refresh`).
    pub every: Duration,
    /// The commit runs start with, moved by each successful fetch.
    pub pin: Pin,
}

/// The commit runs start with; shared by the refresher and the workers.
#[derive(Clone, Debug)]
pub struct Pin(Arc<RwLock<String>>);

impl Pin {
    /// The full id of the current commit.
    pub fn get(&self) -> String {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, commit: String) {
        match self.0.write() {
            Ok(mut c) => *c = commit,
            Err(poisoned) => *poisoned.into_inner() = commit,
        }
    }
}

/// The commit `--ref` names in the cache now (serve fetched it while
/// loading the playbooks).
pub fn pin(spec: &GitSpec) -> anyhow::Result<Pin> {
    let remote = RemoteUrl::parse(&spec.repo)?;
    let (_, resolved) = resolve(spec, &remote)?;
    Ok(Pin(Arc::new(RwLock::new(resolved.commit.to_string()))))
}

fn resolve(spec: &GitSpec, remote: &RemoteUrl) -> anyhow::Result<(git::Cache, git::Resolved)> {
    let root = source::cache_dir(spec.cache_dir.as_deref())?;
    let cache = git::Cache::of(&root, remote);
    let repo = cache
        .open()
        .with_context(|| format!("nothing is cached for `{}`", remote.display))?;
    let resolved = git::resolve(&repo, spec.git_ref.as_deref(), &remote.display)?;
    Ok((cache, resolved))
}

/// One fetch, then the commit `--ref` names.
fn fetch(spec: &GitSpec) -> anyhow::Result<git::Resolved> {
    let remote = RemoteUrl::parse(&spec.repo)?;
    let root = source::cache_dir(spec.cache_dir.as_deref())?;
    let cache = git::Cache::of(&root, &remote);
    git::fetch(&cache, &remote, spec.fetch_timeout)
        .map_err(|e| anyhow::anyhow!("{}", remote.scrub(&format!("{e:#}"))))?;
    Ok(resolve(spec, &remote)?.1)
}

/// Fetches now and every `settings.every`, and moves the pin to the new commit,
/// until the task is dropped.
pub async fn keep_fresh(settings: Settings, metrics: &GitRefresh, log: Log) {
    let pin = &settings.pin;
    let shown = RemoteUrl::parse(&settings.spec.repo)
        .map(|r| r.display)
        .unwrap_or_else(|_| "--repo".into());
    metrics.enable();
    let mut failing = false;
    let mut tick = tokio::time::interval(settings.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let spec = settings.spec.clone();
        let result = tokio::task::spawn_blocking(move || fetch(&spec))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the fetch thread failed: {e}")));
        match result {
            Ok(resolved) => {
                metrics.succeeded();
                let before = pin.get();
                let now = resolved.commit.to_string();
                if failing {
                    log(&format!("`{shown}` is reachable again"));
                    failing = false;
                }
                if before != now {
                    log(&format!(
                        "playbooks: `{shown}` `{}` moved from {} to {}; new runs use {}",
                        resolved.name,
                        short(&before),
                        short(&now),
                        short(&now)
                    ));
                    pin.set(now);
                }
            }
            Err(e) => {
                metrics.failed();
                if !failing {
                    log(&format!(
                        "warning: cannot refresh playbooks from `{shown}`: {e:#}; runs keep using commit {} until a fetch succeeds (retrying every {})",
                        short(&pin.get()),
                        crate::duration::format(settings.every)
                    ));
                    failing = true;
                }
            }
        }
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
