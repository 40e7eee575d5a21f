//! The store's conformance suite: every test is written once, against
//! `store::Store`, and run on each backend: the embedded SQLite store in a
//! fresh data directory, and PostgreSQL in a fresh database of its own
//! (created on `CONFSYNC_TEST_POSTGRES`'s server and dropped afterwards).

mod nodes;
mod ops;
mod suite;

use store::testing::TestDatabase;
use store::Store;

pub struct Dir(pub std::path::PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "confsync-store-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs each test on SQLite (module `sqlite`) and on PostgreSQL (module
/// `postgres`), so that a failure names its backend.
macro_rules! conformance {
    ($($path:path => $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = crate::Dir::new(stringify!($name));
                    let store = store::Store::open(&dir.0).await.unwrap();
                    $path(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::TestDatabase::create().await;
                    let store = db.store().await.unwrap();
                    $path(&store).await;
                }
            )*
        }
    };
}

conformance! {
    crate::ops::each_operation_writes_its_change_events_and_job_together => operations_are_whole,
    crate::ops::console_operations_are_the_organisations_own_and_recorded => console_operations,
    crate::ops::polls_are_background_work => polls,
    crate::suite::tenants_see_only_their_own => tenant_scoping,
    crate::suite::files_sync_and_the_index_log_follows => index_log,
    crate::suite::the_queue_runs_one_job_per_connection => queue,
    crate::suite::the_outbox_delivers_and_retries => outbox,
    crate::suite::many_events_reach_each_webhook_in_order => many_events,
    crate::suite::a_batch_writes_as_its_files_one_by_one => batch_upserts,
    crate::suite::lists_page_in_order_and_names_match_any_case => pagination_and_names,
    crate::suite::counts_and_pages_span_a_customers_connections => counts_and_merged_pages,
    crate::suite::concurrent_writers_lose_nothing => concurrent_writers,
    crate::suite::times_and_json_read_back_as_written => round_trips,
    crate::suite::listings_read_parents_and_chunk_counts_as_written => parents_and_chunk_counts,
}

/// The same store opened twice (a restart) keeps everything; and a second
/// open of an up-to-date PostgreSQL database runs no migration again.
#[tokio::test]
async fn postgres_reopens_and_refuses_a_wrong_url() {
    let db = TestDatabase::create().await;
    let store = db.store().await.unwrap();
    let org = store.create_organisation("kept").await.unwrap();
    drop(store);
    let again = db.store().await.unwrap();
    assert_eq!(again.organisation(&org.id).await.unwrap().name, "kept");
    assert_eq!(again.backend(), store::BackendKind::Postgres);
    // Unreachable: a clear error, not a hang.
    let err = Store::open_postgres(
        "postgres://postgres@127.0.0.1:1/none",
        store::Cipher::from_key(store::testing::TEST_KEY),
    )
    .await
    .err()
    .expect("port 1 has no database");
    assert!(err.to_string().contains("unreachable"), "{err}");
    // Neither SQLite nor PostgreSQL.
    let err = Store::open_url(Some("mysql://x/y"), std::path::Path::new("/nonexistent"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("neither"), "{err}");
}
