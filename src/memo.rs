//! Process-wide memoisation of pure functions of a text (a regex, a cron
//! schedule, a template): playbook repos repeat the same few texts across
//! thousands of files, and parsing them is most of the cost of checking one.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A cache from a text to what a pure function computed from it.
pub struct Memo<V> {
    map: OnceLock<Mutex<HashMap<String, V>>>,
}

impl<V: Clone> Memo<V> {
    /// An empty cache, usable as a `static`.
    pub const fn new() -> Self {
        Memo {
            map: OnceLock::new(),
        }
    }

    /// The value for `key`, computed by `f` the first time. The lock is not
    /// held while computing, so two threads may both compute a new key once;
    /// `f` is pure, so either result is the same.
    pub fn get_or(&self, key: &str, f: impl FnOnce() -> V) -> V {
        let map = self.map.get_or_init(Default::default);
        if let Some(hit) = map.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return hit.clone();
        }
        let value = f();
        map.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), value.clone());
        value
    }
}

impl<V: Clone> Default for Memo<V> {
    fn default() -> Self {
        Self::new()
    }
}
