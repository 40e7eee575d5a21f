//! The sync engine against the simulator: a full sync equals the ground
//! truth; an incremental sync after changes of every kind equals it again at
//! a cost that grows with the changes; faults, the rate limit and OAuth
//! token expiry do not change the outcome.

use confluence::{Client, Credentials, RetryPolicy, SiteUrl};
use confluence_sim::model::{ContentKind, Status};
use confluence_sim::{RunningSimulator, SimConfig, Simulator, SiteConfig};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use store::SyncState;
use store::{kind, Store};
use sync::{Engine, SyncOptions};

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

struct Fixture {
    _dir: tempdir::TempDir,
    store: Store,
    connection: String,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "confsync-{name}-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }
    fn rand_suffix() -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn fixture(name: &str, account: &str) -> Fixture {
    let dir = tempdir::TempDir::new(name);
    let store = Store::open(&dir.0).await.unwrap();
    let org = store.ensure_organisation("test").await.unwrap();
    let connection = store
        .create_connection(store::NewConnection {
            organisation_id: &org,
            site_url: "sim",
            auth_kind: "api_token",
            account,
            credentials: b"{}",
            allow_personal_spaces: true,
            scope: serde_json::json!({}),
        })
        .await
        .unwrap()
        .id;
    Fixture {
        _dir: dir,
        store,
        connection,
    }
}

fn api_client(sim: &RunningSimulator, email: &str) -> Client {
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

fn engine(fixture: &Fixture, client: Client) -> Engine {
    Engine::new(
        client,
        fixture.store.clone(),
        &fixture.connection,
        SyncOptions {
            allow_personal_spaces: true,
            download_concurrency: 8,
            space_concurrency: 3,
            ..Default::default()
        },
    )
}

/// The store holds exactly what the account may read: pages and blog posts
/// (id, version, title, parent, space, body hash), attachments and comments.
async fn assert_equals_truth(fixture: &Fixture, sim: &RunningSimulator, email: &str) {
    let truth = sim.truth(email).unwrap();
    let spaces: BTreeMap<String, String> = fixture
        .store
        .spaces(&fixture.connection)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.space_id, s.key))
        .collect();
    let files = fixture.store.files(&fixture.connection).await.unwrap();
    let unique: BTreeSet<(String, String)> = files
        .iter()
        .map(|f| (f.kind.clone(), f.external_id.clone()))
        .collect();
    assert_eq!(unique.len(), files.len(), "duplicate rows");
    let failed: Vec<_> = files.iter().filter(|f| f.status != "READY").collect();
    assert!(failed.is_empty(), "failed files: {failed:?}");

    type Row = (String, u32, String, Option<String>, String, String);
    let stored: BTreeMap<String, Row> = files
        .iter()
        .filter(|f| f.kind == kind::PAGE || f.kind == kind::BLOG_POST)
        .map(|f| {
            (
                f.external_id.clone(),
                (
                    f.kind.clone(),
                    f.version as u32,
                    f.title.clone(),
                    f.parent_id.clone(),
                    spaces
                        .get(f.space_id.as_deref().unwrap_or(""))
                        .cloned()
                        .unwrap_or_default(),
                    f.content_hash.clone().unwrap_or_default(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, Row> = truth
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                (
                    t.kind.clone(),
                    t.version,
                    t.title.clone(),
                    t.parent_id.clone(),
                    t.space_key.clone(),
                    t.body_sha256.clone(),
                ),
            )
        })
        .collect();
    if stored != expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !stored.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = stored
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<_> = expected
            .iter()
            .filter(|(k, v)| stored.get(*k).is_some_and(|s| s != *v))
            .take(3)
            .map(|(k, v)| (k, v, &stored[k]))
            .collect();
        panic!(
            "store != truth for {email}: {} stored, {} expected; missing {missing:?}, extra {extra:?}, differ {differ:?}",
            stored.len(),
            expected.len()
        );
    }

    // Attachments and comments of readable, current content.
    let (attachments, comments) = sim.with_site(|site| {
        let user = site.user_by_email(email).unwrap();
        let readable = |container: u64| {
            site.content
                .get(&container)
                .is_some_and(|c| c.status == Status::Current && site.can_read(user, c))
        };
        let attachments: BTreeMap<String, u32> = site
            .attachments
            .values()
            .filter(|a| a.status == Status::Current && readable(a.container_id))
            .map(|a| (a.wire_id(), a.version))
            .collect();
        let comments: BTreeSet<String> = site
            .comments
            .values()
            .filter(|c| c.status == Status::Current && readable(c.container_id))
            .map(|c| c.id.to_string())
            .collect();
        (attachments, comments)
    });
    let stored_attachments: BTreeMap<String, u32> = files
        .iter()
        .filter(|f| f.kind == kind::ATTACHMENT)
        .map(|f| (f.external_id.clone(), f.version as u32))
        .collect();
    assert_eq!(
        stored_attachments, attachments,
        "attachments differ for {email}"
    );
    let stored_comments: BTreeSet<String> = files
        .iter()
        .filter(|f| f.kind == kind::COMMENT)
        .map(|f| f.external_id.clone())
        .collect();
    assert_eq!(stored_comments, comments, "comments differ for {email}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_of_10000_pages_equals_the_truth_for_full_and_partial_accounts() {
    let sim = simulator(10, 8, 10_000).await;
    for email in ["admin@example.com", "cleo@example.com"] {
        let fixture = fixture("full", email).await;
        let report = engine(&fixture, api_client(&sim, email))
            .run()
            .await
            .unwrap();
        assert!(!report.resumed);
        assert_equals_truth(&fixture, &sim, email).await;
        let pages = sim
            .truth(email)
            .unwrap()
            .iter()
            .filter(|t| t.kind == "page")
            .count() as u64;
        assert_eq!(report.pages.added, pages);
        // Text-bearing attachments have their text stored: every kind.
        for media_type in [
            "text/plain",
            "text/markdown",
            "text/csv",
            "text/html",
            "application/pdf",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ] {
            let (text, first_line) = stored_text(&fixture, &sim, email, media_type).await;
            // PDF text comes back with its own spacing: compare words.
            let words: Vec<&str> = first_line.split(' ').take(3).collect();
            assert!(
                text.contains(&words.join(" ")),
                "{media_type}: {first_line:?} not in {text:?}"
            );
        }
        // A second run with nothing changed fetches no body again.
        sim.reset_stats();
        let again = engine(&fixture, api_client(&sim, email))
            .run()
            .await
            .unwrap();
        assert_eq!(again.pages, sync::Counts::default());
        assert_eq!(again.attachments, sync::Counts::default());
        let stats = sim.stats();
        // Pages are listed in groups of spaces (3 at once here), each
        // paying at most one partial page; a body fetch by id would add
        // a request per 250 pages.
        let op = |name: &str| stats.operations.get(name).copied().unwrap_or(0);
        let page_requests = op("GET /wiki/api/v2/pages") + op("GET /wiki/api/v2/spaces/{id}/pages");
        assert!(
            page_requests <= pages.div_ceil(250) + 3,
            "{page_requests} page requests for {pages} unchanged pages: more than listings"
        );
        assert_eq!(
            stats
                .operations
                .get("GET /wiki/download/attachments/{container}/{filename}")
                .copied()
                .unwrap_or(0),
            0
        );
    }
}

/// The stored text of the first readable attachment of a media type, and
/// the first line the simulator put in it.
async fn stored_text(
    fixture: &Fixture,
    sim: &RunningSimulator,
    email: &str,
    media_type: &str,
) -> (String, String) {
    let (id, lines) = sim.with_site(|site| {
        let user = site.user_by_email(email).unwrap();
        let a = site
            .attachments
            .values()
            .find(|a| a.media_type == media_type && site.can_read_child_of(user, a.container_id))
            .unwrap_or_else(|| panic!("no readable {media_type} attachment"));
        (
            a.wire_id(),
            confluence_sim::files::file_lines(site.seed, a.id, a.version),
        )
    });
    let text = fixture
        .store
        .file_body(&fixture.connection, kind::ATTACHMENT, &id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no text stored for {media_type} {id}"));
    (text, lines[0].clone())
}

/// Requests that list ids (to find deletions) rather than fetch changes.
/// (`/pages` and `/blogposts` list groups of spaces, and also fetch
/// changed bodies by id: those count as listing here.)
const LISTINGS: [&str; 7] = [
    "GET /wiki/api/v2/spaces",
    "GET /wiki/api/v2/spaces/{id}/pages",
    "GET /wiki/api/v2/spaces/{id}/blogposts",
    "GET /wiki/api/v2/pages",
    "GET /wiki/api/v2/blogposts",
    "GET /wiki/api/v2/attachments",
    "GET /wiki/api/v2/footer-comments",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_after_changes_of_every_kind_equals_the_truth_and_costs_little() {
    let sim = simulator(11, 8, 10_000).await;
    let email = "admin@example.com";
    let fixture = fixture("incremental", email).await;
    sim.reset_stats();
    engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    let full_requests = sim.stats().total;

    // Thirteen changes cover every kind; then ten more at random.
    let changes = sim.random_changes(5, 13);
    assert_eq!(changes.len(), 13, "{changes:?}");
    engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    assert_equals_truth(&fixture, &sim, email).await;

    let changes = sim.random_changes(6, 10);
    sim.reset_stats();
    let report = engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    assert_equals_truth(&fixture, &sim, email).await;
    let stats = sim.stats();
    let listing: u64 = LISTINGS
        .iter()
        .map(|op| stats.operations.get(*op).copied().unwrap_or(0))
        .sum();
    let beyond = stats.total - listing;
    println!("full sync {full_requests} requests; incremental {} ({listing} listing, {beyond} beyond) for {} changes; {report:?}", stats.total, changes.len());
    assert!(
        (beyond as f64) < 0.02 * full_requests as f64,
        "10 changes cost {beyond} requests beyond the listing, full sync {full_requests}: {:?}",
        stats.operations
    );
}

/// Issue 18: spaces are listed in groups (`space-id=...`), so that 60
/// spaces of about 50 pages cost what one space of 3,000 would: a request
/// per 250 pages or blog posts and one label lookup per 250, not a partial
/// page and a lookup for every space and kind (240 requests before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_spaces_cost_what_one_large_space_costs() {
    let sim = simulator(14, 60, 3_000).await;
    let email = "admin@example.com";
    let fixture = fixture("small-spaces", email).await;
    sim.reset_stats();
    let report = engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    assert_eq!(report.spaces, 60);
    assert_equals_truth(&fixture, &sim, email).await;
    let truth = sim.truth(email).unwrap();
    let count = |kind: &str| truth.iter().filter(|t| t.kind == kind).count() as u64;
    let (pages, blogposts) = (count("page"), count("blogpost"));
    let stats = sim.stats();
    let op = |name: &str| stats.operations.get(name).copied().unwrap_or(0);
    let page_listings = op("GET /wiki/api/v2/pages") + op("GET /wiki/api/v2/spaces/{id}/pages");
    let blog_listings =
        op("GET /wiki/api/v2/blogposts") + op("GET /wiki/api/v2/spaces/{id}/blogposts");
    // Three page listings run at once (space_concurrency), one for blog
    // posts: each pays at most one partial page, and its lookups as much.
    assert!(
        page_listings <= pages.div_ceil(250) + 3,
        "{page_listings} page listings for {pages} pages: {:?}",
        stats.operations
    );
    assert!(
        blog_listings <= blogposts.div_ceil(250) + 1,
        "{blog_listings} blog post listings for {blogposts}: {:?}",
        stats.operations
    );
    let lookups = op("GET /wiki/rest/api/content/search");
    assert!(
        lookups <= pages.div_ceil(250) + 3 + blogposts.div_ceil(250) + 1,
        "{lookups} label lookups: {:?}",
        stats.operations
    );

    // A second run, metadata only, lists the same groups.
    sim.random_changes(3, 5);
    sim.reset_stats();
    engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    assert_equals_truth(&fixture, &sim, email).await;
    let stats = sim.stats();
    let op = |name: &str| stats.operations.get(name).copied().unwrap_or(0);
    println!(
        "second run: {} requests {:?}",
        stats.total, stats.operations
    );
    assert_eq!(
        op("GET /wiki/api/v2/spaces/{id}/pages"),
        0,
        "{:?}",
        stats.operations
    );
    assert!(
        stats.total < 40,
        "{} requests for 5 changes in 60 spaces: {:?}",
        stats.total,
        stats.operations
    );
}

/// More chosen spaces than one listing of spaces takes by key (250, the
/// documents' maxItems): they are found in the listing of all spaces, and
/// their pages are listed in groups of at most 100 space ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_250_chosen_spaces_sync() {
    let sim = simulator(15, 300, 900).await;
    let email = "admin@example.com";
    let fixture = fixture("many-spaces", email).await;
    let keys: Vec<String> =
        sim.with_site(|site| site.spaces.values().map(|s| s.key.clone()).collect());
    assert_eq!(keys.len(), 300);
    // All but one: the one left out is not synced.
    let chosen: Vec<String> = keys[1..].to_vec();
    let report = Engine::new(
        api_client(&sim, email),
        fixture.store.clone(),
        &fixture.connection,
        SyncOptions {
            spaces: chosen.clone(),
            allow_personal_spaces: true,
            space_concurrency: 3,
            ..Default::default()
        },
    )
    .run()
    .await
    .unwrap();
    assert_eq!(report.spaces, 299);
    let stored: HashSet<String> = fixture
        .store
        .spaces(&fixture.connection)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(stored, chosen.into_iter().collect::<HashSet<_>>());
    let truth = sim.truth(email).unwrap();
    let pages = truth
        .iter()
        .filter(|t| t.kind == "page" && t.space_key != keys[0])
        .count() as u64;
    assert_eq!(report.pages.added, pages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_the_rate_limit_do_not_change_the_outcome() {
    let sim = simulator(12, 5, 2_000).await;
    sim.set_faults(confluence_sim::FaultConfig {
        rate: 0.05,
        seed: 3,
        retry_after_secs: 0,
        ..Default::default()
    });
    sim.set_rate_limit(Some(confluence_sim::RateLimitConfig {
        capacity: 60.0,
        refill_per_second: 400.0,
    }));
    let email = "admin@example.com";
    let fixture = fixture("faults", email).await;
    let mut attempts = 0;
    // A run may end early when one request exhausts its retries; it is
    // run again, as a scheduler would, and resumes from its checkpoint.
    loop {
        attempts += 1;
        match engine(&fixture, api_client(&sim, email)).run().await {
            Ok(_) => break,
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                assert!(attempts < 10, "no progress after {attempts} runs: {error}");
            }
        }
    }
    let stats = sim.stats();
    assert!(
        stats.faults_injected > 10,
        "faults were injected: {stats:?}"
    );
    sim.set_faults(confluence_sim::FaultConfig::default());
    assert_equals_truth(&fixture, &sim, email).await;
    // And after changes, under faults again.
    sim.random_changes(8, 15);
    sim.set_faults(confluence_sim::FaultConfig {
        rate: 0.05,
        seed: 4,
        retry_after_secs: 0,
        ..Default::default()
    });
    let mut attempts = 0;
    while engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .is_err()
    {
        attempts += 1;
        assert!(attempts < 10);
    }
    sim.set_faults(confluence_sim::FaultConfig::default());
    assert_equals_truth(&fixture, &sim, email).await;
}

struct SavedTokens(Arc<parking_lot::Mutex<Vec<confluence::OAuthTokens>>>);

impl confluence::TokenStore for SavedTokens {
    fn save<'a>(
        &'a self,
        tokens: &'a confluence::OAuthTokens,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        self.0.lock().push(tokens.clone());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_sync_spanning_several_token_lifetimes_completes_without_reusing_a_refresh_token()
{
    let sim = Simulator::spawn(
        SimConfig {
            site: SiteConfig {
                seed: 13,
                spaces: 3,
                pages: 1500,
            },
            access_token_ttl: std::time::Duration::from_secs(2),
            faults: confluence_sim::FaultConfig {
                latency_ms: 50,
                ..Default::default()
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let creds = sim.credentials();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = "http://127.0.0.1:9/cb";
    let consent = http
        .post(format!("{}/authorize/consent", creds.base_url))
        .form(&[
            ("client_id", creds.oauth_client_id.as_str()),
            ("redirect_uri", redirect),
            ("scope", "read:confluence-content.all offline_access"),
            ("state", "x"),
            ("account", "admin@example.com"),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: serde_json::Value = http
        .post(format!("{}/oauth/token", creds.base_url))
        .json(&serde_json::json!({"grant_type": "authorization_code", "client_id": creds.oauth_client_id,
            "client_secret": creds.oauth_client_secret, "code": code, "redirect_uri": redirect}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let saved = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let credentials = Credentials::oauth(
        confluence::OAuthApp {
            client_id: creds.oauth_client_id.clone(),
            client_secret: creds.oauth_client_secret.clone(),
            token_url: format!("{}/oauth/token", creds.base_url),
        },
        confluence::OAuthTokens {
            access_token: tokens["access_token"].as_str().unwrap().into(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().into(),
            expires_at: chrono_now() + tokens["expires_in"].as_i64().unwrap(),
            lifetime_secs: tokens["expires_in"].as_i64().unwrap(),
        },
        Arc::new(SavedTokens(saved.clone())),
    );
    let client = Client::new(
        SiteUrl::gateway(&creds.base_url, &creds.cloud_id),
        credentials,
        RetryPolicy::fast(),
    )
    .unwrap();
    let fixture = fixture("oauth", "admin@example.com").await;
    let started = std::time::Instant::now();
    engine(&fixture, client).run().await.unwrap();
    let elapsed = started.elapsed();
    assert_equals_truth(&fixture, &sim, "admin@example.com").await;
    let refreshes = saved.lock().len();
    // Two refreshes or more: the sync outlived two access tokens.
    assert!(
        refreshes >= 2,
        "tokens were refreshed {refreshes} times in {elapsed:?}"
    );
    assert_eq!(
        sim.stats().refresh_token_reuses,
        0,
        "no refresh token was used twice"
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn truth_kinds_are_known() {
    // The store's kinds cover what the simulator's truth reports.
    assert_eq!(ContentKind::Page.v1_type(), kind::PAGE);
    assert_eq!(ContentKind::BlogPost.v1_type(), kind::BLOG_POST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_fails_deletes_nothing_and_the_next_run_resumes() {
    let sim = simulator(14, 3, 900).await;
    let email = "admin@example.com";
    let fixture = fixture("failed-listing", email).await;
    engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    let before = fixture.store.files(&fixture.connection).await.unwrap();
    // Delete pages in Confluence, then fail every request after the first
    // few: the run cannot finish its listings, so it must delete nothing.
    let victims: Vec<String> = sim.with_site(|site| {
        site.content
            .values()
            .filter(|c| c.kind == ContentKind::Page && c.parent_id.is_some())
            .take(5)
            .map(|c| c.id.to_string())
            .collect()
    });
    for id in &victims {
        sim.apply(confluence_sim::Change::Trash { id: id.clone() })
            .unwrap();
    }
    let mut script = vec![];
    script.resize(40, confluence_sim::FaultKind::Internal);
    sim.set_faults(confluence_sim::FaultConfig {
        script,
        ..Default::default()
    });
    let error = engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    let during = fixture.store.files(&fixture.connection).await.unwrap();
    assert_eq!(during.len(), before.len(), "a failed run deleted files");
    let connection = fixture.store.connection(&fixture.connection).await.unwrap();
    assert_eq!(connection.status, store::ConnectionStatus::SyncError);
    assert!(connection.error.is_some());
    // The next run resumes and ends equal to the truth, the trashed pages gone.
    sim.set_faults(confluence_sim::FaultConfig::default());
    let report = engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    assert!(report.resumed);
    assert_equals_truth(&fixture, &sim, email).await;
    let after = fixture.store.files(&fixture.connection).await.unwrap();
    assert!(victims
        .iter()
        .all(|v| after.iter().all(|f| &f.external_id != v)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_pages_sync_with_their_descendants_only() {
    let sim = simulator(15, 3, 800).await;
    let email = "admin@example.com";
    // A page with a subtree, and the subtree according to the truth.
    let truth = sim.truth(email).unwrap();
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in &truth {
        if let Some(parent) = &entry.parent_id {
            children
                .entry(parent.clone())
                .or_default()
                .push(entry.id.clone());
        }
    }
    let subtree = |root: &str| {
        let mut out = BTreeSet::new();
        let mut queue = vec![root.to_string()];
        while let Some(id) = queue.pop() {
            if out.insert(id.clone()) {
                queue.extend(children.get(&id).cloned().unwrap_or_default());
            }
        }
        out
    };
    let root = children
        .keys()
        .map(|k| (subtree(k).len(), k.clone()))
        .filter(|(n, _)| *n > 5 && *n < 200)
        .max()
        .unwrap()
        .1;
    let expected = subtree(&root);
    let fixture = fixture("pages", email).await;
    let engine = Engine::new(
        api_client(&sim, email),
        fixture.store.clone(),
        &fixture.connection,
        SyncOptions {
            pages: vec![root.clone()],
            allow_personal_spaces: true,
            download_concurrency: 4,
            ..Default::default()
        },
    );
    sim.reset_stats();
    engine.run().await.unwrap();
    // The root's space is listed once (metadata: the subtree), and the
    // subtree's pages are read by id with their bodies, 250 a request.
    let stats = sim.stats();
    let op = |name: &str| stats.operations.get(name).copied().unwrap_or(0);
    let space_key = &truth.iter().find(|t| t.id == root).unwrap().space_key;
    let space_pages = truth
        .iter()
        .filter(|t| t.kind == "page" && &t.space_key == space_key)
        .count() as u64;
    assert_eq!(
        op("GET /wiki/api/v2/spaces/{id}/pages"),
        space_pages.div_ceil(250),
        "{:?}",
        stats.operations
    );
    assert_eq!(
        op("GET /wiki/api/v2/pages"),
        1 + (expected.len() as u64).div_ceil(250),
        "the chosen page, then its subtree by id: {:?}",
        stats.operations
    );
    let stored: BTreeSet<String> = fixture
        .store
        .files(&fixture.connection)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.kind == kind::PAGE || f.kind == kind::BLOG_POST)
        .map(|f| f.external_id)
        .collect();
    assert_eq!(stored, expected);
    // Attachments and comments only of those pages.
    for file in fixture.store.files(&fixture.connection).await.unwrap() {
        if let Some(container) = &file.container_id {
            assert!(expected.contains(container), "{file:?}");
        }
    }
    // After changes, the next run ends equal to the subtree again.
    sim.random_changes(4, 10);
    engine.run().await.unwrap();
    let truth = sim.truth(email).unwrap();
    let stored: BTreeMap<String, i64> = fixture
        .store
        .files(&fixture.connection)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.kind == kind::PAGE)
        .map(|f| (f.external_id, f.version))
        .collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for entry in truth.iter().filter(|t| t.kind == "page") {
        if let Some(parent) = &entry.parent_id {
            children.entry(parent.as_str()).or_default().push(&entry.id);
        }
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut queue = vec![root.as_str()];
    while let Some(id) = queue.pop() {
        if let Some(entry) = truth.iter().find(|t| t.id == id && t.kind == "page") {
            if expected
                .insert(id.to_string(), entry.version as i64)
                .is_none()
            {
                queue.extend(children.get(id).cloned().unwrap_or_default());
            }
        }
    }
    assert_eq!(stored, expected);
}

/// Issue 16: mentions read as the person's name, asked of Confluence's
/// user API once per account and connection (then from the store), and
/// only the kinds a connection syncs are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_name_people_at_one_request_per_hundred_accounts() {
    use store::IndexSource;
    let sim = simulator(12, 3, 300).await;
    let email = "admin@example.com";
    let fixture = fixture("mentions", email).await;
    sim.reset_stats();
    engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    let bulk = |sim: &RunningSimulator| {
        sim.stats()
            .operations
            .get("GET /wiki/rest/api/user/bulk")
            .copied()
            .unwrap_or(0)
    };
    let names: Vec<String> =
        sim.with_site(|s| s.users.iter().map(|u| u.display_name.clone()).collect());
    assert!(
        bulk(&sim) >= 1 && bulk(&sim) <= 2,
        "{} user/bulk requests",
        bulk(&sim)
    );
    let (mut named, mut unnamed) = (0, 0);
    for id in fixture.store.file_ids(0, 100_000).await.unwrap() {
        let Some(content) = fixture.store.file_content(id).await.unwrap() else {
            continue;
        };
        let markdown = content.markdown.unwrap_or_default();
        unnamed += markdown.matches("@user").count();
        named += names
            .iter()
            .map(|n| markdown.matches(&format!("@{n}")).count())
            .sum::<usize>();
    }
    assert_eq!(unnamed, 0, "mentions left as @user");
    assert!(named > 10, "only {named} mentions by name");

    // A new page mentioning a known person: its name comes from the store.
    sim.random_changes(9, 5);
    sim.reset_stats();
    engine(&fixture, api_client(&sim, email))
        .run()
        .await
        .unwrap();
    assert_eq!(bulk(&sim), 0, "names asked for again");
}

/// Issue 16: progress is the run's running totals, summed over the spaces
/// synced at once: it never goes back (no flicker between spaces) and
/// ends with every space done and every item listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_one_running_total() {
    let sim = simulator(13, 4, 400).await;
    let email = "admin@example.com";
    let fixture = fixture("progress", email).await;
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<sync::Progress>::new()));
    let record = seen.clone();
    let report = engine(&fixture, api_client(&sim, email))
        .with_progress(Arc::new(move |p| record.lock().push(p)))
        .run()
        .await
        .unwrap();
    let seen = seen.lock();
    for pair in seen.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            b.spaces_done >= a.spaces_done
                && b.pages >= a.pages
                && b.blogposts >= a.blogposts
                && b.attachments >= a.attachments
                && b.comments >= a.comments,
            "went back: {a:?} then {b:?}"
        );
    }
    let last = seen.last().unwrap();
    assert_eq!(last.spaces_total, Some(report.spaces));
    assert_eq!(last.spaces_done, report.spaces);
    assert_eq!(last.pages, report.pages.added);
    assert_eq!(last.blogposts, report.blogposts.added);
}
