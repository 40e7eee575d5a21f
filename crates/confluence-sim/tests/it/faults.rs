//! Fault injection (scripted and random) and the per-credential rate limit.

use crate::common::start;
use confluence_sim::{FaultConfig, FaultKind, RateLimitConfig};

#[tokio::test]
async fn every_scripted_fault_answers_as_described() {
    let t = start(1, 2, 40).await;
    t.sim.set_faults(FaultConfig {
        script: FaultKind::ALL.to_vec(),
        retry_after_secs: 2,
        ..Default::default()
    });
    let path = "/wiki/api/v2/pages?limit=5";
    // 429 with Retry-After in seconds.
    let r = t.get(path).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "2");
    // 429 with an HTTP date.
    let r = t.get(path).await;
    assert_eq!(r.status, 429);
    let date = r.headers["retry-after"].to_str().unwrap();
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    // 429 without Retry-After.
    let r = t.get(path).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_none());
    // 429 with an absurd Retry-After.
    let r = t.get(path).await;
    assert_eq!(r.headers["retry-after"], "9223372036854775807");
    for status in [500, 502, 503, 504] {
        let r = t.get(path).await;
        assert_eq!(r.status.as_u16(), status);
    }
    // Connection closed mid-body: the status arrives, the body does not.
    let response = t
        .client
        .get(format!("{}{path}", t.base()))
        .header("authorization", t.basic_for("admin@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "the body must fail");
    // Truncated JSON: a complete response whose body does not parse.
    let response = t
        .client
        .get(format!("{}{path}", t.base()))
        .header("authorization", t.basic_for("admin@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
    // The script is spent: the next request succeeds.
    assert_eq!(t.get(path).await.status, 200);
    assert_eq!(t.sim.stats().faults_injected, FaultKind::ALL.len() as u64);
}

#[tokio::test]
async fn random_faults_hit_about_the_configured_rate_and_are_reproducible() {
    let t = start(1, 2, 40).await;
    let config = FaultConfig {
        rate: 0.2,
        seed: 99,
        kinds: vec![FaultKind::Internal, FaultKind::Unavailable],
        ..Default::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        t.sim.set_faults(config.clone());
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(t.get("/wiki/api/v2/spaces").await.status.as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1], "the same seed fails the same requests");
    let failed = runs[0].iter().filter(|s| **s != 200).count();
    assert!(
        (15..=70).contains(&failed),
        "{failed} of 200 failed at rate 0.2"
    );
}

#[tokio::test]
async fn latency_is_added_and_faults_change_at_run_time_over_http() {
    let t = start(1, 2, 40).await;
    let reply = t
        .client
        .put(format!("{}/_sim/faults", t.base()))
        .json(&serde_json::json!({"latency_ms": 150}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let started = std::time::Instant::now();
    assert_eq!(t.get("/wiki/api/v2/spaces").await.status, 200);
    // A lower bound only: the machine may be slow, never faster than asked.
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let bad = t
        .client
        .put(format!("{}/_sim/faults", t.base()))
        .json(&serde_json::json!({"rate": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn rate_limit_is_a_token_bucket_per_credential_with_clouds_headers() {
    let t = start(1, 2, 40).await;
    t.sim.set_rate_limit(Some(RateLimitConfig {
        capacity: 5.0,
        refill_per_second: 0.5,
    }));
    let path = "/wiki/api/v2/spaces";
    let mut near_limit_seen = false;
    for i in 0..5 {
        let r = t.get(path).await;
        assert_eq!(r.status, 200, "request {i} is within the burst");
        assert_eq!(r.headers["x-ratelimit-limit"], "5");
        assert!(chrono::DateTime::parse_from_rfc3339(
            r.headers["x-ratelimit-reset"].to_str().unwrap()
        )
        .is_ok());
        near_limit_seen |= r.headers.get("x-ratelimit-nearlimit").is_some();
    }
    assert!(near_limit_seen, "X-RateLimit-NearLimit below 20% left");
    let r = t.get(path).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=3).contains(&retry),
        "one token comes back in 2 s: {retry}"
    );
    assert!(r.headers.get("ratelimit-reason").is_some());
    // Another credential has its own bucket.
    assert_eq!(t.get_as("ben@example.com", path).await.status, 200);
    assert_eq!(t.sim.stats().rate_limited, 1);
    // Off again.
    t.sim.set_rate_limit(None);
    assert_eq!(t.get(path).await.status, 200);
}

#[tokio::test]
async fn requests_are_counted_per_operation() {
    let t = start(1, 2, 40).await;
    t.sim.reset_stats();
    t.get("/wiki/api/v2/pages").await;
    t.get("/wiki/api/v2/pages").await;
    t.get("/wiki/api/v2/pages/1000000").await;
    let stats: serde_json::Value = t
        .client
        .get(format!("{}/_sim/stats", t.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["operations"]["GET /wiki/api/v2/pages"], 2);
    assert_eq!(stats["operations"]["GET /wiki/api/v2/pages/{id}"], 1);
}
