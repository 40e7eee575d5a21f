//! Simulator benchmarks, printed as figures (not a timed test):
//! generation speed (pages/s) for site metadata and for bodies, peak RSS,
//! and serving throughput (requests/s) for the operations a sync makes.
//!
//! `cargo bench -p confluence-sim --bench sim` (add `-- --quick` for a
//! shorter run). The load generator shares the machine's cores with the
//! server, so serving figures are a lower bound.

use confluence_sim::{SimConfig, Simulator, SiteConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn generation(pages: u32) {
    let started = Instant::now();
    let sim = Simulator::new(SimConfig {
        site: SiteConfig {
            seed: 1,
            spaces: 20,
            pages,
        },
        ..Default::default()
    });
    let generate = started.elapsed();
    let started = Instant::now();
    let (n_content, bytes) = sim.with_site(|site| {
        let mut bytes = 0usize;
        for content in site.content.values() {
            bytes += site.storage_of(content).len();
        }
        (site.content.len(), bytes)
    });
    let render = started.elapsed();
    println!(
        "generate {pages:>7} pages: site {:>7.0} pages/s ({:.2} s); bodies {:>7.0} pages/s, {:.1} MB/s ({:.1} MB); peak RSS {:.0} MB",
        pages as f64 / generate.as_secs_f64(),
        generate.as_secs_f64(),
        n_content as f64 / render.as_secs_f64(),
        bytes as f64 / 1e6 / render.as_secs_f64(),
        bytes as f64 / 1e6,
        peak_rss_mb()
    );
}

async fn serve(
    name: &str,
    base: &str,
    auth: &str,
    paths: Arc<Vec<String>>,
    concurrency: usize,
    duration: Duration,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (client, done, errors, bytes, paths) = (
                client.clone(),
                done.clone(),
                errors.clone(),
                bytes.clone(),
                paths.clone(),
            );
            let (base, auth) = (base.to_string(), auth.to_string());
            tokio::spawn(async move {
                let mut i = worker;
                while Instant::now() < deadline {
                    let path = &paths[i % paths.len()];
                    i += concurrency;
                    match client
                        .get(format!("{base}{path}"))
                        .header("authorization", &auth)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            bytes.fetch_add(
                                r.bytes().await.map(|b| b.len() as u64).unwrap_or(0),
                                Ordering::Relaxed,
                            );
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "serve {name:<44} {:>8.0} req/s  {:>7.1} MB/s  ({n} requests, {} errors, {concurrency} clients)",
        n as f64 / elapsed,
        bytes.load(Ordering::Relaxed) as f64 / 1e6 / elapsed,
        errors.load(Ordering::Relaxed)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    for pages in if quick {
        vec![10_000]
    } else {
        vec![10_000, 100_000]
    } {
        generation(pages);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let running = Simulator::spawn(
            SimConfig { site: SiteConfig { seed: 1, spaces: 10, pages: 10_000 }, ..Default::default() },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let creds = running.credentials();
        use base64::Engine;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.email, creds.api_token))
        );
        let (page_ids, space_ids): (Vec<u64>, Vec<u64>) = running.with_site(|site| {
            let pages = site
                .content
                .values()
                .filter(|c| c.kind == confluence_sim::model::ContentKind::Page)
                .map(|c| c.id)
                .collect();
            (pages, site.spaces.keys().copied().collect())
        });
        let duration = Duration::from_secs(if quick { 2 } else { 5 });
        let single: Vec<String> = page_ids
            .iter()
            .step_by(7)
            .map(|id| format!("/wiki/api/v2/pages/{id}?body-format=storage"))
            .collect();
        serve("GET /pages/{id}?body-format=storage", &creds.base_url, &auth, Arc::new(single), 16, duration).await;
        let lists: Vec<String> = space_ids
            .iter()
            .map(|id| format!("/wiki/api/v2/spaces/{id}/pages?limit=250"))
            .collect();
        serve("GET /spaces/{id}/pages?limit=250 (metadata)", &creds.base_url, &auth, Arc::new(lists), 16, duration).await;
        let bodies: Vec<String> = space_ids
            .iter()
            .map(|id| format!("/wiki/api/v2/spaces/{id}/pages?limit=250&body-format=storage"))
            .collect();
        serve("GET /spaces/{id}/pages?limit=250&body-format=storage", &creds.base_url, &auth, Arc::new(bodies), 16, duration).await;
        let search = vec!["/wiki/rest/api/search?cql=type%3Dpage%20AND%20lastmodified%20%3E%20%222023-06-01%22&limit=100".to_string()];
        serve("GET /rest/api/search (CQL over 10,500 items)", &creds.base_url, &auth, Arc::new(search), 4, duration).await;
    });
    println!("peak RSS of the whole run: {:.0} MB", peak_rss_mb());
}
