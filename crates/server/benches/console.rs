//! The admin console's pages with a large organisation: one site with
//! SPACES spaces and PAGES pages connected in the console, an API
//! customer's connection beside it. Each page is fetched REQUESTS times
//! over HTTP, one at a time, by a signed-in admin; prints p50, p95 and max
//! per page (time to the last byte, on localhost: the server's time).
//!
//! cargo bench -p server --bench console [-- SPACES PAGES REQUESTS]
//! (defaults: 1000 spaces, 100000 pages, 50 requests a page)

use std::time::{Duration, Instant};
use store::SyncState;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (spaces, pages, requests) = (number(0, 1000), number(1, 100_000), number(2, 50));
    let dir = std::env::temp_dir().join(format!("confsync-bench-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let filling = Instant::now();
    let store = store::Store::open(&dir).await.unwrap();
    let (organisation, _key) = server::create_organisation(&store, "bench").await.unwrap();
    let admin = store
        .create_admin(&organisation.id, "admin@bench.example", "Bench Admin", None)
        .await
        .unwrap();
    let token = "ab".repeat(32);
    store
        .create_admin_session(
            &admin.id,
            &store::NewSession {
                token_hash: &server::hash_secret(&token),
                csrf: "csrf",
                expires_at: "2999-01-01T00:00:00.000Z",
            },
        )
        .await
        .unwrap();
    let keys: Vec<String> = (0..spaces).map(|i| format!("S{i}")).collect();
    let scope = serde_json::json!({"all": false, "spaces": keys, "pages": []});
    let tags = serde_json::json!({});
    let connect = |customer: Option<&'static str>, account: &'static str| store::Connect {
        organisation_id: &organisation.id,
        customer_id: customer,
        connected_by: customer.is_none().then(|| store::Actor::from(&admin)),
        allow_personal_spaces: customer.is_some(),
        site_url: "https://bench.atlassian.net",
        context_path: "/wiki",
        site_link: None,
        auth_kind: "api_token",
        account,
        account_label: None,
        credentials: br#"{"email":"a@b.c","api_token":"t"}"#,
        chunk_size: 1500,
        chunk_overlap: 20,
        tags: &tags,
        enforce_permissions: None,
        content_kinds: None,
        new_scope: &scope,
        reconnect: None,
        list_items: false,
        next_sync_at: "2999-01-01T00:00:00.000Z",
    };
    let own = store
        .connect(connect(None, "admin-account"), |_, _| Vec::new(), |_| false)
        .await
        .unwrap()
        .connection;
    store
        .connect(
            connect(Some("customer"), "customer-account"),
            |_, _| Vec::new(),
            |_| false,
        )
        .await
        .unwrap();
    let rows: Vec<store::SpaceRow> = (0..spaces)
        .map(|i| store::SpaceRow {
            space_id: format!("{}", 10_000 + i),
            key: format!("S{i}"),
            name: format!("Space number {i:04}"),
            space_type: "global".into(),
            status: "current".into(),
            homepage_id: None,
        })
        .collect();
    store.upsert_spaces(&own.id, &rows, 1).await.unwrap();
    let options: Vec<store::NewSourceItem> = rows
        .iter()
        .map(|s| store::NewSourceItem {
            external_id: s.key.clone(),
            item_type: "SPACE",
            name: s.name.clone(),
            parent_external_id: None,
            root_external_id: Some(s.key.clone()),
            external_url: None,
            is_expandable: false,
        })
        .collect();
    store
        .replace_space_options(&own.id, &options)
        .await
        .unwrap();
    for batch in (0..pages).collect::<Vec<_>>().chunks(2_000) {
        let files: Vec<store::FileUpsert> = batch
            .iter()
            .map(|&p| store::FileUpsert {
                kind: store::kind::PAGE,
                external_id: format!("{}", 1_000_000 + p),
                space_id: Some(format!("{}", 10_000 + p % spaces)),
                parent_id: None,
                container_id: None,
                title: format!("Page {p}"),
                url: None,
                version: 1,
                media_type: None,
                size_bytes: None,
                labels: None,
                status: "READY",
                error: None,
                created_at: None,
                body: None,
                content_hash: None,
                markdown: None,
                chunks: None,
                read_restriction: Some(store::ReadRestriction::Open),
            })
            .collect();
        store
            .write_batch(&own.id, 1, &files, &[], None)
            .await
            .unwrap();
    }
    store
        .set_connection_status(&own.id, store::ConnectionStatus::Ready, None, true)
        .await
        .unwrap();
    drop(store);
    let config = server::Config {
        data_dir: dir.clone(),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = server::start(config, listener).await.unwrap();
    running.app.follower.flush().await.unwrap();
    println!(
        "{spaces} spaces, {pages} pages stored and indexed in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let base = running.url();
    let http = reqwest::Client::new();
    let ds = own.data_source_id;
    let cookie = format!("confsync_admin={token}");
    println!("page                                   p50 ms   p95 ms   max ms");
    for (name, path) in [
        ("connections", "/admin".to_string()),
        (
            "connections table (refresh)",
            "/admin/connections/table".into(),
        ),
        (
            "manage a space",
            format!("/admin/connections/{ds}/spaces/S500"),
        ),
        (
            "spaces type-ahead",
            format!("/admin/connections/{ds}/spaces/options?q=number%2007"),
        ),
        (
            "preview as (agents)",
            "/admin/preview?audience=agent&q=page".into(),
        ),
        ("API customers", "/admin/customers".into()),
        ("create connection", "/admin/connections/new".into()),
    ] {
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.bytes().await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{name:<38} {:>6.1}   {:>6.1}   {:>6.1}",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 1.0)
        );
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
