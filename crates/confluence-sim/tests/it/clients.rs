//! Third-party clients, unmodified, walk a 10,000-page simulated site and
//! must find exactly the ground truth: atlassian-python-api (PyPI) through
//! its Cloud v2 and v1 clients, and confluence.js (npm) through v2.
//!
//! They need `.venv` and `tests/clients/js/node_modules`, which the README's
//! test command (`scripts/test`) installs.

use crate::common::start;
use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_client(
    program: &str,
    script: &str,
    base: &str,
    email: &str,
    token: &str,
) -> serde_json::Value {
    let output = Command::new(program)
        .arg(script)
        .env("SIM_BASE_URL", base)
        .env("SIM_EMAIL", email)
        .env("SIM_API_TOKEN", token)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (run scripts/test to install the clients): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} as {email} failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} printed no summary ({e}): {stdout}"));
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

fn python() -> String {
    std::env::var("CONFSYNC_PYTHON").unwrap_or_else(|_| {
        repo_root()
            .join(".venv/bin/python")
            .to_string_lossy()
            .into_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_clients_walk_a_10000_page_site_completely() {
    let t = start(42, 6, 10_000).await;
    let base = t.base();
    let accounts = t.sim.accounts();
    let full = accounts
        .iter()
        .find(|a| a.email == "admin@example.com")
        .unwrap();
    let partial = accounts
        .iter()
        .find(|a| a.email == "ben@example.com")
        .unwrap();
    let n_truth = t.sim.truth(&full.email).unwrap().len();
    let n_partial = t.sim.truth(&partial.email).unwrap().len();
    assert!(n_partial < n_truth, "the partial account must see less");

    let root = repo_root();
    let python_script = root.join("tests/clients/python_walk.py");
    let js_script = root.join("tests/clients/js/walk.mjs");
    let (python_script, js_script) = (
        python_script.to_string_lossy().into_owned(),
        js_script.to_string_lossy().into_owned(),
    );
    let python = python();
    let handles: Vec<_> = [
        (python.clone(), python_script.clone(), full.clone()),
        (python, python_script, partial.clone()),
        ("node".to_string(), js_script.clone(), full.clone()),
        ("node".to_string(), js_script, partial.clone()),
    ]
    .into_iter()
    .map(|(program, script, account)| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            run_client(&program, &script, &base, &account.email, &account.api_token)
        })
    })
    .collect();
    let mut summaries = Vec::new();
    for handle in handles {
        summaries.push(handle.await.expect("client task"));
    }
    // Python: v2 and v1 both saw every page the account may read.
    let pages_in = |summary: &serde_json::Value, key: &str| summary[key].as_u64().unwrap() as usize;
    let n_pages_full = t
        .sim
        .truth(&full.email)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "page")
        .count();
    let n_pages_partial = t
        .sim
        .truth(&partial.email)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "page")
        .count();
    assert_eq!(pages_in(&summaries[0], "v2_pages"), n_pages_full);
    assert_eq!(pages_in(&summaries[0], "v1_pages"), n_pages_full);
    assert!(n_pages_full >= 10_000);
    assert_eq!(pages_in(&summaries[1], "v2_pages"), n_pages_partial);
    assert_eq!(pages_in(&summaries[2], "pages"), n_pages_full);
    assert_eq!(pages_in(&summaries[3], "pages"), n_pages_partial);
    assert!(summaries[0]["attachments_downloaded"].as_u64().unwrap() > 0);
}
