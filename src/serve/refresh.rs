//! Git-backed playbooks for `irctl serve`: fetch `--repo` in the background
//! every `--refresh`, and pin each run to the commit current when it starts.
//!
//! A fetch runs on a blocking thread under `--fetch-timeout` and never sits
//! in a delivery's path: workers only read the [`Pin`], and pass it to the
//! child run (`--pin-commit`), which then reads the cache at that commit
//! without fetching and records it. When the server is down the last good
//! commit keeps serving; the log warns once per failure streak, and
//! `/metrics` shows the last success and the failures.
//!
//! A fetch that moves the ref is only half of a refresh: the new commit's
//! playbooks and mappings are loaded from the cache and offered to serve's
//! [`View`]; the pin moves only when the view takes them, so a commit
//! whose files do not check is never run, and counts as a failed refresh.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;

use tokio::sync::Notify;

use super::Log;
use super::metrics::GitRefresh;
use super::reload::{Origin, View, load, short};
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

/// Fetches now, every `settings.every` and whenever `now` is notified
/// (SIGHUP); when the ref moved, loads the new commit's playbooks and
/// mappings and, only if they check, serves them and moves the pin to it —
/// together, so runs and hooks never disagree. Until the task is dropped.
pub async fn keep_fresh(
    settings: Settings,
    view: &View,
    metrics: &GitRefresh,
    now: &Notify,
    log: Log,
) {
    let pin = &settings.pin;
    let shown = RemoteUrl::parse(&settings.spec.repo)
        .map(|r| r.display)
        .unwrap_or_else(|_| "--repo".into());
    let origin = Origin::Git(settings.spec.clone());
    metrics.enable();
    // What the current failure streak is about: its warning is logged once.
    let mut streak: Option<Streak> = None;
    let mut tick = tokio::time::interval(settings.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = now.notified() => {}
        }
        let spec = settings.spec.clone();
        let fetched = tokio::task::spawn_blocking(move || fetch(&spec))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the fetch thread failed: {e}")));
        let resolved = match fetched {
            Ok(resolved) => resolved,
            Err(e) => {
                metrics.failed();
                if streak.is_none() {
                    log(&format!(
                        "warning: cannot refresh playbooks from `{shown}`: {e:#}; runs keep using commit {} until a fetch succeeds (retrying every {})",
                        short(&pin.get()),
                        crate::duration::format(settings.every)
                    ));
                }
                if !matches!(streak, Some(Streak::Refused(_))) {
                    streak = Some(Streak::Fetch);
                }
                continue;
            }
        };
        let before = pin.get();
        let target = resolved.commit.to_string();
        if before == target {
            metrics.succeeded();
            match streak.take() {
                Some(Streak::Fetch) => log(&format!(
                    "`{shown}` is reachable again; serving commit {}",
                    short(&target)
                )),
                Some(Streak::Refused(_)) => log(&format!(
                    "playbooks: `{shown}` `{}` names the served commit {} again",
                    resolved.name,
                    short(&target)
                )),
                None => {}
            }
            continue;
        }
        if matches!(&streak, Some(Streak::Refused(c)) if *c == target) {
            // The same commit was refused already: it cannot check now.
            metrics.failed();
            continue;
        }
        let (from, commit) = (origin.clone(), target.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&from, Some(&commit)))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the loading thread failed: {e}")));
        match view.offer(loaded) {
            Ok(change) => {
                metrics.succeeded();
                streak = None;
                pin.set(target.clone());
                log(&format!(
                    "playbooks: `{shown}` `{}` moved from {} to {}; serving {change}; new runs use {}",
                    resolved.name,
                    short(&before),
                    short(&target),
                    short(&target)
                ));
            }
            Err(why) => {
                metrics.failed();
                log(&format!(
                    "warning: playbooks: `{shown}` `{}` moved to {}, which is not served: {why}; runs keep using commit {}",
                    resolved.name,
                    short(&target),
                    short(&before)
                ));
                streak = Some(Streak::Refused(target));
            }
        }
    }
}

/// Why refreshes fail in a row.
enum Streak {
    /// The Git server cannot be fetched from.
    Fetch,
    /// The ref names this commit, whose playbooks or mappings do not check.
    Refused(String),
}
