//! The durable side of serve: deliveries, their deduplication keys and the
//! work queue, behind one interface.
//!
//! A delivery is acknowledged only after [`Store::enqueue`] returns, and an
//! implementation returns only once the delivery is on disk, so a crash
//! after the 2xx loses nothing. Work is taken and finished in two steps: an
//! item taken but never finished (serve was killed) is queued again on the
//! next start. A delivery whose playbook has no free `concurrency` slot
//! is not finished but deferred ([`Store::defer`]): queued again with a
//! not-before time, so it waits without holding a worker. Deliveries of one
//! incident are taken in the order they arrived, and deliveries waiting for
//! the same playbooks in the order they first waited. Embedded SQLite ([`super::sqlite`]) is the one implementation
//! today; the interface is what a PostgreSQL store for several replicas
//! will implement.

use std::future::Future;

use serde::Serialize;

use super::source::Source;

/// A delivery to store.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// Which endpoint it came to.
    pub source: Source,
    /// Equal for copies of one delivery.
    pub dedup_key: String,
    /// The body, unaltered.
    pub payload: Vec<u8>,
    /// When it arrived (Unix milliseconds).
    pub received_ms: i64,
    /// The incident key the payload names: deliveries with the same key
    /// are worked on in the order they arrived.
    pub incident_key: String,
    /// Whether the payload resolves its incident: a resolution never waits
    /// behind a firing delivery of the same incident (one waiting for a
    /// slot, or queued behind one), so a remediation not yet started finds
    /// the incident resolved and does not run.
    pub resolves: bool,
}

/// What [`Store::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored and queued, with this id.
    Accepted(i64),
    /// A copy of delivery `id`, which was already stored; nothing queued.
    Duplicate(i64),
    /// The queue holds `--queue-max` items; nothing stored.
    Full,
}

/// A queued delivery a worker took.
#[derive(Clone, Debug)]
pub struct Taken {
    /// Its id.
    pub id: i64,
    /// Its endpoint.
    pub source: Source,
    /// The body as it arrived.
    pub payload: Vec<u8>,
    /// How many times it was taken, this one included (more than one after
    /// a crash or a deferral).
    pub attempts: i64,
    /// For a deferred delivery: the playbooks it waits for; only they are
    /// run now (the others already were).
    pub waiting_for: Vec<String>,
    /// For a deferred delivery: when it first waited (Unix milliseconds).
    pub waiting_since_ms: Option<i64>,
    /// Playbooks an older delivery waits for a slot of: this one queues
    /// behind it rather than take a slot that comes free first.
    pub behind: Vec<String>,
}

/// Why a taken delivery goes back to the queue instead of being finished.
#[derive(Clone, Debug)]
pub struct Deferred {
    /// The playbooks that had no free `concurrency` slot.
    pub waiting_for: Vec<String>,
    /// When it was deferred (Unix milliseconds); the first deferral's time
    /// is kept as `waiting_since_ms`.
    pub at_ms: i64,
    /// Not taken again before this (Unix milliseconds), unless nudged.
    pub not_before_ms: i64,
    /// What happened this time, kept as the delivery's outcome meanwhile.
    pub outcome: String,
    /// The end of what the run printed.
    pub output: String,
}

/// How the work on a delivery ended.
#[derive(Clone, Debug)]
pub struct Finished {
    /// `succeeded`, `failed`, `usage-error`, `cancelled`, `crashed`.
    pub outcome: String,
    /// The run's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The end of what the run printed, for diagnosis.
    pub output: String,
    /// When (Unix milliseconds).
    pub finished_ms: i64,
}

/// A stored delivery, as `/api/deliveries` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    /// Its id.
    pub id: i64,
    /// Its endpoint.
    pub source: String,
    /// Its deduplication key.
    pub dedup_key: String,
    /// `queued`, `taken` or `done`; a deferred delivery is `queued` with
    /// `waiting_for` set.
    pub state: String,
    /// Times taken.
    pub attempts: i64,
    /// Copies received after it.
    pub duplicates: i64,
    /// How the work ended.
    pub outcome: Option<String>,
    /// The run's exit code.
    pub exit_code: Option<i32>,
    /// The end of the run's output.
    pub output: Option<String>,
    /// When it arrived (Unix milliseconds).
    pub received_ms: i64,
    /// The playbooks a deferred delivery waits for a slot of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// When a deferred delivery first waited (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_since_ms: Option<i64>,
    /// When a deferred delivery is tried again (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<i64>,
}

/// Deliveries, dedup keys and the work queue.
pub trait Store: Send + Sync + 'static {
    /// Stores `delivery` durably and queues it, unless it is a duplicate or
    /// the queue is full.
    fn enqueue(
        &self,
        delivery: NewDelivery,
    ) -> impl Future<Output = anyhow::Result<Enqueued>> + Send;
    /// Takes the oldest queued delivery that may be worked on at `now_ms`:
    /// not deferred past it, and with no older queued delivery of its
    /// incident or (when deferred) waiting for the same playbooks.
    fn take(&self, now_ms: i64) -> impl Future<Output = anyhow::Result<Option<Taken>>> + Send;
    /// Queues a taken delivery again, to wait for a `concurrency` slot.
    fn defer(&self, id: i64, deferred: Deferred)
    -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Lets deferred deliveries be tried at once (a run ended, so a slot may
    /// be free).
    fn nudge(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Marks a taken delivery done.
    fn finish(
        &self,
        id: i64,
        finished: Finished,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Proves the store can still write durably (for `/readyz`).
    fn probe(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Forgets done deliveries received before `before_ms`: their copies
    /// are no longer expected.
    fn prune(&self, before_ms: i64) -> impl Future<Output = anyhow::Result<u64>> + Send;
    /// Deliveries queued or taken and not yet done.
    fn depth(&self) -> u64;
    /// The newest `limit` deliveries, newest first.
    fn list(&self, limit: u32) -> impl Future<Output = anyhow::Result<Vec<DeliveryRow>>> + Send;
}
