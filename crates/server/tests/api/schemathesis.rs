//! schemathesis (PyPI, installed into .venv by scripts/test) fuzzes the
//! running API from its own `/openapi.json`, with every check it has: no
//! server error, statuses and answers as documented, schema-valid requests
//! accepted and schema-invalid ones refused, authentication not ignored.
//! Bounded: a fixed seed and a fixed number of examples per operation.
//!
//! Left out: the OAuth callback (its `state` is signed: a schema cannot
//! describe the one valid value) and `/integrations/connect` (a valid
//! request names a real Atlassian site, unreachable here: 502). Both are
//! covered by the flow and OAuth tests against the simulator.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let schemathesis = root.join(".venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run scripts/test, which installs it",
        schemathesis.display()
    );
    let sim = simulator(1, 6).await;
    let dir = TempDir::new("schemathesis");
    let mut config = config(&sim, &dir);
    config.webhooks.max_per_organisation = 1_000_000;
    let running = start(config).await;
    let org = Api::new(&running, "fuzzed").await;
    // Something to find: a connection with files.
    let api = org.customer("c1");
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    let examples: u32 = std::env::var("CONFSYNC_SCHEMATHESIS_EXAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25);
    let url = format!("{}/openapi.json", running.url());
    let key = org.key.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(schemathesis)
            .args(["run", &url])
            .args(["-H", &format!("Authorization: Bearer {key}")])
            .args(["-H", "customer-id: c1"])
            .args(["--checks", "all"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", &examples.to_string()])
            .args(["--seed", "6", "-w", "1"])
            // Text with U+0000 is refused (422 string_nul, tested in
            // malformed.rs): PostgreSQL's text cannot hold it.
            .args(["--generation-allow-x00", "false"])
            .args(["--exclude-path", "/integrations/confluence/oauth"])
            .args(["--exclude-path", "/integrations/connect"])
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "schemathesis failed:\n{text}");
    running.stop().await;
}
