//! `confsync serve` on PostgreSQL, killed with SIGKILL at random points
//! while callers connect, revoke and delete: after a restart every
//! operation is whole (its webhook events delivered, its sync run) or
//! absent. Each operation is one transaction in the store; this holds the
//! server to it where a process dies mid-request.

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use store::testing::TestDatabase;

mod common;
use common::{event_of, receiver, serve, wait_up};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_operation_every_change_is_whole_or_absent() {
    let sim = common::simulated_site(14, 2, 40, 3).await;
    let creds = sim.credentials();
    let db = TestDatabase::create().await;
    let store = db.store().await.unwrap();
    let org = store.create_organisation("crash").await.unwrap();
    let key = server::add_api_key(&store, &org.id).await.unwrap();
    let (hook, received) = receiver().await;
    store.add_webhook(&org.id, &hook, b"k").await.unwrap();

    let dir = std::env::temp_dir().join(format!("confsync-crash-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("confsync.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndatabase_url = {:?}\nscheduler_tick_secs = 1\n\
             [[sites]]\nname = \"acme\"\nbase_url = {:?}\n\
             [webhooks]\nallow_private_targets = true\nretry_base_ms = 50\n",
            dir.join("data").display().to_string(),
            db.url,
            creds.base_url
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let call = |path: &str, customer: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&key)
            .header("customer-id", customer)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut asked_deleted: BTreeSet<i64> = BTreeSet::new();
    let mut killed_with_requests_out = 0;
    let mut answered: Vec<u16> = Vec::new();
    // Twelve rounds, and more (up to 24) until at least two kills have
    // caught requests in flight: how long a request takes depends on the
    // machine and its load, so a fixed set of kill times alone could land
    // every kill after the answers.
    let mut rounds = 0;
    for round in 0..24 {
        if round >= 12 && killed_with_requests_out >= 2 {
            break;
        }
        rounds += 1;
        let mut child = serve(&config, &addr);
        wait_up(&http, &base).await;
        // A few operations at once, then a kill at a random moment.
        let mut requests = Vec::new();
        for _ in 0..4 {
            let connections = store.connections().await.unwrap();
            match rng.gen_range(0..3) {
                // A new customer each time: a reconnect (no event of its
                // own, by Carbon's design) would undo a revoke unseen.
                0 | 1 if connections.len() < 8 => {
                    let customer = format!("c{round}-{}", requests.len());
                    requests.push(call(
                        "/integrations/connect",
                        &customer,
                        json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
                            "username": creds.email, "access_token": creds.api_token},
                            "sync_options": {"sync_files_on_connection": true}}),
                    ));
                }
                choice => {
                    let Some(c) = connections.get(rng.gen_range(0..connections.len().max(1)))
                    else {
                        continue;
                    };
                    let user = store
                        .end_user_by_id(c.end_user_id.as_deref().unwrap())
                        .await
                        .unwrap()
                        .unwrap();
                    if choice == 1 {
                        requests.push(call(
                            "/revoke_access_token",
                            &user.customer_id,
                            json!({"data_source_id": c.data_source_id}),
                        ));
                    } else {
                        let files = store.file_versions(&c.id).await.unwrap();
                        if files.is_empty() {
                            continue;
                        }
                        let id = files[rng.gen_range(0..files.len())].0;
                        asked_deleted.insert(id);
                        requests.push(call(
                            "/delete_files_v2",
                            &user.customer_id,
                            json!({"filters": {"ids": [id]}, "send_webhook": true}),
                        ));
                    }
                }
            }
        }
        let out: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..400))).await;
        if out.iter().any(|r| !r.is_finished()) {
            killed_with_requests_out += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for request in out {
            if let Ok(Ok(response)) = request.await {
                answered.push(response.status().as_u16());
            }
        }
    }
    eprintln!("answers before the kills: {answered:?}");
    assert!(
        killed_with_requests_out >= 2,
        "only {killed_with_requests_out} of {rounds} kills caught requests in flight"
    );

    // Restart and let it finish what was queued and deliver what was written.
    let mut child = serve(&config, &addr);
    wait_up(&http, &base).await;
    let started = Instant::now();
    loop {
        let mut busy = store.outbox_depth().await.unwrap() > 0;
        for c in store.connections().await.unwrap() {
            let (queued, running) = store.sync_state(&c.id).await.unwrap();
            busy |= queued || running;
        }
        if !busy {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the restarted server did not drain its queue and outbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let events: BTreeMap<(String, i64), usize> = received
        .all()
        .iter()
        .filter_map(|(_, b, _)| event_of(b))
        .fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e).or_default() += 1;
            m
        });
    let connections = store.connections().await.unwrap();
    assert!(
        connections.len() >= 2 && answered.len() >= 5,
        "too little happened between the kills to tell anything: {} data sources, answers {answered:?}",
        connections.len()
    );
    for c in &connections {
        let id = c.data_source_id;
        // Connected: its event delivered and its sync run.
        assert!(
            events.contains_key(&("ADD".into(), id)),
            "data source {id} exists without its ADD event"
        );
        // Its sync ran (a revoke drops a queued sync with the revoke).
        let jobs = store.sync_jobs(&c.id, 100).await.unwrap();
        assert!(
            c.revoked || jobs.iter().any(|(_, status)| status == "DONE"),
            "data source {id} exists without its sync run: {jobs:?}"
        );
        // Revoked: its event delivered; not revoked: no such event.
        assert_eq!(
            c.revoked,
            events.contains_key(&("REVOKE".into(), id)),
            "data source {id}: revoked {} but REVOKE event {:?}",
            c.revoked,
            events.get(&("REVOKE".into(), id))
        );
    }
    // No event for a data source that does not exist.
    let ids: BTreeSet<i64> = connections.iter().map(|c| c.data_source_id).collect();
    for (kind, id) in events.keys() {
        if kind == "ADD" || kind == "REVOKE" {
            assert!(
                ids.contains(id),
                "{kind} event for data source {id}, which is absent"
            );
        }
    }
    // Deleted: gone with its event, or there without one.
    let mut present = BTreeSet::new();
    for c in &connections {
        present.extend(
            store
                .file_versions(&c.id)
                .await
                .unwrap()
                .into_iter()
                .map(|f| f.0),
        );
    }
    let mut deleted = 0;
    for id in &asked_deleted {
        let announced = events.contains_key(&("FILE_DELETED".into(), *id));
        assert_eq!(
            !present.contains(id),
            announced,
            "file {id}: present {} but FILE_DELETED event {announced}",
            present.contains(id)
        );
        deleted += usize::from(announced);
    }
    println!(
        "{} data sources, {} revoked, {deleted} of {} files asked deleted, {} events delivered, \
         {killed_with_requests_out} kills with requests in flight",
        connections.len(),
        connections.iter().filter(|c| c.revoked).count(),
        asked_deleted.len(),
        events.values().sum::<usize>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
