//! Search against synced simulator sites: who may see what (the property
//! test), deletes, disconnects and permission changes taking effect at
//! once, recovery after a crash between store and index, and hybrid
//! search against an embeddings server started here.

use confluence::{Client, Credentials, RetryPolicy, SiteUrl};
use confluence_sim::{Change, RunningSimulator, SimConfig, Simulator, SiteConfig};
use index::{Filters, HybridWeights, Index, SearchRequest, Viewer};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use store::{kind, Store};
use sync::{Engine, SyncOptions};

mod embeddings_server;

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    index: Arc<Index>,
    org: String,
    connection: String,
    sim: RunningSimulator,
}

async fn simulator(seed: u64, spaces: u32, pages: u32) -> RunningSimulator {
    Simulator::spawn(
        SimConfig {
            site: SiteConfig {
                seed,
                spaces,
                pages,
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

async fn fixture(
    sim: RunningSimulator,
    enforce: bool,
    embedder: Option<Arc<dyn index::Embedder>>,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).await.unwrap();
    let org = store.ensure_organisation("test").await.unwrap();
    let connection = store
        .create_connection(store::NewConnection {
            organisation_id: &org,
            site_url: &sim.base_url(),
            auth_kind: "api_token",
            account: "admin@example.com",
            credentials: b"{}",
            allow_personal_spaces: true,
            scope: serde_json::json!({}),
        })
        .await
        .unwrap()
        .id;
    store
        .set_enforce_permissions(&connection, enforce)
        .await
        .unwrap();
    let index = Arc::new(
        Index::open(&dir.path().join("index"), &store, embedder)
            .await
            .unwrap(),
    );
    Fixture {
        dir,
        store,
        index,
        org,
        connection,
        sim,
    }
}

fn client(sim: &RunningSimulator, email: &str) -> Client {
    let account = sim
        .accounts()
        .into_iter()
        .find(|a| a.email == email)
        .unwrap();
    Client::new(
        SiteUrl::cloud(&sim.base_url()),
        Credentials::ApiToken {
            email: account.email,
            token: account.api_token,
        },
        RetryPolicy::fast(),
    )
    .unwrap()
}

/// Syncs as the admin, the index following every commit, and waits for
/// the index to have caught up.
async fn sync(f: &Fixture) {
    let index = f.index.clone();
    let store = f.store.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let follower = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            while rx.try_recv().is_ok() {}
            index.catch_up(&store).await.unwrap();
        }
    });
    let engine = engine(f).with_commit_hook(Arc::new(move || {
        let _ = tx.send(());
    }));
    engine.run().await.unwrap();
    drop(engine);
    follower.await.unwrap();
    f.index.catch_up(&f.store).await.unwrap();
}

/// A sync engine for the fixture's connection, as the admin.
fn engine(f: &Fixture) -> Engine {
    Engine::new(
        client(&f.sim, "admin@example.com"),
        f.store.clone(),
        &f.connection,
        SyncOptions {
            allow_personal_spaces: true,
            download_concurrency: 8,
            space_concurrency: 3,
            ..Default::default()
        },
    )
}

fn request(f: &Fixture, viewer: &Viewer, query: &str, k: usize) -> SearchRequest {
    SearchRequest {
        organisation_id: f.org.clone(),
        viewer: viewer.clone(),
        query: query.to_string(),
        k,
        ..Default::default()
    }
}

async fn search(f: &Fixture, viewer: &Viewer, query: &str, k: usize) -> Vec<index::Hit> {
    f.index
        .search(&f.store, &request(f, viewer, query, k))
        .await
        .unwrap()
}

/// The page or blog post a hit belongs to (a comment's or attachment's
/// container).
fn owner_of(hit: &index::Hit, containers: &HashMap<String, String>) -> String {
    match hit.kind.as_str() {
        kind::PAGE | kind::BLOG_POST => hit.external_id.clone(),
        _ => containers
            .get(&hit.external_id)
            .cloned()
            .unwrap_or_default(),
    }
}

/// The external ids of the pages the store holds.
async fn page_ids(f: &Fixture) -> Vec<String> {
    f.store
        .files(&f.connection)
        .await
        .unwrap()
        .into_iter()
        .filter(|file| file.kind == kind::PAGE)
        .map(|file| file.external_id)
        .collect()
}

async fn containers(f: &Fixture) -> HashMap<String, String> {
    f.store
        .files(&f.connection)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|file| Some((file.external_id, file.container_id?)))
        .collect()
}

/// Eight consecutive words from the middle of a chunk: a phrase that finds
/// the page it came from.
fn phrase_of(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .collect();
    if words.len() < 12 {
        return None;
    }
    let start = words.len() / 2 - 4;
    Some(format!("\"{}\"", words[start..start + 8].join(" ")))
}

/// A page's first chunk's phrase.
async fn page_phrase(f: &Fixture, external_id: &str) -> Option<String> {
    let file_id = f
        .store
        .file_id(&f.connection, kind::PAGE, external_id)
        .await
        .unwrap()?;
    let chunks = f.store.chunks(file_id).await.unwrap();
    chunks.iter().find_map(|c| phrase_of(&c.text))
}

fn admin_viewer(sim: &RunningSimulator) -> Viewer {
    let admin = sim
        .accounts()
        .into_iter()
        .find(|a| a.email == "admin@example.com")
        .unwrap();
    Viewer {
        signed_in: true,
        confluence_account_id: Some(admin.account_id),
        confluence_groups: sim.groups().into_iter().map(|(id, _)| id).collect(),
        ..Viewer::default()
    }
}

fn viewer_of(sim: &RunningSimulator, email: &str) -> Viewer {
    let account = sim
        .accounts()
        .into_iter()
        .find(|a| a.email == email)
        .unwrap();
    let groups = sim.groups();
    Viewer {
        signed_in: true,
        confluence_account_id: Some(account.account_id),
        confluence_groups: groups
            .iter()
            .filter(|(_, name)| account.groups.contains(name))
            .map(|(id, _)| id.clone())
            .collect(),
        ..Viewer::default()
    }
}

fn readable(sim: &RunningSimulator, viewer: &Viewer) -> HashSet<String> {
    sim.truth_for(
        viewer.confluence_account_id.as_deref(),
        &viewer.confluence_groups,
    )
    .into_iter()
    .map(|t| t.id)
    .collect()
}

mod access;
mod changes;
mod hybrid;
mod recovery;

/// Issue 16: a long page that matches everywhere takes one place of k
/// when results are capped per file; a title-only match ranks the page's
/// first chunk, with a snippet; nothing is highlighted inside a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_result_per_page_title_matches_and_snippets_outside_urls() {
    let sim = simulator(21, 2, 40).await;
    let space_id = sim.with_site(|s| s.spaces.keys().next().unwrap().to_string());
    // A page long enough for many chunks, every one saying "zephyrine",
    // and one link whose address says "quokkas".
    let paragraph = "<p>The zephyrine turbine needs a calibration pass before every shift; \
        operators log the zephyrine readings in the shared ledger and compare them \
        with the previous week's figures to catch drift early.</p>";
    let long_body = format!(
        "{}<p>See <a href=\"https://example.com/quokkas/zephyrine-guide\">the guide</a>.</p>",
        paragraph.repeat(120)
    );
    sim.apply(Change::Create {
        id: None,
        space_id: space_id.clone(),
        parent_id: None,
        title: "Turbine handbook".into(),
        blog_post: false,
        body: Some(long_body),
    })
    .unwrap();
    sim.apply(Change::Create {
        id: None,
        space_id: space_id.clone(),
        parent_id: None,
        title: "Zephyrine overview".into(),
        blog_post: false,
        body: Some("<p>A short note on the plant's schedule.</p>".into()),
    })
    .unwrap();
    let f = fixture(sim, false, None).await;
    sync(&f).await;
    let viewer = Viewer::default();
    let search_with = |query: &str, per_file: Option<usize>| {
        let mut request = request(&f, &viewer, query, 5);
        request.per_file = per_file;
        request
    };
    // Uncapped (Carbon's k chunks): the long page fills the results.
    let uncapped = f
        .index
        .search(&f.store, &search_with("zephyrine", None))
        .await
        .unwrap();
    assert_eq!(uncapped.len(), 5);
    let files: BTreeSet<i64> = uncapped.iter().map(|h| h.file_id).collect();
    assert!(files.len() < 5, "{files:?}");
    // Capped at one: each page once.
    let capped = f
        .index
        .search(&f.store, &search_with("zephyrine", Some(1)))
        .await
        .unwrap();
    let titles: Vec<&str> = capped.iter().map(|h| h.title.as_str()).collect();
    let files: BTreeSet<i64> = capped.iter().map(|h| h.file_id).collect();
    assert_eq!(files.len(), capped.len(), "{titles:?}");
    assert!(
        titles.contains(&"Turbine handbook") && titles.contains(&"Zephyrine overview"),
        "{titles:?}"
    );
    // The title-only match: the page's first chunk, with a snippet.
    let overview = capped
        .iter()
        .find(|h| h.title == "Zephyrine overview")
        .unwrap();
    assert_eq!(overview.chunk_index, 0);
    assert!(
        overview.snippet.contains("short note"),
        "{}",
        overview.snippet
    );
    for hit in &capped {
        assert!(!hit.snippet.is_empty(), "{hit:?}");
        assert!(
            !hit.snippet.contains("/<mark>"),
            "highlight in a URL: {}",
            hit.snippet
        );
    }
    let in_url = f
        .index
        .search(&f.store, &search_with("quokkas", Some(1)))
        .await
        .unwrap();
    for hit in &in_url {
        assert!(
            !hit.snippet.contains("<mark>quokkas"),
            "highlight in a URL: {}",
            hit.snippet
        );
    }
}
