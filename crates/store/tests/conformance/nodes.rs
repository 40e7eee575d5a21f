//! The index log under concurrent writers on PostgreSQL (issue 15): many
//! transactions, each holding its log entry's sequence number for a random
//! while before committing, so that later numbers commit first; followers
//! reading all the while, each with its own cursor, must each see every
//! change. A reader that moved by sequence number alone skips the entries
//! committed behind it.

use crate::TestDatabase;
use rand::Rng;
use sqlx::Connection;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::IndexSource;

const WRITERS: usize = 12;
const TRANSACTIONS: usize = 15;
const FOLLOWERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_reaches_every_follower() {
    let db = TestDatabase::create().await;
    let store = db.store().await.unwrap();
    let (_, connected) = crate::suite::tenant(&store, "org", "alice").await;
    let connection = connected.connection.id.clone();
    let start = store.index_head().await.unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let mut followers = Vec::new();
    for _ in 0..FOLLOWERS {
        let store = db.store().await.unwrap();
        let done = done.clone();
        followers.push(tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = BTreeSet::new();
            loop {
                // Read what is there, then once more after the writers
                // finished (everything committed is then below xmin).
                let finished = done.load(Ordering::Acquire);
                loop {
                    let changes = store.index_changes(cursor, 7).await.unwrap();
                    let Some(last) = changes.last() else { break };
                    assert!(last.position > cursor, "positions move forward");
                    cursor = last.position;
                    seen.extend(changes.iter().map(|c| c.file_id));
                }
                // Everything committed is logged, and readable once every
                // transaction begun before it has ended, in any database of
                // the server (a snapshot's xmin is the server's, and other
                // tests run beside this one): done when nothing is pending.
                if finished && store.index_pending(cursor).await.unwrap() == 0 {
                    return seen;
                }
                let pause = rand::thread_rng().gen_range(0..5);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let url = db.url.clone();
        let connection = connection.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut ids = Vec::new();
            for t in 0..TRANSACTIONS {
                let mut tx = conn.begin().await.unwrap();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO files (connection_id, kind, external_id, title, version, status, updated_at) \
                     VALUES ($1, 'page', $2, 'Title', 1, 'READY', now()) RETURNING id",
                )
                .bind(&connection)
                .bind(format!("{w}-{t}"))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                // Held open a random while: others' later entries commit
                // before this one.
                let pause = rand::thread_rng().gen_range(0..20);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                // Some transactions roll back: their entries never appear.
                let roll_back = rand::thread_rng().gen_bool(0.1);
                if roll_back {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    ids.push(id);
                }
            }
            ids
        }));
    }
    let mut written = BTreeSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    done.store(true, Ordering::Release);
    for follower in followers {
        let seen = follower.await.unwrap();
        assert_eq!(
            seen.len(),
            written.len(),
            "a follower missed {} of {} committed changes",
            written.difference(&seen).count(),
            written.len()
        );
        assert_eq!(seen, written, "followers see what committed, only that");
    }
    assert!(written.len() > WRITERS * TRANSACTIONS / 2);
}
