//! What the process-level tests share: a webhook receiver, a server
//! process on a config, and waiting for it.
#![allow(dead_code)] // each test binary uses its own part

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::testing::TEST_KEY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a receiver got: each POST's delivery id, body and time of arrival.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<Arrival>>>);

/// One POST: its delivery id, its body, when it came.
pub type Arrival = (Option<i64>, String, Instant);

impl Received {
    pub fn all(&self) -> Vec<Arrival> {
        self.0.lock().unwrap().clone()
    }
}

/// A webhook receiver: answers 200 to every POST and keeps what came.
pub async fn receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Received::default();
    let kept = received.0.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + length {
                        let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]);
                        let id = text[..end].lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("confsync-delivery-id")
                                .then(|| v.trim().parse::<i64>().ok())?
                        });
                        kept.lock()
                            .unwrap()
                            .push((id, body.to_string(), Instant::now()));
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

/// (webhook type, object id) of a delivered body.
pub fn event_of(body: &str) -> Option<(String, i64)> {
    let outer: Value = serde_json::from_str(body).ok()?;
    let payload: Value = serde_json::from_str(outer["payload"].as_str()?).ok()?;
    Some((
        payload["webhook_type"].as_str()?.to_string(),
        payload["object"]["object_id"].as_i64()?,
    ))
}

pub fn serve(config: &std::path::Path, addr: &str) -> Child {
    serve_with(config, addr, "error", None)
}

/// `serve`, logging at info level into `log` (the lines the test reads).
pub fn serve_logged(config: &std::path::Path, addr: &str, log: &std::path::Path) -> Child {
    serve_with(config, addr, "warn,server=info,confsync=info", Some(log))
}

fn serve_with(
    config: &std::path::Path,
    addr: &str,
    filter: &str,
    log: Option<&std::path::Path>,
) -> Child {
    let key: String = TEST_KEY.iter().map(|b| format!("{b:02x}")).collect();
    Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--addr", addr])
        .env("CONFSYNC_SECRET_KEY", key)
        .env("RUST_LOG", filter)
        .stdout(Stdio::null())
        .stderr(match log {
            Some(log) => Stdio::from(std::fs::File::create(log).unwrap()),
            None => Stdio::null(),
        })
        .spawn()
        .unwrap()
}

pub async fn wait_up(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free local port's address.
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// A simulated site of `spaces` spaces and `pages` pages, answering each
/// request after `latency_ms`.
pub async fn simulated_site(
    seed: u64,
    spaces: u32,
    pages: u32,
    latency_ms: u64,
) -> confluence_sim::RunningSimulator {
    confluence_sim::Simulator::spawn(
        confluence_sim::SimConfig {
            site: confluence_sim::SiteConfig {
                seed,
                spaces,
                pages,
            },
            faults: confluence_sim::FaultConfig {
                latency_ms,
                ..Default::default()
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// `confsync ARGS --data-dir DIR`, run to its end.
pub fn confsync(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}
