//! Issue 11: each hole an attacker found, as a test that failed before
//! its fix. The names say the finding.

use super::*;
use std::collections::BTreeSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A customer token for `api`'s customer (GET: the narrowest viewer).
async fn token(api: &Api) -> String {
    let (status, answer) = api.get("/auth/v1/access_token").await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_string()
}

/// Finding 1: a customer token acts for its customer only, never for the
/// organisation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customer_token_cannot_act_for_the_organisation() {
    let sim = simulator(1, 4).await;
    let dir = TempDir::new("sec-roles");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let alice = org.customer("alice");
    let bob = org.customer("bob");
    bob.connect(&sim, false).await;
    let hook = org
        .ok("/add_webhook", json!({"url": "http://127.0.0.1:9/hook"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let browser = org.with_token(&token(&alice).await);
    // The token works for its own customer's operations...
    assert_eq!(
        browser.ok("/user_data_sources", json!({})).await["count"],
        0
    );
    // ...and for nothing the organisation does.
    let label = json!([{"data_source_type": "CONFLUENCE", "credentials": {"client_id": "evil", "redirect_uri": "https://evil.example/cb", "client_secret": "x"}}]);
    let attempts: Vec<(&str, &str, Value)> = vec![
        ("POST", "/delete_users", json!({"customer_ids": ["bob"]})),
        (
            "POST",
            "/update_users",
            json!({"customer_ids": ["bob"], "auto_sync_enabled_sources": []}),
        ),
        ("POST", "/list_users", json!({})),
        (
            "POST",
            "/add_webhook",
            json!({"url": "https://evil.example/hook"}),
        ),
        ("POST", "/webhooks", json!({})),
        ("DELETE", "/delete_webhook/{hook}", json!(null)),
        ("POST", "/white_label/create", label.clone()),
        ("POST", "/white_label/list", json!({})),
        ("POST", "/white_label/update", label[0].clone()),
        ("POST", "/white_label/delete", json!({"ids": [1]})),
        ("GET", "/auth/v1/access_token", json!(null)),
        ("POST", "/auth/v1/access_token", json!({})),
    ];
    for (method, path, body) in attempts {
        let path = path.replace("{hook}", &hook.to_string());
        let (status, answer) = match method {
            "GET" => browser.get(&path).await,
            "DELETE" => browser.delete(&path).await,
            _ => browser.post(&path, body).await,
        };
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "customer_token_forbidden", "{path}");
    }
    // Nothing changed: bob and the webhook are still there, no white label.
    assert_eq!(bob.ok("/user_data_sources", json!({})).await["count"], 1);
    assert_eq!(org.ok("/webhooks", json!({})).await["count"], 1);
    assert_eq!(org.ok("/white_label/list", json!({})).await["count"], 0);
    // An API key without customer-id cannot use customer operations either.
    let (status, answer) = org.post("/user_data_sources", json!({})).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("customer_id_required"))
    );
    running.stop().await;
}

/// Finding 3: an empty list in a delete's filters names no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_filter_list_deletes_nothing() {
    let sim = simulator(1, 6).await;
    let dir = TempDir::new("sec-delete");
    let running = start(config(&sim, &dir)).await;
    let api = Api::new(&running, "org").await.customer("c");
    let source = api.connect(&sim, true).await;
    let before = api.wait_ready(source).await.len();
    assert!(before > 0);
    for filters in [
        json!({"ids": []}),
        json!({"external_file_ids": []}),
        json!({"parent_file_ids": []}),
        json!({"organization_user_data_source_id": []}),
        json!({"sync_statuses": []}),
    ] {
        api.ok("/delete_files_v2", json!({"filters": filters}))
            .await;
        assert_eq!(api.all_files(json!({})).await.len(), before, "{filters}");
    }
    // Filters that narrow nothing are no filter, and refused as such.
    for filters in [
        json!({}),
        json!({"name": ""}),
        json!({"tags": {}}),
        json!({"source": "CONFLUENCE"}),
    ] {
        let (status, _) = api
            .post("/delete_files_v2", json!({"filters": filters}))
            .await;
        assert_eq!(status, 422, "{filters}");
    }
    assert_eq!(api.all_files(json!({})).await.len(), before);
    // Listing with an empty list lists nothing, consistently.
    assert_eq!(api.all_files(json!({"ids": []})).await.len(), 0);
    running.stop().await;
}

/// Finding 10: a delete answered is a delete done, in search too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_file_is_gone_from_search_when_delete_answers() {
    let sim = simulator(1, 40).await;
    let dir = TempDir::new("sec-delete-search");
    let running = start(config(&sim, &dir)).await;
    let api = Api::new(&running, "org").await.customer("c");
    let source = api.connect(&sim, true).await;
    let files = api.wait_ready(source).await;
    let pages: Vec<&Value> = files
        .iter()
        .filter(|f| f["file_metadata"]["kind"] == "page")
        .take(30)
        .collect();
    assert!(pages.len() >= 20);
    let find = |file: &Value| {
        let api = api.clone();
        let id = file["id"].as_i64().unwrap();
        let title = file["name"].as_str().unwrap().to_string();
        async move {
            api.ok(
                "/embeddings",
                json!({"query": title, "k": 5, "file_ids": [id]}),
            )
            .await["documents"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    for file in &pages {
        assert!(find(file).await > 0, "found before: {}", file["name"]);
    }
    for file in &pages {
        api.ok(
            "/delete_files_v2",
            json!({"filters": {"ids": [file["id"]]}}),
        )
        .await;
        assert_eq!(find(file).await, 0, "found after delete: {}", file["name"]);
    }
    running.stop().await;
}

/// Finding 6: Carbon's integer ids are never handed out twice, even across
/// organisations after a delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ids_are_never_reused() {
    let sim = simulator(1, 3).await;
    let dir = TempDir::new("sec-ids");
    let running = start(config(&sim, &dir)).await;
    let one = Api::new(&running, "one").await;
    let two = Api::new(&running, "two").await;
    let first = one.customer("a").connect(&sim, false).await;
    let hook = one
        .ok("/add_webhook", json!({"url": "http://127.0.0.1:9/a"}))
        .await["id"]
        .as_i64()
        .unwrap();
    one.ok("/delete_users", json!({"customer_ids": ["a"]}))
        .await;
    one.delete(&format!("/delete_webhook/{hook}")).await;
    let second = two.customer("b").connect(&sim, false).await;
    assert_ne!(
        first, second,
        "a deleted data source's id went to another organisation"
    );
    let hook_two = two
        .ok("/add_webhook", json!({"url": "http://127.0.0.1:9/b"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_ne!(
        hook, hook_two,
        "a deleted webhook's id went to another organisation"
    );
    // The customer number too.
    let users = two.ok("/list_users", json!({})).await;
    let number = users["users"][0]["id"].as_i64().unwrap();
    let again = one.customer("a").connect(&sim, false).await;
    assert!(again > second);
    let users = one.ok("/list_users", json!({})).await;
    assert!(users["users"][0]["id"].as_i64().unwrap() > number);
    running.stop().await;
}

/// Finding 7: a customer token searches as the viewer the organisation
/// minted it for, or a narrower one; never as whoever the browser claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_search_cannot_widen_its_viewer() {
    let sim = simulator(2, 30).await;
    let dir = TempDir::new("sec-viewer");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c");
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    let query = json!({"query": "the", "k": 50});
    let as_anonymous = api.ok("/embeddings", query.clone()).await;
    let browser = org.with_token(&token(&api).await);
    assert_eq!(browser.ok("/embeddings", query.clone()).await, as_anonymous);
    for wider in [
        json!({"confluence_account_id": "someone"}),
        json!({"agent": true}),
        json!({"signed_in": true}),
        json!({"group_ids": ["staff"]}),
        json!({"confluence_groups": ["confluence-administrators"]}),
    ] {
        let mut asked = query.clone();
        asked["viewer"] = wider.clone();
        let (status, answer) = browser.post("/embeddings", asked).await;
        assert_eq!(status, 403, "{wider}: {answer}");
        assert_eq!(answer["code"], "viewer_not_allowed");
    }
    // A token minted for a viewer searches as it, and may narrow it.
    let viewer = json!({"signed_in": true, "tags": ["a", "b"], "group_ids": ["g"]});
    let minted = org
        .customer("c")
        .ok("/auth/v1/access_token", json!({"viewer": viewer}))
        .await;
    let browser = org.with_token(minted["access_token"].as_str().unwrap());
    let mut asked = query.clone();
    asked["viewer"] = viewer.clone();
    assert_eq!(
        browser.ok("/embeddings", query.clone()).await,
        api.ok("/embeddings", asked.clone()).await
    );
    asked["viewer"] = json!({"tags": ["a"]});
    browser.ok("/embeddings", asked.clone()).await;
    asked["viewer"] = json!({"signed_in": true, "tags": ["a", "c"]});
    assert_eq!(browser.post("/embeddings", asked).await.0, 403);
    // A viewer that is not one is refused when minting.
    let (status, _) = org
        .customer("c")
        .post("/auth/v1/access_token", json!({"viewer": {"admin": true}}))
        .await;
    assert_eq!(status, 422);
    running.stop().await;
}

/// Finding 8: switching Confluence's permissions on hides what they
/// restrict from that moment, not once the resync has finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switching_on_permissions_hides_restricted_content_at_once() {
    let sim = simulator(3, 80).await;
    let dir = TempDir::new("sec-enforce");
    let running = start(config(&sim, &dir)).await;
    let api = Api::new(&running, "org").await.customer("c");
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    // What an anonymous reader may read in Confluence.
    let readable: BTreeSet<String> = sim.truth_for(None, &[]).into_iter().map(|t| t.id).collect();
    let search = |query: &'static str| {
        let api = api.clone();
        async move {
            api.ok("/embeddings", json!({"query": query, "k": 100}))
                .await["documents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["content_metadata"]["kind"] != "attachment")
                .filter_map(|d| {
                    d["content_metadata"]["external_id"]
                        .as_str()
                        .map(String::from)
                })
                .collect::<Vec<String>>()
        }
    };
    let leaks = |found: &[String]| found.iter().filter(|id| !readable.contains(*id)).count();
    // Without enforcement, restricted pages are found (the test can fail).
    assert!(leaks(&search("the").await) > 0);
    let creds = sim.credentials();
    api.ok(
        "/integrations/connect",
        json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
            "username": creds.email, "access_token": creds.api_token},
            "sync_options": {"enforce_permissions": true}}),
    )
    .await;
    // From the answer on, until the resync is done and after it.
    let started = Instant::now();
    loop {
        for query in ["the", "and", "of"] {
            let found = search(query).await;
            assert_eq!(leaks(&found), 0, "restricted content shown: {found:?}");
        }
        let sources = api.ok("/user_data_sources", json!({})).await;
        if sources["results"][0]["sync_status"] == "READY"
            && started.elapsed() > Duration::from_secs(1)
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    // A reconnect that does not mention permissions leaves them on.
    api.ok(
        "/integrations/connect",
        json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
            "username": creds.email, "access_token": creds.api_token}}),
    )
    .await;
    let sources = api.ok("/user_data_sources", json!({})).await;
    assert_eq!(
        sources["results"][0]["data_source_metadata"]["enforce_permissions"],
        true
    );
    assert_eq!(leaks(&search("the").await), 0);
    running.stop().await;
}

/// Finding 12: a stored scope that does not read is an error, never "the
/// whole site".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_scope_syncs_nothing() {
    let sim = simulator(1, 6).await;
    let dir = TempDir::new("sec-scope");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c");
    let source = api.connect(&sim, false).await;
    let store = &running.app.store;
    let connection = api.connection(&running, source).await;
    for garbage in [
        json!("everything"),
        json!(null),
        json!({"al": true}),
        json!({"all": "yes"}),
    ] {
        store.set_scope(&connection.id, &garbage).await.unwrap();
        store.enqueue_sync(&connection.id, "test").await.unwrap();
        running.app.jobs_ready.notify_one();
        let started = Instant::now();
        loop {
            let sources = api.ok("/user_data_sources", json!({})).await;
            let source = &sources["results"][0];
            if source["sync_status"] == "SYNC_ERROR" {
                assert!(source["data_source_metadata"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("scope"));
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{sources}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(api.all_files(json!({})).await.len(), 0, "{garbage}");
        // files/sync says why rather than adding to a scope it cannot read.
        let (status, answer) = api
            .post(
                "/integrations/files/sync",
                json!({"data_source_id": source, "ids": ["S0"]}),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (409, Some("scope_unreadable"))
        );
    }
    running.stop().await;
}

/// Finding 11: one organisation's burst is refused (429, Retry-After)
/// while another's requests go on; work per request is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_organisation_is_rate_limited_alone() {
    let sim = simulator(1, 3).await;
    let dir = TempDir::new("sec-rate");
    let mut config = config(&sim, &dir);
    config.limits.organisation_requests_per_second = 2;
    config.limits.organisation_burst = 10;
    let running = start(config).await;
    let noisy = Api::new(&running, "noisy").await.customer("c");
    let quiet = Api::new(&running, "quiet").await.customer("c");
    let mut limited = 0;
    for _ in 0..40 {
        let response = noisy
            .http
            .post(format!("{}/user_data_sources", noisy.base))
            .bearer_auth(&noisy.key)
            .header("customer-id", "c")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited += 1;
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait));
            let (_, answer) = super::answer(response).await;
            assert_eq!(answer["code"], "rate_limited");
        }
    }
    assert!(limited >= 25, "only {limited} of 40 refused");
    assert_eq!(quiet.post("/user_data_sources", json!({})).await.0, 200);
    // Bounded work: k and page sizes have maximums.
    let quiet_too = Api::new(&running, "bounded").await.customer("c");
    let (status, _) = quiet_too
        .post("/embeddings", json!({"query": "x", "k": 101}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = quiet_too
        .post("/user_files_v2", json!({"pagination": {"limit": 251}}))
        .await;
    assert_eq!(status, 422);
    running.stop().await;
}

/// Finding 4: slow clients are cut off, and a flood of them neither holds
/// the server's connections nor stops others from being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_timed_out() {
    let sim = simulator(1, 3).await;
    let dir = TempDir::new("sec-slow");
    let mut config = config(&sim, &dir);
    config.limits.header_read_timeout_secs = 1;
    config.limits.body_read_timeout_secs = 1;
    config.limits.max_connections = 16;
    let running = start(config).await;
    let api = Api::new(&running, "org").await.customer("c");
    // Slow headers: 40 connections that never finish theirs.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
        stream
            .write_all(b"POST /user_data_sources HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Slow body: headers promise 100 bytes, 10 arrive.
    let mut trickle = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = format!(
        "POST /user_data_sources HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\ncustomer-id: c\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"filters\"",
        api.key
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    // Everyone else is still served meanwhile (within a few timeouts).
    let started = Instant::now();
    assert_eq!(api.post("/user_data_sources", json!({})).await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(8));
    // Every slow connection is closed by the server.
    for mut stream in slow {
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("a slow-header connection was never closed");
        assert!(matches!(read, Ok(0) | Err(_)) || buffer.starts_with(b"HTTP/1.1 408"));
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), trickle.read_to_end(&mut answer))
        .await
        .expect("a slow body was never cut off")
        .ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    running.stop().await;
}

/// Finding 5: a connection keeps refreshing its tokens with the app that
/// issued them, whatever app the organisation creates later; a consent
/// begun with one app is not finished with another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn white_label_does_not_break_existing_oauth_connections() {
    let sim = simulator(1, 5).await;
    // Tokens that need a refresh at every sync.
    sim.set_access_token_ttl(Duration::from_secs(2));
    let dir = TempDir::new("sec-app");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c");
    let request = json!({"service": "CONFLUENCE", "confluence_subdomain": "acme"});
    let (_, callback) = authorize(&api, &sim, request.clone(), "accept").await;
    assert_eq!(api.http.get(&callback).send().await.unwrap().status(), 200);
    let source = api.ok("/user_data_sources", json!({})).await["results"][0]["id"]
        .as_i64()
        .unwrap();
    let files = api.wait_ready(source).await;
    // A consent that starts now, with the server's app...
    let (_, pending) = authorize(&api, &sim, request, "accept").await;
    // ...then the organisation brings its own app: the consent still
    // finishes with the app it was given for.
    org.ok(
        "/white_label/create",
        json!([{"data_source_type": "CONFLUENCE", "credentials": {"client_id": "their-own-app", "redirect_uri": "https://app.example.com/cb", "client_secret": "s"}}]),
    )
    .await;
    let (status, answer) = super::answer(api.http.get(&pending).send().await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    // The existing connection syncs on, refreshing with the server's app.
    tokio::time::sleep(Duration::from_secs(2)).await;
    api.ok("/resync_file", json!({"file_id": files[0]["id"]}))
        .await;
    let started = Instant::now();
    loop {
        let sources = api.ok("/user_data_sources", json!({})).await;
        let status = sources["results"][0]["sync_status"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(status, "SYNC_ERROR", "{sources}");
        let file = api.all_files(json!({"ids": [files[0]["id"]]})).await;
        if status == "READY" && file[0]["sync_status"] == "READY" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{sources}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
}

/// A deleted file stays deleted: a later sync (or one running when the
/// delete was answered) does not bring it back under a new id; choosing
/// it again with files/sync does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_files_stay_deleted_until_chosen_again() {
    let sim = simulator(1, 12).await;
    let dir = TempDir::new("sec-stay-deleted");
    let running = start(config(&sim, &dir)).await;
    let api = Api::new(&running, "org").await.customer("c");
    let source = api.connect(&sim, true).await;
    let files = api.wait_ready(source).await;
    let page = files
        .iter()
        .find(|f| f["file_metadata"]["kind"] == "page")
        .unwrap()
        .clone();
    let other = files
        .iter()
        .find(|f| f["file_metadata"]["kind"] == "page" && f["id"] != page["id"])
        .unwrap()
        .clone();
    let external = page["external_file_id"].as_str().unwrap().to_string();
    api.ok(
        "/delete_files_v2",
        json!({"filters": {"ids": [page["id"]]}}),
    )
    .await;
    // A full sync runs again (a resync of another file runs one).
    api.ok("/resync_file", json!({"file_id": other["id"]}))
        .await;
    let after = api.wait_ready(source).await;
    assert!(
        after
            .iter()
            .all(|f| f["external_file_id"] != external.as_str()),
        "the deleted page came back"
    );
    assert_eq!(after.len(), files.len() - 1);
    // A resync moves no file's created_at (attachments and comments, whose
    // creation Confluence does not say, keep when they were first stored).
    for file in &after {
        let before = files.iter().find(|f| f["id"] == file["id"]).unwrap();
        assert_eq!(file["created_at"], before["created_at"], "{}", file["name"]);
    }
    // Chosen again: back (under a new id).
    api.ok(
        "/integrations/files/sync",
        json!({"data_source_id": source, "ids": [external]}),
    )
    .await;
    let started = Instant::now();
    loop {
        let now = api.wait_ready(source).await;
        if now
            .iter()
            .any(|f| f["external_file_id"] == external.as_str())
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
}
