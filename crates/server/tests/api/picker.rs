//! What Carbon Connect (the file picker, on the developer's page) needs
//! before it lists anything: CORS for the configured origins, who the
//! customer is, the white labeling, and a data source id it can read.

use super::*;

async fn preflight(running: &server::Running, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/user_data_sources", running.url()),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,customer-id",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cors_answers_the_configured_origins_only() {
    let sim = simulator(1, 3).await;
    let dir = TempDir::new("cors");
    let mut config = config(&sim, &dir);
    config.cors.allowed_origins = vec!["http://picker.example:3000".into()];
    let running = start(config).await;
    let allowed = preflight(&running, "http://picker.example:3000").await;
    assert!(allowed.status().is_success());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://picker.example:3000"
    );
    let allow_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for wanted in ["authorization", "content-type", "customer-id"] {
        assert!(allow_headers.contains(wanted), "{allow_headers}");
    }
    assert!(headers.get("access-control-allow-credentials").is_none());
    // Another page gets no permission.
    let refused = preflight(&running, "http://evil.example").await;
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // The real request from the allowed page carries it too.
    let api = Api::new(&running, "org").await.customer("c");
    let response = api
        .http
        .post(format!("{}/user_data_sources", running.url()))
        .bearer_auth(&api.key)
        .header("customer-id", "c")
        .header("origin", "http://picker.example:3000")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://picker.example:3000"
    );
    running.stop().await;

    // None by default.
    let dir = TempDir::new("cors-default");
    let running = start(super::config(&sim, &dir)).await;
    let response = preflight(&running, "http://picker.example:3000").await;
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    running.stop().await;

    // Origins are checked when the configuration is read.
    for bad in [
        "http://picker.example/app",
        "picker.example",
        "ftp://x.example",
    ] {
        let mut config = server::Config::default();
        config.cors.allowed_origins = vec![bad.into()];
        assert!(config.validate().is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_picker_learns_who_and_what_before_it_lists() {
    let sim = simulator(1, 8).await;
    let dir = TempDir::new("picker");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c");
    let tokens = api.get("/auth/v1/access_token").await.1;
    let browser = org.with_token(tokens["access_token"].as_str().unwrap());

    // Who: the customer exists from the first question on.
    let (status, me) = browser.get("/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["organization_supplied_user_id"], "c");
    assert_eq!(me["num_files_synced"], 0);
    let users = org.ok("/list_users", json!({})).await;
    assert_eq!(me["id"], users["users"][0]["id"]);

    // The data source id has three parts: account id, the account as a
    // person reads it, the site (its id, a slash, its host).
    let source = api.connect(&sim, true).await;
    let files = api.wait_ready(source).await;
    let sources = browser.ok("/user_data_sources", json!({})).await;
    let external = sources["results"][0]["data_source_external_id"]
        .as_str()
        .unwrap();
    let parts: Vec<&str> = external.split('|').collect();
    let creds = sim.credentials();
    let host = url::Url::parse(&creds.base_url).unwrap();
    assert_eq!(parts.len(), 3, "{external}");
    assert!(!parts[0].is_empty());
    assert_eq!(parts[1], creds.email);
    let (site_id, site_host) = parts[2].split_once('/').expect("site id/host");
    assert!(!site_id.is_empty() && !site_id.contains('/'), "{external}");
    assert_eq!(
        site_host,
        format!("{}:{}", host.host_str().unwrap(), host.port().unwrap())
    );

    // What they have synced.
    let me = browser.get("/whoami").await.1;
    assert_eq!(
        me["num_files_synced"].as_u64().unwrap() as usize,
        files.len()
    );
    assert!(me["num_characters_synced"].as_i64().unwrap() > 0);

    // White labeling: the organisation's setting and its own app.
    let labeling = browser.get("/auth/v1/white_labeling").await.1;
    assert_eq!(labeling["remove_branding"], false);
    assert_eq!(labeling["integrations"]["CONFLUENCE"], false);
    let (status, answer) = browser
        .post("/auth/v1/white_labeling", json!({"remove_branding": true}))
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("customer_token_forbidden"))
    );
    org.ok("/auth/v1/white_labeling", json!({"remove_branding": true}))
        .await;
    org.ok(
        "/white_label/create",
        json!([{"data_source_type": "CONFLUENCE", "credentials": {"client_id": "own", "redirect_uri": "https://app.example.com/cb", "client_secret": "s"}}]),
    )
    .await;
    let labeling = browser.get("/auth/v1/white_labeling").await.1;
    assert_eq!(labeling["remove_branding"], true);
    assert_eq!(labeling["integrations"]["CONFLUENCE"], true);
    running.stop().await;
}

/// The item tree is listed by a queued job: after a connect without being
/// asked (what Carbon Connect waits for), again on items/sync, and a
/// listing can be cancelled, leaving the last complete one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn items_are_listed_by_a_job_that_can_be_cancelled() {
    let sim = simulator(3, 40).await;
    let dir = TempDir::new("items-job");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c");
    let source = api.connect(&sim, false).await;
    // Listed after the connect, unasked.
    let started = Instant::now();
    let listed = loop {
        let sources = api.ok("/user_data_sources", json!({})).await;
        let at = sources["results"][0]["source_items_synced_at"].clone();
        if !at.is_null() {
            break at;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let spaces = api
        .ok(
            "/integrations/items/list",
            json!({"data_source_id": source}),
        )
        .await;
    assert!(spaces["count"].as_i64().unwrap() >= 2, "{spaces}");

    // A slow site: a listing takes seconds; cancelled, it leaves the last
    // complete listing in place.
    sim.set_faults(confluence_sim::FaultConfig {
        latency_ms: 400,
        ..Default::default()
    });
    api.ok(
        "/integrations/items/sync",
        json!({"data_source_id": source}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.ok(
        "/integrations/items/sync/cancel",
        json!({"data_source_id": source}),
    )
    .await;
    let store = &running.app.store;
    let connection = api.connection(&running, source).await;
    let started = Instant::now();
    loop {
        let jobs = store.sync_jobs(&connection.id, 1).await.unwrap();
        if jobs[0].1 == "CANCELLED" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never cancelled: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sources = api.ok("/user_data_sources", json!({})).await;
    assert_eq!(sources["results"][0]["source_items_synced_at"], listed);
    let again = api
        .ok(
            "/integrations/items/list",
            json!({"data_source_id": source}),
        )
        .await;
    assert_eq!(again["count"], spaces["count"]);
    sim.set_faults(confluence_sim::FaultConfig::default());
    running.stop().await;
}

/// Issue 18: the item tree of 60 small spaces is listed 100 spaces a
/// request (`/pages?space-id=...`), not a space a request, and has
/// Confluence's shape: each readable page under its parent page, or under
/// its space when its parent is not a readable page; an item expandable
/// exactly when something hangs from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_item_tree_of_many_small_spaces_is_listed_a_request_per_250_pages() {
    let sim = simulator(60, 600).await;
    let dir = TempDir::new("items-many");
    let running = start(config(&sim, &dir)).await;
    let api = Api::new(&running, "org").await.customer("c");
    let source = api.connect(&sim, false).await;
    // The listing after the connect, then one counted once no other is
    // queued or running.
    api.list_items(source).await;
    let connection = api.connection(&running, source).await;
    let started = Instant::now();
    while running
        .app
        .store
        .sync_jobs(&connection.id, 10)
        .await
        .unwrap()
        .iter()
        .any(|(_, status)| status == "QUEUED" || status == "RUNNING")
    {
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.reset_stats();
    api.list_items(source).await;
    let stats = sim.stats();

    let (items, count) = running
        .app
        .store
        .source_items(
            &connection.id,
            &store::ItemQuery {
                name: Some(String::new()),
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(count as usize, items.len());
    // The spaces listed (personal ones too, if the connection takes them),
    // and the readable pages of those spaces.
    let spaces: std::collections::HashSet<&str> = items
        .iter()
        .filter(|i| i.item_type == "SPACE")
        .map(|i| i.external_id.as_str())
        .collect();
    assert!(spaces.len() >= 48, "{spaces:?}");
    let truth = sim.truth(&sim.credentials().email).unwrap();
    let pages: Vec<_> = truth
        .iter()
        .filter(|t| t.kind == "page" && spaces.contains(t.space_key.as_str()))
        .collect();
    println!(
        "{} spaces, {} pages: {} requests {:?}",
        spaces.len(),
        pages.len(),
        stats.total,
        stats.operations
    );
    let op = |name: &str| stats.operations.get(name).copied().unwrap_or(0);
    assert_eq!(
        op("GET /wiki/api/v2/spaces/{id}/pages"),
        0,
        "{:?}",
        stats.operations
    );
    assert!(
        op("GET /wiki/api/v2/pages") <= (pages.len() as u64).div_ceil(250),
        "{} pages: {:?}",
        pages.len(),
        stats.operations
    );
    let readable: std::collections::HashSet<&str> = pages.iter().map(|p| p.id.as_str()).collect();
    let expected: std::collections::BTreeMap<String, String> = pages
        .iter()
        .map(|p| {
            let parent = p
                .parent_id
                .as_deref()
                .filter(|id| readable.contains(id))
                .unwrap_or(&p.space_key);
            (p.id.clone(), parent.to_string())
        })
        .collect();
    let listed: std::collections::BTreeMap<String, String> = items
        .iter()
        .filter(|i| i.item_type == "PAGE")
        .map(|i| {
            (
                i.external_id.clone(),
                i.parent_external_id.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(listed, expected);
    let parents: std::collections::HashSet<&str> = expected.values().map(String::as_str).collect();
    for item in &items {
        assert_eq!(
            item.is_expandable,
            parents.contains(item.external_id.as_str()),
            "{item:?}"
        );
    }
    assert!(items
        .iter()
        .any(|i| i.item_type == "PAGE" && i.is_expandable));
    running.stop().await;
}
