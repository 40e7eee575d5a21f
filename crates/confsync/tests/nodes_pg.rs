//! Three `confsync serve` processes on one PostgreSQL database, behind no
//! balancer but the test's round robin: twenty customers connect a
//! simulated site through any node; one node is killed with SIGKILL while
//! syncs run, and a fourth joins. Every connection ends equal to the
//! simulator's truth, no connection's jobs ever ran at once on two nodes
//! (read from the nodes' logs), and every webhook event reached the
//! receiver, each delivery id once unless a node died while sending it.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use store::testing::TestDatabase;

mod common;
use common::{event_of, free_addr, receiver, serve_logged, wait_up};

const CUSTOMERS: usize = 20;

fn node_config(dir: &Path, n: usize, db: &str, site: &str) -> PathBuf {
    let config = dir.join(format!("node{n}.toml"));
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndatabase_url = {:?}\nscheduler_tick_secs = 1\njob_lease_secs = 3\nworkers = 2\n\
             [[sites]]\nname = \"acme\"\nbase_url = {:?}\n\
             [webhooks]\nallow_private_targets = true\nretry_base_ms = 50\ntimeout_secs = 2\n",
            dir.join(format!("data{n}")).display().to_string(),
            db,
            site
        ),
    )
    .unwrap();
    config
}

/// (node, job, connection, started, ended) from a node's log: a job that
/// started and never ended there ends when the node said it was stopping
/// (it handed the job back), or is open (the node was killed, or runs).
fn job_intervals(log: &Path, node: usize) -> Vec<(usize, i64, String, String, Option<String>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        Some(
            line[at..]
                .split_whitespace()
                .next()?
                .trim_matches('"')
                .to_string(),
        )
    };
    let mut open: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut stopping = None;
    for line in text.lines() {
        let time = line.split_whitespace().next().unwrap_or("").to_string();
        if line.contains("stopping:") {
            stopping = Some(time.clone());
        }
        let Some(job) = field(line, "job").and_then(|j| j.parse::<i64>().ok()) else {
            continue;
        };
        let connection = field(line, "connection").unwrap_or_default();
        if line.contains("sync job started") {
            open.insert(job, (connection, time));
        } else if let Some((connection, started)) = open.remove(&job) {
            out.push((node, job, connection, started, Some(time)));
        }
    }
    for (job, (connection, started)) in open {
        out.push((node, job, connection, started, stopping.clone()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_lose_nothing() {
    let sim = common::simulated_site(15, 2, 30, 5).await;
    let creds = sim.credentials();
    let db = TestDatabase::create().await;
    let store = db.store().await.unwrap();
    let org = store.create_organisation("nodes").await.unwrap();
    let key = server::add_api_key(&store, &org.id).await.unwrap();
    let (hook, received) = receiver().await;
    store.add_webhook(&org.id, &hook, b"k").await.unwrap();

    let dir = std::env::temp_dir().join(format!("confsync-nodes-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let http = reqwest::Client::new();
    let mut nodes = Vec::new();
    for n in 0..3 {
        let addr = free_addr();
        let config = node_config(&dir, n, &db.url, &creds.base_url);
        let log = dir.join(format!("node{n}.log"));
        let child = serve_logged(&config, &addr, &log);
        nodes.push((n, format!("http://{addr}"), child, log));
    }
    for (_, base, _, _) in &nodes {
        wait_up(&http, base).await;
    }

    // Twenty customers connect, each through the next node.
    for c in 0..CUSTOMERS {
        let base = &nodes[c % 3].1;
        let response = http
            .post(format!("{base}/integrations/connect"))
            .bearer_auth(&key)
            .header("customer-id", format!("customer{c}"))
            .json(
                &json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
                "username": creds.email, "access_token": creds.api_token},
                "sync_options": {"sync_files_on_connection": true}}),
            )
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "connect {c}: {}",
            response.status()
        );
    }

    // Node 0 dies mid-sync; node 1 is stopped (SIGTERM) and hands its
    // jobs back; node 3 joins.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let running_before: usize = job_intervals(&nodes[0].3, 0)
        .iter()
        .filter(|j| j.4.is_none())
        .count();
    nodes[0].2.kill().unwrap(); // SIGKILL
    nodes[0].2.wait().unwrap();
    let killed_at = Instant::now();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &nodes[1].2.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopping = Instant::now();
    let status = nodes[1].2.wait().unwrap();
    assert!(status.success(), "node 1 stopped on SIGTERM: {status}");
    let stop_took = stopping.elapsed();
    let stopped_at = Instant::now();
    let handed_back = std::fs::read_to_string(&nodes[1].3)
        .unwrap()
        .contains("running jobs handed back");
    let addr = free_addr();
    let config = node_config(&dir, 3, &db.url, &creds.base_url);
    let log = dir.join("node3.log");
    let child = serve_logged(&config, &addr, &log);
    nodes.push((3, format!("http://{addr}"), child, log));
    wait_up(&http, &nodes[3].1).await;

    // Everything settles: every connection synced, the outbox empty.
    let started = Instant::now();
    loop {
        let connections = store.connections().await.unwrap();
        let mut done = connections.len() == CUSTOMERS;
        let mut unfinished = Vec::new();
        for c in &connections {
            let jobs = store.sync_jobs(&c.id, 100).await.unwrap();
            let (queued, running) = store.sync_state(&c.id).await.unwrap();
            if queued || running || !jobs.iter().any(|(_, s)| s == "DONE") {
                done = false;
                unfinished.push((c.data_source_id, jobs));
            }
        }
        let depth = store.outbox_depth().await.unwrap();
        done &= depth == 0;
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the nodes did not finish the work: {} connections, outbox {depth}, unfinished {unfinished:?}; logs in {}",
            connections.len(),
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled = started.elapsed();
    // Every live node's index replica follows the shared log to its end
    // (other nodes' writes reach it by notification or poll), and says so.
    let mut names = BTreeSet::new();
    for (n, base, _, _) in nodes.iter().skip(2) {
        let started = Instant::now();
        loop {
            let ready: Value = http
                .get(format!("{base}/ready"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ready["index"]["pending_changes"] == 0 {
                names.insert(ready["node"].as_str().unwrap().to_string());
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "node {n}'s index did not catch up: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(names.len(), 2, "each node has a name of its own: {names:?}");
    // What an operator's Prometheus reads from a node: the shared queue
    // and outbox as the store has them, this node's requests and work.
    let metrics = http
        .get(format!("{}/metrics", nodes[2].1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "confsync_sync_jobs{state=\"QUEUED\"} 0",
        "confsync_sync_jobs{state=\"RUNNING\"} 0",
        "confsync_outbox_depth 0",
        "confsync_index_lag_changes 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in /metrics:\n{metrics}"
        );
    }
    // The dashboard in docs/ charts only series a node exports.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/confsync.json"
    ))
    .unwrap();
    for name in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if name.starts_with("confsync_") {
            assert!(
                metrics.lines().any(|l| l.starts_with(name)),
                "the dashboard charts {name}, which /metrics does not have"
            );
        }
    }
    for series in [
        "confsync_http_requests_total{route=\"/integrations/connect\",method=\"POST\",status=\"200\"}",
        "confsync_http_request_duration_seconds_bucket{route=\"/integrations/connect\",method=\"POST\",le=\"0.1\"}",
        "confsync_sync_jobs_finished_total{outcome=\"done\"}",
        "confsync_sync_files_total{kind=\"page\",change=\"added\"}",
        "confsync_confluence_requests_total",
        "confsync_webhook_deliveries_total{outcome=\"delivered\"}",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(series)),
            "no {series} in /metrics:\n{metrics}"
        );
    }
    for (_, _, child, _) in nodes.iter_mut().skip(2) {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // Equal to the truth: each connection holds the account's pages and
    // blog posts, at their versions.
    let truth: BTreeSet<(String, String, i64)> = sim
        .truth(&creds.email)
        .unwrap()
        .into_iter()
        .filter(|t| t.kind == "page" || t.kind == "blogpost")
        .map(|t| (t.kind, t.id, t.version as i64))
        .collect();
    assert!(!truth.is_empty());
    let connections = store.connections().await.unwrap();
    for c in &connections {
        let held: BTreeSet<(String, String, i64)> = store
            .files(&c.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.kind == "page" || f.kind == "blogpost")
            .map(|f| (f.kind, f.external_id, f.version))
            .collect();
        assert_eq!(
            held, truth,
            "data source {} differs from the truth",
            c.data_source_id
        );
    }

    // No connection's jobs overlapped, across the nodes (a killed node's
    // open job ended when it was killed).
    let mut intervals = Vec::new();
    for (n, _, _, log) in &nodes {
        intervals.extend(job_intervals(log, *n));
    }
    let kill_time = chrono::Utc::now() - chrono::Duration::from_std(killed_at.elapsed()).unwrap();
    let kill_stamp = kill_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let end_of = |node: usize, end: &Option<String>| match end {
        Some(end) => end.clone(),
        None if node == 0 => kill_stamp.clone(),
        None => "9999".into(),
    };
    let mut by_connection: BTreeMap<String, Vec<(String, String, usize, i64)>> = BTreeMap::new();
    for (node, job, connection, started, ended) in &intervals {
        by_connection.entry(connection.clone()).or_default().push((
            started.clone(),
            end_of(*node, ended),
            *node,
            *job,
        ));
    }
    // The killed node's open jobs were taken over and finished elsewhere.
    let open_on_killed: Vec<i64> = intervals
        .iter()
        .filter(|j| j.0 == 0 && j.4.is_none())
        .map(|j| j.1)
        .collect();
    for job in &open_on_killed {
        assert!(
            intervals
                .iter()
                .any(|j| j.0 != 0 && j.1 == *job && j.4.is_some()),
            "job {job}, running on the killed node, was never finished by another"
        );
    }
    let mut nodes_that_ran: BTreeSet<usize> = BTreeSet::new();
    for (connection, mut runs) in by_connection {
        runs.sort();
        for pair in runs.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "connection {connection}: job {} on node {} ({}..{}) overlaps job {} on node {} (from {})",
                pair[0].3, pair[0].2, pair[0].0, pair[0].1, pair[1].3, pair[1].2, pair[1].0
            );
        }
        nodes_that_ran.extend(runs.iter().map(|r| r.2));
    }
    assert!(
        nodes_that_ran.len() >= 3,
        "the work was shared: nodes {nodes_that_ran:?}"
    );

    // Every event reached the receiver; each delivery id came once, but
    // for deliveries a node killed or stopping may have sent without
    // recording it (its send cut short: at least once, not exactly).
    let all = received.all();
    let events: BTreeSet<(String, i64)> = all.iter().filter_map(|(_, b, _)| event_of(b)).collect();
    for c in &connections {
        assert!(
            events.contains(&("ADD".into(), c.data_source_id)),
            "data source {}'s ADD event never arrived",
            c.data_source_id
        );
    }
    let mut seen: BTreeMap<i64, Vec<Instant>> = BTreeMap::new();
    for (id, _, at) in &all {
        seen.entry(id.expect("every delivery carries its id"))
            .or_default()
            .push(*at);
    }
    let mut repeated = 0;
    for (id, times) in &seen {
        if times.len() > 1 {
            repeated += 1;
            assert!(
                times[0] <= stopped_at,
                "delivery {id} came {} times, the first after the kill and the stop",
                times.len()
            );
        }
    }
    let delivered: Vec<Value> = all
        .iter()
        .filter_map(|(_, b, _)| serde_json::from_str(b).ok())
        .collect();
    println!(
        "{} connections on 3+1 nodes settled in {:.1} s; node 0 killed with {running_before} jobs running, {} taken over; \
         node 1 stopped in {:.1} s (jobs handed back: {handed_back}); \
         {} deliveries ({} distinct ids, {repeated} repeated after the kill or the stop); jobs ran on nodes {nodes_that_ran:?}",
        connections.len(),
        settled.as_secs_f64(),
        open_on_killed.len(),
        stop_took.as_secs_f64(),
        delivered.len(),
        seen.len(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
