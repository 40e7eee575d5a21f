//! The store is the source of truth: an index behind it (a crash between
//! the store's commit and the index's) catches up when opened; an index
//! lost or damaged is rebuilt from the store.

use super::*;
use store::IndexSource;

/// Syncs without the index following, as a process killed after the
/// store's commits and before the index's would leave things.
async fn sync_store_only(f: &Fixture) {
    engine(f).run().await.unwrap();
}

#[tokio::test]
async fn an_index_behind_the_store_catches_up_when_opened() {
    let mut f = fixture(simulator(21, 2, 120).await, false, None).await;
    sync(&f).await;
    let viewer = Viewer::default();
    let before = f.index.num_chunks();

    // A page edited with a word nobody else has, and a page trashed.
    let pages = page_ids(&f).await;
    let (edited, trashed) = (pages[3].clone(), pages[7].clone());
    let trashed_phrase = page_phrase(&f, &trashed).await.unwrap();
    f.sim
        .apply(Change::Edit {
            id: edited.clone(),
            body: Some("<p>The zyxwvut procedure, rewritten.</p>".into()),
        })
        .unwrap();
    f.sim
        .apply(Change::Trash {
            id: trashed.clone(),
        })
        .unwrap();
    sync_store_only(&f).await;
    assert!(f.store.index_head().await.unwrap() > store::LogPosition::default());

    // Behind: the index has not seen the edit.
    assert!(search(&f, &viewer, "zyxwvut", 5).await.is_empty());
    // "Restart": the old index closes (an index elsewhere stands in while
    // it does), and the index opens again.
    let path = f.index.path().to_path_buf();
    f.index = Arc::new(Index::open_only(&f.dir.path().join("scratch"), None).unwrap());
    f.index = Arc::new(Index::open(&path, &f.store, None).await.unwrap());
    let hits = search(&f, &viewer, "zyxwvut", 5).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].external_id, edited);
    assert!(!search(&f, &viewer, &trashed_phrase, 200)
        .await
        .iter()
        .any(|h| h.kind == kind::PAGE && h.external_id == trashed));
    assert!(f.index.num_chunks() < before + 5);
    // The log the index applied is pruned.
    let head = f.store.index_head().await.unwrap();
    assert!(f
        .store
        .index_changes(store::LogPosition::default(), 10)
        .await
        .unwrap()
        .iter()
        .all(|c| c.position > head));
    assert_eq!(f.store.index_floor().await.unwrap(), head);
}

#[tokio::test]
async fn a_lost_or_damaged_index_is_rebuilt_from_the_store() {
    let mut f = fixture(simulator(22, 2, 100).await, false, None).await;
    sync(&f).await;
    let chunks = f.index.num_chunks();
    let viewer = Viewer::default();
    let all = |hits: Vec<index::Hit>| -> BTreeSet<(i64, i64)> {
        hits.into_iter()
            .map(|h| (h.file_id, h.chunk_index))
            .collect()
    };
    let first = all(search(&f, &viewer, "the", 1_000).await);
    assert!(first.len() > 10);
    let path = f.index.path().to_path_buf();

    // Lost (the old index closed first, its merges finished).
    f.index.settle().await.unwrap();
    f.index = Arc::new(Index::open_only(&f.dir.path().join("scratch-a"), None).unwrap());
    std::fs::remove_dir_all(&path).unwrap();
    f.index = Arc::new(Index::open(&path, &f.store, None).await.unwrap());
    assert_eq!(f.index.num_chunks(), chunks);
    assert_eq!(all(search(&f, &viewer, "the", 1_000).await), first);

    // Damaged.
    f.index = Arc::new(Index::open_only(&f.dir.path().join("scratch-b"), None).unwrap());
    std::fs::write(path.join("meta.json"), b"{ not json").unwrap();
    f.index = Arc::new(Index::open(&path, &f.store, None).await.unwrap());
    assert_eq!(f.index.num_chunks(), chunks);
    assert_eq!(all(search(&f, &viewer, "the", 1_000).await), first);

    // Rebuilt on demand, equal again.
    let report = f.index.rebuild(&f.store).await.unwrap();
    assert!(report.rebuilt);
    assert_eq!(f.index.num_chunks(), chunks);
}
