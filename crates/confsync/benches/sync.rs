//! Full-sync benchmark, printed as figures: `confsync sync` (a separate
//! process, so its peak RSS is its own) against `confsync sim` with no
//! added latency and with 100 ms a request. Prints pages/s, requests per
//! 1,000 pages (bodies included, attachment downloads counted apart) and
//! peak RSS.
//!
//! `cargo bench -p confsync --bench sync` (`-- --quick` for 10,000 pages
//! without latency only).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOWNLOAD_OP: &str = "GET /wiki/download/attachments/{container}/{filename}";

fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn run(pages: u32, latency_ms: u64) {
    let exe = env!("CARGO_BIN_EXE_confsync");
    let spaces = (pages / 1000).clamp(10, 40);
    let mut sim = Command::new(exe)
        .args(["sim", "--addr", "127.0.0.1:0", "--seed", "1"])
        .args([
            "--pages",
            &pages.to_string(),
            "--spaces",
            &spaces.to_string(),
        ])
        .args(["--latency-ms", &latency_ms.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("confsync sim starts");
    let mut first = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let creds: serde_json::Value = serde_json::from_str(&first).unwrap();
    let base = creds["base_url"].as_str().unwrap().to_string();
    let data_dir = std::env::temp_dir().join(format!(
        "confsync-bench-{}-{pages}-{latency_ms}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data_dir);

    let started = Instant::now();
    let mut sync = Command::new(exe)
        .args([
            "sync",
            "--site",
            &base,
            "--email",
            creds["email"].as_str().unwrap(),
            "--data-dir",
        ])
        .arg(&data_dir)
        .env("CONFSYNC_API_TOKEN", creds["api_token"].as_str().unwrap())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("confsync sync starts");
    let pid = sync.id();
    let mut peak = 0;
    while sync.try_wait().unwrap().is_none() {
        peak = peak.max(peak_rss_kb(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let output = sync.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a report line");

    let stats: serde_json::Value = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::get(format!("{base}/_sim/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let _ = sim.kill();
    let _ = sim.wait();
    let _ = std::fs::remove_dir_all(&data_dir);

    let synced =
        report["pages"]["added"].as_u64().unwrap() + report["blogposts"]["added"].as_u64().unwrap();
    let n_pages = report["pages"]["added"].as_u64().unwrap();
    let downloads = stats["operations"][DOWNLOAD_OP].as_u64().unwrap_or(0);
    let total = stats["total"].as_u64().unwrap();
    println!(
        "full sync {pages:>6} pages, {latency_ms:>3} ms/request: {:>7.0} pages/s ({:.1} s, {synced} pages and blog posts); \
         {:.1} requests per 1,000 pages without downloads ({} requests, {downloads} downloads, {} attachments); peak RSS {:.0} MB",
        synced as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        (total - downloads) as f64 * 1000.0 / n_pages as f64,
        total,
        report["attachments"]["added"],
        peak as f64 / 1024.0
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    run(10_000, 0);
    if !quick {
        run(100_000, 0);
        run(10_000, 100);
    }
}
