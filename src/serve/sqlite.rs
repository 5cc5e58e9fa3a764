//! [`Store`] in an embedded SQLite database (`<state-dir>/serve/queue.db`).
//!
//! WAL with `synchronous=FULL`: a commit has reached the disk when it
//! returns. One writer thread owns the writing connection and commits
//! whatever requests arrived together in one transaction (group commit), so
//! two hundred senders cost one fsync per batch rather than one each, and
//! each is answered only after the commit that holds its delivery.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::source::Source;
use super::store::{DeliveryRow, Enqueued, Finished, NewDelivery, Store, Taken};

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

enum Op {
    Enqueue(NewDelivery, oneshot::Sender<anyhow::Result<Enqueued>>),
    Take(oneshot::Sender<anyhow::Result<Option<Taken>>>),
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

    async fn take(&self) -> anyhow::Result<Option<Taken>> {
        self.call(Op::Take).await
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
                "SELECT id, source, dedup_key, state, attempts, duplicates, outcome, exit_code, output, received_ms
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
                Op::Take(reply) => replies.push(Reply::Take(reply, take(&tx))),
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
        Op::Take(s) => drop(s.send(Err(err()))),
        Op::Finish(_, _, s) | Op::Probe(s) => drop(s.send(Err(err()))),
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
        "INSERT INTO deliveries (source, dedup_key, received_ms, payload, state) VALUES (?1, ?2, ?3, ?4, 'queued')",
    )?
    .execute(params![
        d.source.store_name(),
        d.dedup_key,
        d.received_ms,
        d.payload
    ])?;
    Ok(Enqueued::Accepted(tx.last_insert_rowid()))
}

fn take(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Option<Taken>> {
    let row: Option<(i64, String, Vec<u8>, i64)> = tx
        .prepare_cached(
            "SELECT id, source, payload, attempts FROM deliveries WHERE state = 'queued' ORDER BY id LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((id, source, payload, attempts)) = row else {
        return Ok(None);
    };
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'taken', attempts = attempts + 1 WHERE id = ?1",
    )?
    .execute([id])?;
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
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(key: &str) -> NewDelivery {
        NewDelivery {
            source: Source::Alertmanager,
            dedup_key: key.into(),
            payload: b"{}".to_vec(),
            received_ms: 1,
        }
    }

    #[tokio::test]
    async fn queue_dedups_bounds_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let store = Sqlite::open(&path, 2).unwrap().store;
        assert_eq!(
            store.enqueue(delivery("a")).await.unwrap(),
            Enqueued::Accepted(1)
        );
        assert_eq!(
            store.enqueue(delivery("a")).await.unwrap(),
            Enqueued::Duplicate(1)
        );
        assert_eq!(
            store.enqueue(delivery("b")).await.unwrap(),
            Enqueued::Accepted(2)
        );
        assert_eq!(store.enqueue(delivery("c")).await.unwrap(), Enqueued::Full);
        let taken = store.take().await.unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (1, 1));
        drop(store);
        // Taken but not finished: queued again, attempt two.
        let opened = Sqlite::open(&path, 2).unwrap();
        assert_eq!(opened.requeued, 1);
        let store = opened.store;
        assert_eq!(store.depth(), 2);
        let taken = store.take().await.unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (1, 2));
        let done = Finished {
            outcome: "succeeded".into(),
            exit_code: Some(0),
            output: String::new(),
            finished_ms: 2,
        };
        store.finish(1, done).await.unwrap();
        assert_eq!(store.depth(), 1);
        assert_eq!(store.prune(10).await.unwrap(), 1);
        assert_eq!(store.list(10).await.unwrap().len(), 1);
    }
}
