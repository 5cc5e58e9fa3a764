//! The SQLite store's queue, deduplication, deferral order and upgrade.

use super::*;

fn delivery(key: &str) -> NewDelivery {
    of_incident(key, key)
}

fn of_incident(key: &str, incident: &str) -> NewDelivery {
    NewDelivery {
        source: Source::Alertmanager,
        dedup_key: key.into(),
        payload: b"{}".to_vec(),
        received_ms: 1,
        incident_key: incident.into(),
        resolves: false,
    }
}

fn wait_for(playbook: &str, at_ms: i64, not_before_ms: i64) -> Deferred {
    Deferred {
        waiting_for: vec![playbook.into()],
        at_ms,
        not_before_ms,
        outcome: "waiting".into(),
        output: String::new(),
    }
}

async fn next(store: &Sqlite, now: i64) -> Option<i64> {
    store.take(now).await.unwrap().map(|t| t.id)
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
    let taken = store.take(0).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.attempts), (1, 1));
    drop(store);
    // Taken but not finished: queued again, attempt two.
    let opened = Sqlite::open(&path, 2).unwrap();
    assert_eq!(opened.requeued, 1);
    let store = opened.store;
    assert_eq!(store.depth(), 2);
    let taken = store.take(0).await.unwrap().unwrap();
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

#[tokio::test]
async fn deferred_deliveries_wait_in_order_without_blocking_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = Sqlite::open(&path, 100).unwrap().store;
    for (key, incident) in [("a1", "x"), ("a2", "y"), ("x2", "x"), ("b", "z")] {
        store.enqueue(of_incident(key, incident)).await.unwrap();
    }
    // a1 (incident x) waits for playbook `a` until 100.
    assert_eq!(next(&store, 0).await, Some(1));
    store.defer(1, wait_for("a", 0, 100)).await.unwrap();
    // a2 is taken, and told that an older delivery waits for `a`.
    let a2 = store.take(0).await.unwrap().unwrap();
    assert_eq!((a2.id, a2.behind.clone()), (2, vec!["a".to_string()]));
    store.defer(2, wait_for("a", 5, 50)).await.unwrap();
    // x2 queues behind a1 (same incident); b is not held up.
    assert_eq!(next(&store, 10).await, Some(4));
    assert_eq!(next(&store, 10).await, None);
    // a2 is due first, but a1 waits for `a` too and comes first.
    assert_eq!(next(&store, 60).await, None);
    store.nudge().await.unwrap();
    let a1 = store.take(10).await.unwrap().unwrap();
    assert_eq!(a1.id, 1);
    assert_eq!(a1.waiting_for, vec!["a".to_string()]);
    assert_eq!((a1.waiting_since_ms, a1.attempts), (Some(0), 2));
    assert!(a1.behind.is_empty());
    // While a1 is tried again, a2 and x2 stay behind it.
    assert_eq!(next(&store, 10).await, None);
    // Deferred again: the first wait's start is kept.
    store.defer(1, wait_for("a", 20, 0)).await.unwrap();
    drop(store);
    let store = Sqlite::open(&path, 100).unwrap().store;
    let rows = store.list(10).await.unwrap();
    let a1 = rows.iter().find(|r| r.id == 1).unwrap();
    assert_eq!(
        (a1.state.as_str(), a1.waiting_since_ms),
        ("queued", Some(0))
    );
    let done = Finished {
        outcome: "succeeded".into(),
        exit_code: Some(0),
        output: String::new(),
        finished_ms: 30,
    };
    assert_eq!(next(&store, 30).await, Some(1));
    store.finish(1, done).await.unwrap();
    // Now a2 (waiting for `a`) and x2 (incident x) may go, in order.
    assert_eq!(next(&store, 60).await, Some(2));
    assert_eq!(next(&store, 60).await, Some(3));
}

#[test]
fn a_database_of_an_older_irctl_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO deliveries (source, dedup_key, received_ms, payload, state) VALUES ('alertmanager', 'k', 1, x'7b7d', 'queued')",
            [],
        )
        .unwrap();
    }
    let store = Sqlite::open(&path, 10).unwrap().store;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let taken = rt.block_on(store.take(0)).unwrap().unwrap();
    assert_eq!((taken.id, taken.waiting_for.len()), (1, 0));
}

#[tokio::test]
async fn a_resolution_goes_ahead_of_firings_that_wait_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("q.db"), 100).unwrap().store;
    store.enqueue(of_incident("fire", "x")).await.unwrap();
    store.enqueue(of_incident("fire2", "x")).await.unwrap();
    let mut resolved = of_incident("resolved", "x");
    resolved.resolves = true;
    store.enqueue(resolved).await.unwrap();
    store.enqueue(of_incident("fire3", "x")).await.unwrap();
    // The first firing waits for a slot: the second queues behind it, the
    // resolution does not, and a firing after the resolution waits for it.
    assert_eq!(next(&store, 0).await, Some(1));
    store.defer(1, wait_for("a", 0, 100)).await.unwrap();
    assert_eq!(next(&store, 0).await, Some(3));
    assert_eq!(next(&store, 0).await, None);
}
