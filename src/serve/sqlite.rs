//! [`Store`] in an embedded SQLite database (`<state-dir>/serve/queue.db`).
//!
//! WAL with `synchronous=FULL`: a commit has reached the disk when it
//! returns. One writer thread owns the writing connection and commits
//! whatever requests arrived together in one transaction (group commit), so
//! two hundred senders cost one fsync per batch rather than one each, and
//! each is answered only after the commit that holds its delivery.
//!
//! Columns added since the first release (`incident_key`, `waiting_for`,
//! `waiting_since_ms`, `not_before_ms`) are added to an older database when
//! it is opened; its rows have no incident key, and so no ordering.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::source::Source;
use super::store::{Deferred, DeliveryRow, Enqueued, Finished, NewDelivery, Store, Taken};
use crate::lifecycle::held::Held;

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    dedup_key   TEXT    NOT NULL UNIQUE,
    received_ms INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'taken', 'done')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    duplicates  INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT,
    exit_code   INTEGER,
    output      TEXT,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries (state, id);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);
";

/// Columns added to `deliveries` after its first release, with their types.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("incident_key", "TEXT"),
    ("waiting_for", "TEXT"),
    ("waiting_since_ms", "INTEGER"),
    ("not_before_ms", "INTEGER"),
    ("resolves", "INTEGER NOT NULL DEFAULT 0"),
];

const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS deliveries_incident ON deliveries (incident_key, id);
CREATE INDEX IF NOT EXISTS deliveries_waiting ON deliveries (waiting_for, id) WHERE waiting_for IS NOT NULL;
";

/// How the playbooks a delivery waits for are joined in one column
/// (playbook names are kebab-case, so never hold it).
const LIST_SEP: &str = "\n";

/// Not done, and either queued or being retried after a deferral: what a
/// later delivery of the same incident, or waiting for the same
/// playbooks, queues behind.
const PENDING: &str = "(e.state = 'queued' OR (e.state = 'taken' AND e.waiting_for IS NOT NULL))";

enum Op {
    Enqueue(NewDelivery, oneshot::Sender<anyhow::Result<Enqueued>>),
    Take(i64, oneshot::Sender<anyhow::Result<Option<Taken>>>),
    Defer(i64, Deferred, oneshot::Sender<anyhow::Result<()>>),
    Nudge(oneshot::Sender<anyhow::Result<()>>),
    Finish(i64, Finished, oneshot::Sender<anyhow::Result<()>>),
    Probe(oneshot::Sender<anyhow::Result<()>>),
    Prune(i64, oneshot::Sender<anyhow::Result<u64>>),
}

/// The SQLite store.
pub struct Sqlite {
    ops: Mutex<mpsc::Sender<Op>>,
    depth: Arc<AtomicU64>,
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").field("path", &self.path).finish()
    }
}

/// What opening the store found.
#[derive(Debug)]
pub struct Opened {
    /// The store.
    pub store: Sqlite,
    /// Deliveries a killed serve had taken and not finished, queued again.
    pub requeued: u64,
}

impl Sqlite {
    /// Opens (creating) the database at `path`; `queue_max` bounds the queue.
    pub fn open(path: &Path, queue_max: u64) -> anyhow::Result<Opened> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        let conn = connect(path)?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot create the tables in `{}`", path.display()))?;
        migrate(&conn).with_context(|| format!("cannot upgrade `{}`", path.display()))?;
        let requeued = conn
            .execute(
                "UPDATE deliveries SET state = 'queued' WHERE state = 'taken'",
                [],
            )
            .with_context(|| format!("cannot requeue taken deliveries in `{}`", path.display()))?
            as u64;
        let depth: i64 = conn.query_row(
            "SELECT count(*) FROM deliveries WHERE state != 'done'",
            [],
            |r| r.get(0),
        )?;
        let depth = Arc::new(AtomicU64::new(depth.max(0) as u64));
        let reader = Arc::new(Mutex::new(connect(path)?));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            conn,
            depth: depth.clone(),
            queue_max,
        };
        std::thread::Builder::new()
            .name("serve-store".into())
            .spawn(move || writer.run(rx))
            .context("cannot start the store's writer thread")?;
        Ok(Opened {
            store: Sqlite {
                ops: Mutex::new(tx),
                depth,
                reader,
                path: path.to_path_buf(),
            },
            requeued,
        })
    }

    async fn call<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<anyhow::Result<T>>) -> Op,
    ) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.ops
            .lock()
            .map_err(|_| anyhow::anyhow!("the store's writer is gone"))?
            .send(op(tx))
            .map_err(|_| anyhow::anyhow!("the store's writer thread stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the store's writer thread stopped"))?
            .with_context(|| format!("store `{}`", self.path.display()))
    }
}

/// The deliveries of the queue in `state_dir` waiting for a `concurrency`
/// slot, one row per playbook, read without disturbing a running serve;
/// no queue (or one of an irctl that never deferred) has none.
pub fn waiting(state_dir: &Path) -> anyhow::Result<Vec<Held>> {
    let path = state_dir.join("serve").join("queue.db");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open the queue database `{}`", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let read = || -> rusqlite::Result<Vec<Held>> {
        let has_column: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('deliveries') WHERE name = 'waiting_for'",
            [],
            |r| r.get(0),
        )?;
        if !has_column {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT incident_key, waiting_for, waiting_since_ms, not_before_ms FROM deliveries
             WHERE state != 'done' AND waiting_for IS NOT NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, list, since, next) = row?;
            let since = since.and_then(chrono::DateTime::from_timestamp_millis);
            let next = next.and_then(chrono::DateTime::from_timestamp_millis);
            let (Some(key), Some(since)) = (key, since) else {
                continue;
            };
            for playbook in split_list(list) {
                out.push(Held::waiting(&key, &playbook, since, next));
            }
        }
        Ok(out)
    };
    read().with_context(|| format!("cannot read waiting deliveries in `{}`", path.display()))
}

/// Adds the columns and indexes a database of an older irctl lacks.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let mut have = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('deliveries')")?;
        let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for n in names {
            have.push(n?);
        }
    }
    for (name, ty) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE deliveries ADD COLUMN {name} {ty}"))?;
        }
    }
    conn.execute_batch(INDEXES)
}

fn split_list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(LIST_SEP)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn connect(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open the queue database `{}`", path.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
    )
    .with_context(|| format!("cannot configure `{}`", path.display()))?;
    Ok(conn)
}

impl Store for Sqlite {
    async fn enqueue(&self, delivery: NewDelivery) -> anyhow::Result<Enqueued> {
        self.call(|tx| Op::Enqueue(delivery, tx)).await
    }

    async fn take(&self, now_ms: i64) -> anyhow::Result<Option<Taken>> {
        self.call(|tx| Op::Take(now_ms, tx)).await
    }

    async fn defer(&self, id: i64, deferred: Deferred) -> anyhow::Result<()> {
        self.call(|tx| Op::Defer(id, deferred, tx)).await
    }

    async fn nudge(&self) -> anyhow::Result<()> {
        self.call(Op::Nudge).await
    }

    async fn finish(&self, id: i64, finished: Finished) -> anyhow::Result<()> {
        self.call(|tx| Op::Finish(id, finished, tx)).await
    }

    async fn probe(&self) -> anyhow::Result<()> {
        self.call(Op::Probe).await
    }

    async fn prune(&self, before_ms: i64) -> anyhow::Result<u64> {
        self.call(|tx| Op::Prune(before_ms, tx)).await
    }

    fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    async fn list(&self, limit: u32) -> anyhow::Result<Vec<DeliveryRow>> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| anyhow::anyhow!("the store's reader is poisoned"))?;
            let mut stmt = conn.prepare_cached(
                "SELECT id, source, dedup_key, state, attempts, duplicates, outcome, exit_code, output, received_ms,
                        waiting_for, waiting_since_ms, not_before_ms
                 FROM deliveries ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    Ok(DeliveryRow {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        dedup_key: r.get(2)?,
                        state: r.get(3)?,
                        attempts: r.get(4)?,
                        duplicates: r.get(5)?,
                        outcome: r.get(6)?,
                        exit_code: r.get(7)?,
                        output: r.get(8)?,
                        received_ms: r.get(9)?,
                        waiting_for: split_list(r.get(10)?),
                        waiting_since_ms: r.get(11)?,
                        not_before_ms: r.get(12)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .context("the store's reader task failed")?
    }
}

/// The thread that owns the writing connection.
struct Writer {
    conn: Connection,
    depth: Arc<AtomicU64>,
    queue_max: u64,
}

/// An answer computed inside a transaction, sent only after it commits.
enum Reply {
    Enqueue(
        oneshot::Sender<anyhow::Result<Enqueued>>,
        rusqlite::Result<Enqueued>,
    ),
    Take(
        oneshot::Sender<anyhow::Result<Option<Taken>>>,
        rusqlite::Result<Option<Taken>>,
    ),
    Unit(oneshot::Sender<anyhow::Result<()>>, rusqlite::Result<()>),
    Count(oneshot::Sender<anyhow::Result<u64>>, rusqlite::Result<u64>),
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Op>) {
        let mut depth = self.depth.load(Ordering::Relaxed) as i64;
        let mut replies = Vec::with_capacity(batch.len());
        let tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let msg = format!("cannot begin a transaction: {e}");
                for op in batch {
                    fail(op, &msg);
                }
                return;
            }
        };
        for op in batch {
            match op {
                Op::Enqueue(d, reply) => {
                    let r = enqueue(&tx, &d, depth as u64 >= self.queue_max);
                    if let Ok(Enqueued::Accepted(_)) = r {
                        depth += 1;
                    }
                    replies.push(Reply::Enqueue(reply, r));
                }
                Op::Take(now, reply) => replies.push(Reply::Take(reply, take(&tx, now))),
                Op::Defer(id, d, reply) => {
                    let r = tx.execute(
                        "UPDATE deliveries SET state = 'queued', waiting_for = ?2,
                             waiting_since_ms = coalesce(waiting_since_ms, ?3), not_before_ms = ?4,
                             outcome = ?5, exit_code = NULL, output = ?6
                         WHERE id = ?1 AND state = 'taken'",
                        params![
                            id,
                            d.waiting_for.join(LIST_SEP),
                            d.at_ms,
                            d.not_before_ms,
                            d.outcome,
                            d.output
                        ],
                    );
                    replies.push(Reply::Unit(reply, r.map(|_| ())));
                }
                Op::Nudge(reply) => {
                    let r = tx.execute(
                        "UPDATE deliveries SET not_before_ms = NULL
                         WHERE state = 'queued' AND not_before_ms IS NOT NULL",
                        [],
                    );
                    replies.push(Reply::Unit(reply, r.map(|_| ())));
                }
                Op::Finish(id, f, reply) => {
                    let r = tx.execute(
                        "UPDATE deliveries SET state = 'done', outcome = ?2, exit_code = ?3, output = ?4, finished_ms = ?5
                         WHERE id = ?1 AND state != 'done'",
                        params![id, f.outcome, f.exit_code, f.output, f.finished_ms],
                    );
                    if let Ok(1) = r {
                        depth -= 1;
                    }
                    replies.push(Reply::Unit(reply, r.map(|_| ())));
                }
                Op::Probe(reply) => {
                    let r = tx
                        .execute(
                            "INSERT OR REPLACE INTO probe (id, at_ms) VALUES (1, ?1)",
                            [chrono::Utc::now().timestamp_millis()],
                        )
                        .map(|_| ());
                    replies.push(Reply::Unit(reply, r));
                }
                Op::Prune(before, reply) => {
                    let r = tx
                        .execute(
                            "DELETE FROM deliveries WHERE state = 'done' AND received_ms < ?1",
                            [before],
                        )
                        .map(|n| n as u64);
                    replies.push(Reply::Count(reply, r));
                }
            }
        }
        match tx.commit() {
            Ok(()) => {
                self.depth.store(depth.max(0) as u64, Ordering::Relaxed);
                for r in replies {
                    match r {
                        Reply::Enqueue(s, r) => drop(s.send(r.map_err(Into::into))),
                        Reply::Take(s, r) => drop(s.send(r.map_err(Into::into))),
                        Reply::Unit(s, r) => drop(s.send(r.map_err(Into::into))),
                        Reply::Count(s, r) => drop(s.send(r.map_err(Into::into))),
                    }
                }
            }
            Err(e) => {
                let msg = format!("cannot commit: {e}");
                for r in replies {
                    match r {
                        Reply::Enqueue(s, _) => drop(s.send(Err(anyhow::anyhow!("{msg}")))),
                        Reply::Take(s, _) => drop(s.send(Err(anyhow::anyhow!("{msg}")))),
                        Reply::Unit(s, _) => drop(s.send(Err(anyhow::anyhow!("{msg}")))),
                        Reply::Count(s, _) => drop(s.send(Err(anyhow::anyhow!("{msg}")))),
                    }
                }
            }
        }
    }
}

fn fail(op: Op, msg: &str) {
    let err = || anyhow::anyhow!("{msg}");
    match op {
        Op::Enqueue(_, s) => drop(s.send(Err(err()))),
        Op::Take(_, s) => drop(s.send(Err(err()))),
        Op::Finish(_, _, s) | Op::Defer(_, _, s) | Op::Probe(s) | Op::Nudge(s) => {
            drop(s.send(Err(err())))
        }
        Op::Prune(_, s) => drop(s.send(Err(err()))),
    }
}

fn enqueue(
    tx: &rusqlite::Transaction<'_>,
    d: &NewDelivery,
    full: bool,
) -> rusqlite::Result<Enqueued> {
    let known: Option<i64> = tx
        .prepare_cached("SELECT id FROM deliveries WHERE dedup_key = ?1")?
        .query_row([&d.dedup_key], |r| r.get(0))
        .optional()?;
    if let Some(id) = known {
        tx.prepare_cached("UPDATE deliveries SET duplicates = duplicates + 1 WHERE id = ?1")?
            .execute([id])?;
        return Ok(Enqueued::Duplicate(id));
    }
    if full {
        return Ok(Enqueued::Full);
    }
    tx.prepare_cached(
        "INSERT INTO deliveries (source, dedup_key, received_ms, payload, state, incident_key, resolves)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)",
    )?
    .execute(params![
        d.source.store_name(),
        d.dedup_key,
        d.received_ms,
        d.payload,
        d.incident_key,
        d.resolves
    ])?;
    Ok(Enqueued::Accepted(tx.last_insert_rowid()))
}

fn take(tx: &rusqlite::Transaction<'_>, now_ms: i64) -> rusqlite::Result<Option<Taken>> {
    let sql = format!(
        "SELECT id, source, payload, attempts, waiting_for, waiting_since_ms FROM deliveries d
         WHERE state = 'queued' AND (not_before_ms IS NULL OR not_before_ms <= ?1)
           AND NOT EXISTS (SELECT 1 FROM deliveries e
                           WHERE e.incident_key = d.incident_key AND e.id < d.id AND {PENDING}
                             AND NOT (d.resolves = 1 AND e.resolves = 0))
           AND NOT EXISTS (SELECT 1 FROM deliveries e
                           WHERE e.waiting_for = d.waiting_for AND e.id < d.id AND {PENDING})
         ORDER BY id LIMIT 1"
    );
    type Row = (i64, String, Vec<u8>, i64, Option<String>, Option<i64>);
    let row: Option<Row> = tx
        .prepare_cached(&sql)?
        .query_row([now_ms], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((id, source, payload, attempts, waiting_for, waiting_since_ms)) = row else {
        return Ok(None);
    };
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'taken', attempts = attempts + 1 WHERE id = ?1",
    )?
    .execute([id])?;
    let mut behind = Vec::new();
    {
        let sql = format!(
            "SELECT DISTINCT waiting_for FROM deliveries e
             WHERE e.waiting_for IS NOT NULL AND e.id < ?1 AND {PENDING}"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        for list in stmt.query_map([id], |r| r.get::<_, Option<String>>(0))? {
            behind.extend(split_list(list?));
        }
    }
    behind.sort();
    behind.dedup();
    let source = Source::from_store_name(&source).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown source `{source}`").into(),
        )
    })?;
    Ok(Some(Taken {
        id,
        source,
        payload,
        attempts: attempts + 1,
        waiting_for: split_list(waiting_for),
        waiting_since_ms,
        behind,
    }))
}

#[cfg(test)]
mod tests;
