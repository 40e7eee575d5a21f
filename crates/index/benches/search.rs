//! Search benchmark: indexing throughput (store -> index, the real path)
//! and query latency (p50, p99) with and without a viewer filter.
//!
//!   cargo bench -p index --bench search                    # 100,000 chunks
//!   cargo bench -p index --bench search -- 100000 1000000  # both sizes
//!
//! Chunks are ~120 words drawn from a 20,000-word vocabulary with Zipf
//! frequencies (as natural text has; the 50 most frequent are English
//! function words, the rest made up), 4 chunks a file, 20 spaces. Queries
//! are 1 to 3 words drawn from the same distribution; one in five is a
//! two-word phrase. Phase 1
//! indexes with Confluence's permissions off and measures queries as an
//! anonymous viewer that may read every space (no viewer filter). Phase 2
//! turns permissions on (4% of pages restricted, some two levels deep),
//! gives 5 spaces segment-only visibility, re-indexes everything, and
//! measures the same queries as viewers with accounts, groups and tags.

use index::{Index, SearchRequest, Viewer};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use store::{FileUpsert, NewChunk, ReadRestriction, Segment, SpaceRow, Store, Visibility};
use store::{IndexSource, SyncState};

const SPACES: usize = 20;
const CHUNKS_PER_FILE: usize = 4;
const WORDS_PER_CHUNK: usize = 120;
const QUERIES: usize = 400;

struct Words {
    words: Vec<String>,
    zipf: WeightedIndex<f64>,
}

impl Words {
    fn new(rng: &mut ChaCha8Rng) -> Words {
        const SYLLABLES: &[&str] = &[
            "ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "den", "mar", "pol", "tri", "ex",
            "qua", "ser", "lin", "or", "ba", "ce", "fu",
        ];
        // Natural text's most frequent words are function words: the top
        // ranks are English's, by frequency; the rest are made up.
        const FUNCTION_WORDS: &[&str] = &[
            "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for",
            "on", "are", "with", "as", "i", "his", "they", "be", "at", "one", "have", "this",
            "from", "or", "had", "by", "but", "what", "all", "were", "we", "when", "your", "can",
            "there", "an", "which", "their", "if", "do", "will", "how", "up", "out", "them",
            "then", "so",
        ];
        let mut words: Vec<String> = FUNCTION_WORDS.iter().map(|w| w.to_string()).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        while words.len() < 20_000 {
            let n = rng.gen_range(2..5);
            let word: String = (0..n).map(|_| *SYLLABLES.choose(rng).unwrap()).collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let zipf = WeightedIndex::new((1..=words.len()).map(|r| 1.0 / r as f64)).unwrap();
        Words { words, zipf }
    }

    fn text(&self, rng: &mut ChaCha8Rng, n: usize) -> String {
        let mut text = String::with_capacity(n * 8);
        for i in 0..n {
            if i > 0 {
                text.push(if i % 17 == 0 { '.' } else { ' ' });
                if i % 17 == 0 {
                    text.push(' ');
                }
            }
            text.push_str(&self.words[self.zipf.sample(rng)]);
        }
        text
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    if meta.is_dir() {
                        dir_size(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn fill(
    store: &Store,
    connection: &str,
    chunks: usize,
    words: &Words,
    rng: &mut ChaCha8Rng,
) -> Vec<String> {
    let spaces: Vec<SpaceRow> = (0..SPACES)
        .map(|i| SpaceRow {
            space_id: format!("{}", 1000 + i),
            key: format!("SP{i}"),
            name: format!("Space {i}"),
            space_type: "global".into(),
            status: "current".into(),
            homepage_id: None,
        })
        .collect();
    store.upsert_spaces(connection, &spaces, 1).await.unwrap();
    for space in &spaces {
        store
            .set_space_principals(
                connection,
                &space.space_id,
                Some(&store::SpacePrincipals {
                    users: vec![],
                    groups: vec!["g-staff".into(), "g-all".into()],
                    anonymous: false,
                }),
            )
            .await
            .unwrap();
    }
    let files = chunks / CHUNKS_PER_FILE;
    let mut batch = Vec::new();
    let mut pages = Vec::with_capacity(files);
    for n in 0..files {
        let space = &spaces[n % SPACES];
        let id = format!("{}", 10_000_000 + n);
        // A tree: every page below one of the previous 50 in its space.
        let parent = (n >= SPACES * 50 && rng.gen_bool(0.8))
            .then(|| format!("{}", 10_000_000 + n - SPACES * rng.gen_range(1..50)));
        let restriction = if rng.gen_bool(0.04) {
            ReadRestriction::Only {
                users: vec![format!("acct-{}", rng.gen_range(0..20))],
                groups: vec![format!("g-{}", rng.gen_range(0..5))],
            }
        } else {
            ReadRestriction::Open
        };
        let chunk_rows: Vec<NewChunk> = (0..CHUNKS_PER_FILE)
            .map(|c| {
                let text = words.text(rng, WORDS_PER_CHUNK);
                NewChunk {
                    tokens: text.len() / 4,
                    start: c * 1000,
                    end: c * 1000 + text.len(),
                    text,
                    heading_path: vec![format!("Section {c}")],
                }
            })
            .collect();
        batch.push(FileUpsert {
            kind: store::kind::PAGE,
            external_id: id.clone(),
            space_id: Some(space.space_id.clone()),
            parent_id: parent,
            title: words.text(rng, 4),
            url: Some(format!("https://example.atlassian.net/wiki/pages/{id}")),
            version: 1,
            labels: Some(vec![]),
            status: "READY",
            body: Some(String::new()),
            markdown: Some(String::new()),
            chunks: Some(chunk_rows),
            read_restriction: Some(restriction),
            ..Default::default()
        });
        pages.push(id);
        if batch.len() == 500 {
            store
                .write_batch(connection, 1, &batch, &[], None)
                .await
                .unwrap();
            batch.clear();
        }
    }
    store
        .write_batch(connection, 1, &batch, &[], None)
        .await
        .unwrap();
    pages
}

fn queries(words: &Words, rng: &mut ChaCha8Rng) -> Vec<String> {
    (0..QUERIES)
        .map(|i| {
            if i % 5 == 0 {
                // A phrase of two common-ish words.
                format!("\"{}\"", words.text(rng, 2))
            } else {
                let n = rng.gen_range(1..4);
                words.text(rng, n).replace('.', "")
            }
        })
        .collect()
}

async fn measure(
    index: &Index,
    store: &Store,
    org: &str,
    queries: &[String],
    viewers: &[Viewer],
) -> (Duration, Duration, f64) {
    // Measured with the merges done, not sharing the cores with them.
    index.settle().await.unwrap();
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    // Warm up: the first queries load the index's pages.
    for query in queries.iter().take(20) {
        let request = SearchRequest {
            organisation_id: org.into(),
            viewer: viewers[0].clone(),
            query: query.clone(),
            k: 10,
            ..Default::default()
        };
        index.search(store, &request).await.unwrap();
    }
    for (i, query) in queries.iter().enumerate() {
        let request = SearchRequest {
            organisation_id: org.into(),
            viewer: viewers[i % viewers.len()].clone(),
            query: query.clone(),
            k: 10,
            ..Default::default()
        };
        let started = Instant::now();
        hits += index.search(store, &request).await.unwrap().len();
        times.push(started.elapsed());
        slowest.push((started.elapsed(), query.clone()));
    }
    slowest.sort();
    if std::env::var_os("BENCH_SLOWEST").is_some() {
        for (time, query) in slowest.iter().rev().take(5) {
            println!("    slow: {:.2} ms {query}", ms(*time));
        }
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        hits as f64 / queries.len() as f64,
    )
}

async fn run(chunks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).await.unwrap();
    let org = store.ensure_organisation("bench").await.unwrap();
    let connection = store
        .create_connection(store::NewConnection {
            organisation_id: &org,
            site_url: "https://example.atlassian.net",
            auth_kind: "api_token",
            account: "bench",
            credentials: b"{}",
            allow_personal_spaces: true,
            scope: serde_json::json!({}),
        })
        .await
        .unwrap()
        .id;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let words = Words::new(&mut rng);
    let started = Instant::now();
    fill(&store, &connection, chunks, &words, &mut rng).await;
    let filled = started.elapsed();

    let started = Instant::now();
    let index = Index::open(&dir.path().join("index"), &store, None)
        .await
        .unwrap();
    let indexed = started.elapsed();
    assert_eq!(
        index.num_chunks() as usize,
        chunks / CHUNKS_PER_FILE * CHUNKS_PER_FILE
    );
    println!(
        "{chunks} chunks: store written in {:.1} s; indexed from the store in {:.1} s = {:.0} chunks/s; index {:.0} MB",
        filled.as_secs_f64(),
        indexed.as_secs_f64(),
        chunks as f64 / indexed.as_secs_f64(),
        dir_size(&dir.path().join("index")) as f64 / 1e6
    );
    let queries = queries(&words, &mut rng);
    let anonymous = [Viewer::default()];
    let (p50, p99, hits) = measure(&index, &store, &org, &queries, &anonymous).await;
    println!(
        "  without a viewer filter: p50 {:.2} ms, p99 {:.2} ms ({QUERIES} queries, {hits:.1} hits each)",
        ms(p50),
        ms(p99)
    );

    // Phase 2: Confluence's permissions and segments.
    let staff = store
        .create_segment(
            &org,
            &Segment {
                id: String::new(),
                name: "staff".into(),
                user_type: "staff".into(),
                tags: vec![],
                or_tags: vec![],
                organization_ids: vec![],
                group_ids: vec![],
            },
        )
        .await
        .unwrap();
    let vip = store
        .create_segment(
            &org,
            &Segment {
                id: String::new(),
                name: "vip".into(),
                user_type: "signed_in".into(),
                tags: vec!["vip".into()],
                or_tags: vec![],
                organization_ids: vec![],
                group_ids: vec![],
            },
        )
        .await
        .unwrap();
    for (i, space) in store
        .spaces(&connection)
        .await
        .unwrap()
        .iter()
        .enumerate()
        .take(5)
    {
        let segment_ids = if i % 2 == 0 {
            vec![staff.id.clone()]
        } else {
            vec![vip.id.clone(), staff.id.clone()]
        };
        store
            .set_space_visibility(
                &connection,
                &space.space_id,
                &Visibility::Segments { segment_ids },
            )
            .await
            .unwrap();
    }
    store
        .set_enforce_permissions(&connection, true)
        .await
        .unwrap();
    let started = Instant::now();
    let report = index.catch_up(&store).await.unwrap();
    let reindexed = started.elapsed();
    println!(
        "  permissions on: {} chunks re-indexed in {:.1} s = {:.0} chunks/s",
        report.chunks,
        reindexed.as_secs_f64(),
        report.chunks as f64 / reindexed.as_secs_f64()
    );
    let viewers: Vec<Viewer> = (0..20)
        .map(|i| Viewer {
            signed_in: true,
            agent: i % 4 == 0,
            tags: if i % 3 == 0 {
                vec!["vip".into()]
            } else {
                vec![]
            },
            confluence_account_id: Some(format!("acct-{i}")),
            confluence_groups: vec!["g-all".into(), format!("g-{}", i % 5)],
            ..Viewer::default()
        })
        .collect();
    let (p50, p99, hits) = measure(&index, &store, &org, &queries, &viewers).await;
    println!(
        "  with a viewer filter (segments, space permissions, restrictions): p50 {:.2} ms, p99 {:.2} ms ({hits:.1} hits each)",
        ms(p50),
        ms(p99)
    );
    if chunks <= 200_000 {
        vectors(&index, &store, &org, &queries, &viewers, chunks, &mut rng).await;
    }
}

/// Phase 3 (at most 200,000 chunks): random unit vectors of 256
/// dimensions for every chunk, stored and indexed, then nearest-neighbour
/// and hybrid searches as the same viewers.
async fn vectors(
    index: &Index,
    store: &Store,
    org: &str,
    queries: &[String],
    viewers: &[Viewer],
    chunks: usize,
    rng: &mut ChaCha8Rng,
) {
    const DIM: usize = 256;
    let unit = |rng: &mut ChaCha8Rng| -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    };
    let mut after = 0;
    loop {
        let ids = store.file_ids(after, 1_000).await.unwrap();
        let Some(&last) = ids.last() else { break };
        let mut rows = Vec::new();
        for id in &ids {
            for idx in 0..CHUNKS_PER_FILE as i64 {
                rows.push((*id, idx, unit(rng)));
            }
        }
        store.set_vectors(&rows).await.unwrap();
        after = last;
    }
    let started = Instant::now();
    index.rebuild(store).await.unwrap();
    println!(
        "  vectors ({DIM} dimensions) stored; re-indexed with them in {:.1} s = {:.0} chunks/s",
        started.elapsed().as_secs_f64(),
        chunks as f64 / started.elapsed().as_secs_f64()
    );
    index.settle().await.unwrap();
    for hybrid in [false, true] {
        let mut times = Vec::new();
        for (i, query) in queries.iter().enumerate().take(200) {
            let request = SearchRequest {
                organisation_id: org.into(),
                viewer: viewers[i % viewers.len()].clone(),
                query: if hybrid { query.clone() } else { String::new() },
                query_vector: Some(unit(rng)),
                hybrid: hybrid.then(index::HybridWeights::default),
                k: 10,
                ..Default::default()
            };
            let started = Instant::now();
            let hits = index.search(store, &request).await.unwrap();
            times.push(started.elapsed());
            assert!(!hits.is_empty());
        }
        times.sort();
        println!(
            "  {} as viewers: p50 {:.2} ms, p99 {:.2} ms (exact, over every admitted chunk)",
            if hybrid {
                "hybrid (keyword + vector, 0.5/0.5)"
            } else {
                "nearest neighbours"
            },
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99))
        );
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for size in sizes {
        runtime.block_on(run(size));
    }
}
