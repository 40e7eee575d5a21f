//! The scheduler: every connection resynced on its interval, with jitter;
//! durable across restarts (a run missed while down runs once at start; a
//! sync interrupted by a stop runs again); customers' settings obeyed.

use super::*;
use confluence_sim::Change;
use store::SyncState;

/// The id of a current page of the simulated site.
fn current_page(sim: &RunningSimulator) -> String {
    use confluence_sim::model::{ContentKind, Status};
    sim.with_site(|s| {
        s.content
            .values()
            .find(|c| c.kind == ContentKind::Page && c.status == Status::Current)
            .unwrap()
            .id
            .to_string()
    })
}

fn hours_until(at: &str) -> f64 {
    let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds() as f64 / 3600.0
}

fn past() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_syncs_survive_restarts() {
    let sim = simulator(1, 10).await;
    let dir = TempDir::new("schedule");
    let running = start(config(&sim, &dir)).await;
    let mut org = Api::new(&running, "org").await;
    let mut api = org.customer("c1");
    let source = api.connect(&sim, true).await;
    let files = api.wait_ready(source).await;
    let store = running.app.store.clone();
    let (organisation, _) = store
        .caller_by_key(&server::hash_secret(&org.key), None)
        .await
        .unwrap()
        .unwrap();
    let user = store
        .end_user(&organisation.id, "c1")
        .await
        .unwrap()
        .unwrap();
    let connection = store
        .data_source(&organisation.id, &user.id, source)
        .await
        .unwrap()
        .unwrap();
    // The next run: a day ahead, less up to a tenth (jitter).
    let hours = hours_until(connection.next_sync_at.as_deref().unwrap());
    assert!((21.5..=24.0).contains(&hours), "{hours}");
    // A customer's interval moves it: from the last sync.
    org.ok(
        "/update_users",
        json!({"customer_ids": ["c1"], "auto_sync_interval": 3}),
    )
    .await;
    let connection = store.connection(&connection.id).await.unwrap();
    let hours = hours_until(connection.next_sync_at.as_deref().unwrap());
    assert!((2.9..=3.0).contains(&hours), "{hours}");
    let users = org
        .ok("/list_users", json!({"filters": {"customer_ids": ["c1"]}}))
        .await;
    assert_eq!(users["users"][0]["auto_sync_interval"], 3);
    let (status, _) = org
        .post(
            "/update_users",
            json!({"customer_ids": ["c1"], "auto_sync_interval": 5}),
        )
        .await;
    assert_eq!(status, 422);
    let too_many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let (status, _) = org
        .post("/update_users", json!({"customer_ids": too_many}))
        .await;
    assert_eq!(status, 422);
    running.stop().await;

    // Down while the run fell due, and the site changed meanwhile.
    store
        .set_next_sync(&connection.id, Some(&past()))
        .await
        .unwrap();
    let target = files
        .iter()
        .find(|f| f["file_metadata"]["kind"] == "page")
        .unwrap();
    sim.apply(Change::Edit {
        id: target["external_file_id"].as_str().unwrap().into(),
        body: Some("<p>Wombat ledger reconciliation.</p>".into()),
    })
    .unwrap();
    let jobs_before = store.sync_jobs(&connection.id, 100).await.unwrap().len();
    let running = start(config(&sim, &dir)).await;
    org.base = running.url();
    api.base = running.url();
    let started = Instant::now();
    while api.search("wombat ledger", 3).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the missed run did not run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.wait_ready(source).await;
    // Once: then the next run is hours away again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let jobs = store.sync_jobs(&connection.id, 100).await.unwrap();
    let scheduled: Vec<_> = jobs[..jobs.len() - jobs_before].iter().collect();
    assert_eq!(scheduled.len(), 1, "{jobs:?}");
    assert_eq!(scheduled[0], &("scheduled".to_string(), "DONE".to_string()));
    let hours = hours_until(
        store
            .connection(&connection.id)
            .await
            .unwrap()
            .next_sync_at
            .as_deref()
            .unwrap(),
    );
    assert!((2.6..=3.0).contains(&hours), "{hours}");

    // A customer with auto-sync off for Confluence is not synced on schedule.
    org.ok(
        "/update_users",
        json!({"customer_ids": ["c1"], "auto_sync_enabled_sources": []}),
    )
    .await;
    store
        .set_next_sync(&connection.id, Some(&past()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        store.sync_jobs(&connection.id, 100).await.unwrap().len(),
        jobs.len()
    );
    org.ok(
        "/update_users",
        json!({"customer_ids": ["c1"], "auto_sync_enabled_sources": "ALL"}),
    )
    .await;
    running.stop().await;

    // A sync interrupted by a stop (its job left RUNNING) runs again at start.
    store.enqueue_sync(&connection.id, "manual").await.unwrap();
    // Claimed as the server's own node (its index replica's name): the
    // server gives back, at start, what it held when it stopped.
    let node = std::fs::read_to_string(dir.0.join("index/node-id")).unwrap();
    let claimed = store
        .claim_sync_job(&node, Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.reason, "manual");
    let running = start(config(&sim, &dir)).await;
    let started = Instant::now();
    loop {
        let latest = store.sync_jobs(&connection.id, 1).await.unwrap();
        if latest[0] == ("manual".to_string(), "DONE".to_string()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{latest:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_wait_out_a_stopped_server_and_a_refusing_receiver() {
    let sim = simulator(1, 5).await;
    let dir = TempDir::new("outbox");
    let mut settings = config(&sim, &dir);
    settings.webhooks.retry_base_ms = 1500;
    let running = start(settings.clone()).await;
    let mut org = Api::new(&running, "org").await;
    let (receiver, hook_url) = Receiver::start(usize::MAX).await;
    let key = org.ok("/add_webhook", json!({"url": hook_url})).await["signing_key"]
        .as_str()
        .unwrap()
        .to_string();
    let api = org.customer("c1");
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    // Refused at least once, then the server stops with events owed.
    let started = Instant::now();
    while receiver.received.lock().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
    assert!(receiver.events(&key).is_empty(), "nothing accepted yet");
    receiver.fail_first.store(0, Ordering::SeqCst);
    let running = start(settings).await;
    org.base = running.url();
    // Delivered after the restart, from the outbox.
    let events = receiver
        .wait_for(&key, |events| {
            ["ADD", "FILES_CREATED", "DATA_SOURCE_READY"]
                .iter()
                .all(|w| events.iter().any(|(t, _)| t == w))
        })
        .await;
    let add = events.iter().find(|(t, _)| t == "ADD").unwrap();
    assert_eq!(add.1["object"]["object_id"], source);
    running.stop().await;
}

/// Issue 17: between full syncs each connection is polled for recent
/// changes: an edit becomes searchable within a poll interval and the time
/// to sync it, and a poll that finds nothing costs one CQL request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polls_make_an_edit_searchable_within_the_interval() {
    let sim = simulator(2, 40).await;
    let dir = TempDir::new("poll");
    let mut config = config(&sim, &dir);
    config.poll_interval_secs = Some(1);
    let running = start(config).await;
    let api = Api::new(&running, "org").await.customer("c1");
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    assert_eq!(api.search("quokkaquartz", 5).await.len(), 0);

    // Nothing changes: the polls cost one CQL request each, nothing else.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    sim.reset_stats();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let stats = sim.stats();
    let polls = stats
        .operations
        .get("GET /wiki/rest/api/content/search")
        .copied()
        .unwrap_or(0);
    assert!(polls >= 2, "{:?}", stats.operations);
    assert_eq!(
        stats.total, polls,
        "a poll that found nothing made other requests: {:?}",
        stats.operations
    );

    // An edit: searchable within the interval and a sync of one page.
    let page = current_page(&sim);
    sim.apply(Change::Edit {
        id: page,
        body: Some("<p>The quokkaquartz calibration moved to Tuesday.</p>".into()),
    })
    .unwrap();
    sim.reset_stats();
    let edited = std::time::Instant::now();
    while api.search("quokkaquartz", 5).await.is_empty() {
        assert!(
            edited.elapsed() < Duration::from_secs(30),
            "the edit never became searchable"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = sim.stats();
    assert!(
        !stats
            .operations
            .keys()
            .any(|op| op.starts_with("GET /wiki/api/v2/spaces") || op.ends_with("/footer-comments")),
        "a poll listed spaces or their content: {:?}",
        stats.operations
    );
    running.stop().await;
}

/// Issue 17: a Data Center site pushes its changes. The simulator sends
/// signed webhooks, as Confluence does once an administrator registers one;
/// an edit becomes searchable without waiting for a poll. A forged event
/// (a wrong signature) and a replayed one (a stale timestamp, or a repeat)
/// queue nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushed_events_sync_at_once_and_forged_or_replayed_ones_do_nothing() {
    let sim = simulator(2, 30).await;
    let dir = TempDir::new("push");
    let mut config = config(&sim, &dir);
    config.poll_interval_minutes = 0;
    let running = start(config).await;
    let api = Api::new(&running, "org").await.customer("c1");
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    let connection = api.connection(&running, source).await;
    let secret = server::pushes::secret_for(&running.app.store, &connection.id);
    let url = format!("{}/webhooks/confluence/{}", api.base, connection.id);
    // Registered as an administrator does, through Data Center's API.
    let creds = sim.credentials();
    let http = reqwest::Client::new();
    let registered = http
        .post(format!("{}/wiki/rest/api/webhooks", creds.base_url))
        .basic_auth(&creds.email, Some(&creds.api_token))
        .json(
            &json!({"name": "confsync", "url": url, "events": ["page_updated", "page_created"],
            "configuration": {"secret": secret}, "active": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    let page = current_page(&sim);
    sim.apply(Change::Edit {
        id: page.clone(),
        body: Some("<p>The wombatwhistle rota changed.</p>".into()),
    })
    .unwrap();
    let edited = std::time::Instant::now();
    while api.search("wombatwhistle", 5).await.is_empty() {
        assert!(
            edited.elapsed() < Duration::from_secs(30),
            "the pushed edit never became searchable"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Forged: signed with another secret, or not at all.
    let now = chrono::Utc::now().timestamp_millis();
    let body = json!({"timestamp": now, "event": "page_removed", "page": {"id": page}}).to_string();
    let jobs_before = running.app.store.sync_job_counts().await.unwrap();
    for signature in [
        Some(confluence_sim::webhooks::signature(
            "guessed",
            body.as_bytes(),
        )),
        None,
    ] {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature", signature);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 401);
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["code"], "invalid_signature");
    }
    // An unknown connection answers the same.
    let answer = http
        .post(format!("{}/webhooks/confluence/conn_nope", api.base))
        .header(
            "x-hub-signature",
            confluence_sim::webhooks::signature(&secret, body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    // Replayed: an old event, validly signed, is refused; a repeat of a
    // fresh one is done once.
    let stale =
        json!({"timestamp": now - 3_600_000, "event": "page_removed", "page": {"id": page}})
            .to_string();
    let answer = http
        .post(&url)
        .header(
            "x-hub-signature",
            confluence_sim::webhooks::signature(&secret, stale.as_bytes()),
        )
        .body(stale)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(
        running.app.store.sync_job_counts().await.unwrap(),
        jobs_before,
        "a refused event queued work"
    );
    let fresh =
        json!({"timestamp": now, "event": "page_updated", "page": {"id": page}}).to_string();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = http
            .post(&url)
            .header(
                "x-hub-signature",
                confluence_sim::webhooks::signature(&secret, fresh.as_bytes()),
            )
            .body(fresh.clone())
            .send()
            .await
            .unwrap();
        answers.push((
            answer.status().as_u16(),
            answer.json::<Value>().await.unwrap(),
        ));
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");
    assert_eq!(answers[1], (200, json!({"duplicate": true})));
    // The store still says what Confluence says: the page is there.
    assert!(!api.search("wombatwhistle", 5).await.is_empty());
    running.stop().await;
}
