//! Episodes: the same sender key (an Alertmanager `groupKey`, a PagerDuty
//! incident or dedup key, a CloudEvents id) firing again after a resolution
//! is a new incident, not more of the old one.
//!
//! An incident's identity is its key plus its episode. The first episode
//! keeps the key itself as its id, so every record written before episodes
//! existed still names its incident; later ones are `KEY#2`, `KEY#3`, … (see
//! [`episode_id`]). Which episode a payload belongs to is decided from the
//! record alone ([`assign`]): the latest episode that has a run or an
//! incident log, and a new one when a firing payload finds it resolved.
//! The decision is made under a per-key lock, so two deliveries at once
//! land in the same episode.

use std::collections::BTreeSet;
use std::path::Path;

use super::{incident_log, run_incident_ids};
use crate::timeline::{Event, Payload};

/// The id of episode `n` (from 1) of `key`: the key itself for the first
/// episode, `KEY#n` for later ones. A key that itself ends in `#` and
/// digits gets `#1` for its first episode, so no two (key, episode) pairs
/// share an id.
pub fn episode_id(key: &str, n: u32) -> String {
    if n <= 1 && !ends_like_episode(key) {
        key.to_string()
    } else {
        format!("{key}#{}", n.max(1))
    }
}

fn ends_like_episode(key: &str) -> bool {
    key.rsplit_once('#')
        .is_some_and(|(_, tail)| !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()))
}

/// One episode of a key, as the record knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    /// The sender's key.
    pub key: String,
    /// Which episode, from 1.
    pub number: u32,
    /// Its incident id ([`episode_id`]).
    pub id: String,
    /// Whether its log's latest detection-or-resolution is a resolution.
    pub resolved: bool,
    /// When it resolved, by that resolution (the sender's end time).
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Held while an episode is chosen and its first event recorded; dropping
/// it lets the next delivery of the same key decide.
#[derive(Debug)]
pub struct KeyLock {
    _file: std::fs::File,
}

/// Takes the per-key lock of `key` in `state_dir` (waiting a few seconds at
/// most: holders keep it for one decision and one append).
pub fn lock_key(state_dir: &Path, key: &str) -> anyhow::Result<KeyLock> {
    let name = format!("episode-{}.lock", &incident_log::id_hash(key)[..24]);
    let path = state_dir.join("locks").join(name);
    let file = crate::lock::open(&path)?;
    crate::lock::lock_within(&file, &path, crate::lock::SHORT_LOCK_WAIT)?;
    Ok(KeyLock { _file: file })
}

/// The latest episode of `key` that has a run or a log; episode 1 (not
/// resolved) when there is none.
pub fn latest(state_dir: &Path, key: &str) -> anyhow::Result<Episode> {
    let runs = run_incident_ids(state_dir)?;
    Ok(latest_among(state_dir, key, &runs))
}

fn latest_among(state_dir: &Path, key: &str, runs: &BTreeSet<String>) -> Episode {
    let known = |id: &str| runs.contains(id) || incident_log::exists(state_dir, id);
    let mut number = 1;
    while number < u32::MAX && known(&episode_id(key, number + 1)) {
        number += 1;
    }
    let id = episode_id(key, number);
    let resolution = incident_log::read(state_dir, &id)
        .ok()
        .and_then(|log| resolution(&log.events));
    Episode {
        key: key.to_string(),
        number,
        id,
        resolved: resolution.is_some(),
        resolved_at: resolution.flatten(),
    }
}

/// `Some` when the latest detection or resolution among `events` is a
/// resolution, with its time when that reads.
fn resolution(events: &[Event]) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    match &events
        .iter()
        .rev()
        .find(|e| matches!(e.payload, Payload::Detected(_) | Payload::Resolved(_)))?
        .payload
    {
        Payload::Resolved(r) => Some(super::parse_time(&r.at)),
        _ => None,
    }
}

/// The episode a payload of `key` belongs to, with the key's lock held:
/// the latest one, or the next when `firing` and the latest is resolved.
pub fn assign(state_dir: &Path, key: &str, firing: bool) -> anyhow::Result<(Episode, KeyLock)> {
    let lock = lock_key(state_dir, key)?;
    let latest = latest(state_dir, key)?;
    let episode = if firing && latest.resolved {
        next(latest)
    } else {
        latest
    };
    Ok((episode, lock))
}

/// Where a firing payload belongs.
#[derive(Debug)]
pub enum Firing {
    /// In this episode (a new one when the latest had resolved).
    In(Episode),
    /// A late copy of the latest episode, which already resolved: every
    /// alert it says is firing started before that resolution (a delayed
    /// or re-sent notification, a delivery that waited in a queue). It
    /// opens no episode and must start nothing.
    Late(Episode),
}

/// [`assign`] for a firing payload whose newest firing alert started at
/// `newest_start`: when that is no later than the latest episode's
/// resolution, the payload is [`Firing::Late`]. A real re-fire starts after
/// the resolution it follows; a payload without start times is taken as one.
pub fn assign_firing(
    state_dir: &Path,
    key: &str,
    newest_start: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<(Firing, KeyLock)> {
    let lock = lock_key(state_dir, key)?;
    let latest = latest(state_dir, key)?;
    let firing = match (latest.resolved, latest.resolved_at, newest_start) {
        (true, Some(resolved), Some(start)) if start <= resolved => Firing::Late(latest),
        (true, _, _) => Firing::In(next(latest)),
        (false, _, _) => Firing::In(latest),
    };
    Ok((firing, lock))
}

/// The episode after `latest`.
fn next(latest: Episode) -> Episode {
    let number = latest.number.saturating_add(1);
    Episode {
        id: episode_id(&latest.key, number),
        key: latest.key,
        number,
        resolved: false,
        resolved_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episode_ids_never_collide() {
        assert_eq!(episode_id("k", 1), "k");
        assert_eq!(episode_id("k", 2), "k#2");
        assert_eq!(episode_id("k#2", 1), "k#2#1");
        assert_eq!(episode_id("k#x", 1), "k#x");
        assert_eq!(episode_id("k#", 1), "k#");
        let mut seen = BTreeSet::new();
        for key in ["k", "k#2", "k#2#1", "k#1", "k#"] {
            for n in 1..4 {
                assert!(seen.insert(episode_id(key, n)), "{key} {n}");
            }
        }
    }
}
