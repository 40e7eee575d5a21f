//! How fresh the store stays: the time from an edit on the simulator to
//! the edit being searchable through /embeddings, over EDITS edits made at
//! random moments, with polling every POLL seconds and with Data Center
//! pushes (webhooks); and the requests polls cost when nothing changes.
//!
//! cargo bench -p server --bench freshness [-- EDITS POLL_SECONDS SPREAD_SECONDS]
//! (defaults: 100 edits, a 60-second poll, edits spread over 300 seconds)
//!
//! Prints p50, p95 and the maximum of each, and the polls' requests per
//! site per day when nothing changes (measured over the idle phase).

use confluence_sim::Change;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn post(http: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .header("customer-id", "bench")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Setup {
    sim: confluence_sim::RunningSimulator,
    running: server::Running,
    key: String,
    base: String,
    connection: String,
}

async fn set_up(poll: Option<Duration>, dir: &std::path::Path) -> Setup {
    let sim = confluence_sim::Simulator::spawn(
        confluence_sim::SimConfig {
            site: confluence_sim::SiteConfig {
                seed: 5,
                spaces: 5,
                pages: 1000,
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let creds = sim.credentials();
    let mut config = server::Config {
        data_dir: dir.to_path_buf(),
        scheduler_tick_secs: 1,
        ..Default::default()
    };
    match poll {
        Some(poll) => config.poll_interval_secs = Some(poll.as_secs().max(1)),
        None => config.poll_interval_minutes = 0,
    }
    config.limits.organisation_requests_per_second = u32::MAX;
    config.limits.organisation_burst = u32::MAX;
    config.sites = vec![server::config::SiteConfig {
        name: "sim".into(),
        base_url: creds.base_url.clone(),
        context_path: "/wiki".into(),
    }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = server::start(config, listener).await.unwrap();
    let base = running.url();
    let (_, key) = server::create_organisation(&running.app.store, "bench")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let auth = json!({"source": "CONFLUENCE", "subdomain": "sim", "username": creds.email, "access_token": creds.api_token});
    let source = post(
        &http,
        &base,
        &key,
        "/integrations/connect",
        json!({"authentication": auth}),
    )
    .await;
    let id = source["data_source"]["id"].as_i64().unwrap();
    loop {
        let sources = post(
            &http,
            &base,
            &key,
            "/user_data_sources",
            json!({"filters": {"ids": [id]}}),
        )
        .await;
        if sources["results"][0]["sync_status"] == "READY" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connection = running
        .app
        .store
        .connections()
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .id;
    Setup {
        sim,
        running,
        key,
        base,
        connection,
    }
}

/// Makes `edits` edits at random moments over `spread`, each with a word
/// of its own, and returns how long each took to be searchable.
async fn latencies(setup: &Setup, edits: usize, spread: Duration) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    let pages: Vec<String> = setup.sim.with_site(|s| {
        s.content
            .values()
            .filter(|c| {
                c.kind == confluence_sim::model::ContentKind::Page
                    && c.status == confluence_sim::model::Status::Current
            })
            .map(|c| c.id.to_string())
            .collect()
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut moments: Vec<Duration> = (0..edits)
        .map(|_| spread.mul_f64(rng.gen_range(0.0..1.0)))
        .collect();
    moments.sort();
    let started = Instant::now();
    let mut waits = Vec::new();
    for (n, moment) in moments.into_iter().enumerate() {
        let page = pages[(n * 7919) % pages.len()].clone();
        let word = format!("freshmark{n}x");
        let sim = setup.sim.clone();
        let (base, key) = (setup.base.clone(), setup.key.clone());
        waits.push(tokio::spawn(async move {
            tokio::time::sleep_until((started + moment).into()).await;
            sim.apply(Change::Edit {
                id: page,
                body: Some(format!("<p>The {word} figure was revised.</p>")),
            })
            .unwrap();
            let edited = Instant::now();
            let http = reqwest::Client::new();
            loop {
                let found = post(
                    &http,
                    &base,
                    &key,
                    "/embeddings",
                    json!({"query": word, "k": 1}),
                )
                .await;
                if !found["documents"].as_array().unwrap().is_empty() {
                    return edited.elapsed().as_secs_f64();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    let mut out = Vec::new();
    for wait in waits {
        out.push(wait.await.unwrap());
    }
    out.sort_by(f64::total_cmp);
    out
}

fn report(name: &str, latencies: &[f64]) {
    println!(
        "{name}: {} edits, searchable after p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        latencies.last().copied().unwrap_or(0.0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let edits: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let poll = Duration::from_secs(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60));
    let spread = Duration::from_secs(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Polling.
        let dir = std::env::temp_dir().join(format!("confsync-fresh-poll-{}", std::process::id()));
        let setup = set_up(Some(poll), &dir).await;
        // Idle: what the polls cost when nothing changes.
        tokio::time::sleep(poll + Duration::from_secs(2)).await;
        setup.sim.reset_stats();
        let idle = poll * 3;
        tokio::time::sleep(idle).await;
        let requests = setup.sim.stats().total;
        println!(
            "polling every {} s, nothing changing: {requests} requests in {} s = {:.0} requests per site per day ({:.0} at the default 5 minutes)",
            poll.as_secs(),
            idle.as_secs(),
            requests as f64 * 86_400.0 / idle.as_secs_f64(),
            requests as f64 * 86_400.0 / idle.as_secs_f64() * poll.as_secs_f64() / 300.0,
        );
        let polled = latencies(&setup, edits, spread).await;
        report(&format!("polling every {} s", poll.as_secs()), &polled);
        setup.running.stop().await;
        let _ = std::fs::remove_dir_all(&dir);

        // Pushes.
        let dir = std::env::temp_dir().join(format!("confsync-fresh-push-{}", std::process::id()));
        let setup = set_up(None, &dir).await;
        let creds = setup.sim.credentials();
        let secret = server::pushes::secret_for(&setup.running.app.store, &setup.connection);
        let registered = reqwest::Client::new()
            .post(format!("{}/wiki/rest/api/webhooks", creds.base_url))
            .basic_auth(&creds.email, Some(&creds.api_token))
            .json(&json!({"name": "confsync", "url": format!("{}/webhooks/confluence/{}", setup.base, setup.connection),
                "events": ["page_updated"], "configuration": {"secret": secret}}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 201);
        let pushed = latencies(&setup, edits, Duration::from_secs(60)).await;
        report("pushes (Data Center webhooks)", &pushed);
        setup.running.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
