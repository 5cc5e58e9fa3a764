//! The durable side of serve: deliveries, their deduplication keys and the
//! work queue, behind one interface.
//!
//! A delivery is acknowledged only after [`Store::enqueue`] returns, and an
//! implementation returns only once the delivery is on disk, so a crash
//! after the 2xx loses nothing. Work is taken and finished in two steps: an
//! item taken but never finished (serve was killed) is queued again on the
//! next start. Embedded SQLite ([`super::sqlite`]) is the one implementation
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
    /// How many times it was taken, this one included (more than one after a crash).
    pub attempts: i64,
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
    /// `queued`, `taken` or `done`.
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
}

/// Deliveries, dedup keys and the work queue.
pub trait Store: Send + Sync + 'static {
    /// Stores `delivery` durably and queues it, unless it is a duplicate or
    /// the queue is full.
    fn enqueue(
        &self,
        delivery: NewDelivery,
    ) -> impl Future<Output = anyhow::Result<Enqueued>> + Send;
    /// Takes the oldest queued delivery, if any.
    fn take(&self) -> impl Future<Output = anyhow::Result<Option<Taken>>> + Send;
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
