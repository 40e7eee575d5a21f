//! Hybrid search: vectors computed through an OpenAI-compatible provider,
//! stored with their chunks, searched by nearest neighbour inside the same
//! permission filter, and fused with keyword ranking by Carbon's weights.

use super::*;
use index::{OpenAiConfig, OpenAiEmbedder};
use std::sync::atomic::Ordering;

async fn with_embeddings(seed: u64) -> (Fixture, Arc<embeddings_server::Counters>) {
    let (url, counters) = embeddings_server::start().await;
    // The first two requests fail: the client retries.
    counters.fail_first.store(2, Ordering::SeqCst);
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        base_url: url,
        model: "test-embedding".into(),
        api_key: Some(embeddings_server::KEY.into()),
        dimensions: None,
    })
    .unwrap();
    let f = fixture(simulator(seed, 2, 60).await, true, Some(Arc::new(embedder))).await;
    sync(&f).await;
    (f, counters)
}

#[tokio::test]
async fn vectors_are_stored_with_chunks_and_nearest_neighbours_respect_permissions() {
    let (f, counters) = with_embeddings(31).await;
    let chunks = f.index.num_chunks();
    assert!(chunks > 50);
    assert_eq!(
        counters.inputs.load(Ordering::SeqCst) as u64,
        chunks,
        "every chunk embedded once"
    );
    // Stored with the chunks: a rebuild embeds nothing again.
    let before = counters.requests.load(Ordering::SeqCst);
    f.index.rebuild(&f.store).await.unwrap();
    assert_eq!(counters.requests.load(Ordering::SeqCst), before);

    let admin = admin_viewer(&f.sim);
    let pages = page_ids(&f).await;
    // A chunk's own text, as a query vector, finds that chunk first.
    let page = &pages[5];
    let file_id = f
        .store
        .file_id(&f.connection, kind::PAGE, page)
        .await
        .unwrap()
        .unwrap();
    let chunk = &f.store.chunks(file_id).await.unwrap()[0];
    let title = f
        .store
        .files(&f.connection)
        .await
        .unwrap()
        .into_iter()
        .find(|x| &x.external_id == page)
        .unwrap()
        .title;
    let text = format!("{title}\n{}", chunk.text);
    let mut req = request(&f, &admin, "", 5);
    req.query_vector = Some(embeddings_server::embed(&text));
    req.include_vectors = true;
    let hits = f.index.search(&f.store, &req).await.unwrap();
    assert_eq!(hits[0].file_id, file_id);
    assert!(hits[0].score > 0.99, "{}", hits[0].score);
    assert_eq!(
        hits[0].vector.as_ref().map(Vec::len),
        Some(embeddings_server::DIM)
    );

    // Nearest neighbours only among what the viewer may read.
    let containers = containers(&f).await;
    for email in ["cleo@example.com", "eli@example.com", "fay@example.com"] {
        let viewer = viewer_of(&f.sim, email);
        let allowed = readable(&f.sim, &viewer);
        let mut req = request(&f, &viewer, "", 200);
        req.query_vector = Some(embeddings_server::embed(&text));
        for hit in f.index.search(&f.store, &req).await.unwrap() {
            assert!(
                allowed.contains(&owner_of(&hit, &containers)),
                "{email} got {}",
                hit.external_id
            );
        }
    }
}

#[tokio::test]
async fn hybrid_fuses_keyword_and_semantic_by_carbons_weights() {
    let (f, _counters) = with_embeddings(32).await;
    let admin = admin_viewer(&f.sim);
    let query = "release plan";
    let ranked = |weights: HybridWeights| {
        let mut req = request(&f, &admin, query, 10);
        req.hybrid = Some(weights);
        let index = f.index.clone();
        let store = f.store.clone();
        async move { index.search(&store, &req).await.unwrap() }
    };
    let keyword_only = search(&f, &admin, query, 10).await;
    let all_keyword = ranked(HybridWeights {
        weight_a: 0.0,
        weight_b: 1.0,
    })
    .await;
    assert_eq!(
        all_keyword
            .iter()
            .map(|h| (h.file_id, h.chunk_index))
            .collect::<Vec<_>>(),
        keyword_only
            .iter()
            .map(|h| (h.file_id, h.chunk_index))
            .collect::<Vec<_>>(),
        "weight_b 1 ranks as keyword search does"
    );
    let mut req = request(&f, &admin, "", 10);
    req.query_vector = Some(embeddings_server::embed(query));
    let semantic_only = f.index.search(&f.store, &req).await.unwrap();
    let all_semantic = ranked(HybridWeights {
        weight_a: 1.0,
        weight_b: 0.0,
    })
    .await;
    assert_eq!(all_semantic[0].file_id, semantic_only[0].file_id);
    let even = ranked(HybridWeights::default()).await;
    assert_eq!(even.len(), 10);
    assert!(even.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(even[0].score <= 1.0 + 1e-6);
}

#[tokio::test]
async fn a_failing_provider_leaves_keyword_search_working() {
    let (url, counters) = embeddings_server::start().await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        base_url: url,
        model: "m".into(),
        api_key: Some("wrong-key".into()),
        dimensions: None,
    })
    .unwrap();
    let f = fixture(simulator(33, 1, 30).await, false, Some(Arc::new(embedder))).await;
    sync(&f).await;
    assert!(counters.requests.load(Ordering::SeqCst) > 0);
    assert!(!search(&f, &Viewer::default(), "the", 5).await.is_empty());
    let mut req = request(&f, &Viewer::default(), "the", 5);
    req.hybrid = Some(HybridWeights::default());
    // The query itself cannot be embedded: a clear error, not a panic.
    assert!(f.index.search(&f.store, &req).await.is_err());
}
