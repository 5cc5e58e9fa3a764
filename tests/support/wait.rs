//! Bounded polling for tests that wait on another process.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it yields a value; fails the test with
/// `what` once `deadline` has passed. Every wait in the tests is bounded.
pub fn wait_until<T>(
    deadline: Instant,
    every: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(every);
    }
}
