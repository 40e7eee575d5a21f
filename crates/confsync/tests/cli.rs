//! `confsync sync` as a process: killed with SIGKILL at random points and
//! run again each time, it ends equal to the ground truth, with no
//! duplicate rows and a consistent database.

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use store::{IndexSource, SyncState};

mod common;
use common::{confsync, free_addr, wait_up};

fn sync_command(base: &str, email: &str, token: &str, data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confsync"));
    command
        .args(["sync", "--site", base, "--email", email, "--data-dir"])
        .arg(data_dir)
        .env("CONFSYNC_API_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A simulated site synced by `confsync sync` (with `extra` flags) into a
/// fresh data directory of its own.
async fn synced_site(
    seed: u64,
    spaces: u32,
    pages: u32,
    name: &str,
    extra: &[&str],
) -> (confluence_sim::RunningSimulator, std::path::PathBuf) {
    let sim = common::simulated_site(seed, spaces, pages, 0).await;
    let creds = sim.credentials();
    let data_dir = std::env::temp_dir().join(format!("confsync-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let synced = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    (sim, data_dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_20_random_points_ends_equal_to_the_truth() {
    // Slow enough that a run spans many kill points.
    let sim = common::simulated_site(31, 6, 3000, 8).await;
    let creds = sim.credentials();
    let data_dir = std::env::temp_dir().join(format!("confsync-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut interrupted = 0;
    for round in 0..20 {
        let mut child = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.gen_range(30..400));
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if started.elapsed() >= delay {
                child.kill().unwrap(); // SIGKILL
                interrupted += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let status = child.wait().unwrap();
        if round == 10 {
            // Changes halfway through: the resumed runs must catch them too.
            sim.random_changes(3, 13);
        }
        let _ = status;
    }
    assert!(
        interrupted >= 15,
        "only {interrupted} of 20 kills hit a running sync"
    );
    // Run to completion: the first run may finish a resumed one that began
    // before the changes; the second starts fresh and catches them; the
    // third, settled, changes nothing.
    let mut report = serde_json::Value::Null;
    for _ in 0..3 {
        let output = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        report = serde_json::from_slice(&output.stdout).unwrap();
    }
    for file_kind in ["pages", "blogposts", "attachments", "comments"] {
        for count in ["added", "updated", "deleted", "failed"] {
            assert_eq!(report[file_kind][count], 0, "{file_kind}.{count}: {report}");
        }
    }
    let store = store::Store::open(&data_dir).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let connections = store.connections().await.unwrap();
    assert_eq!(connections.len(), 1, "one connection, reused by every run");
    let files = store.files(&connections[0].id).await.unwrap();
    let mut keys: Vec<_> = files.iter().map(|f| (&f.kind, &f.external_id)).collect();
    keys.dedup();
    assert_eq!(keys.len(), files.len(), "no duplicate rows");
    let stored: BTreeMap<String, (i64, String, Option<String>)> = files
        .iter()
        .filter(|f| f.kind == "page" || f.kind == "blogpost")
        .map(|f| {
            (
                f.external_id.clone(),
                (
                    f.version,
                    f.content_hash.clone().unwrap_or_default(),
                    f.parent_id.clone(),
                ),
            )
        })
        .collect();
    let truth: BTreeMap<String, (i64, String, Option<String>)> = sim
        .truth(&creds.email)
        .unwrap()
        .into_iter()
        .map(|t| (t.id, (t.version as i64, t.body_sha256, t.parent_id)))
        .collect();
    assert_eq!(stored.len(), truth.len());
    assert!(
        stored == truth,
        "the store differs from the truth after kills"
    );
    // The index, killed with the sync as often, caught up (no process kept
    // its writer lock), holds each stored chunk once and nothing of what is
    // gone.
    assert!(
        store
            .index_changes(store::LogPosition::default(), 1)
            .await
            .unwrap()
            .is_empty(),
        "the index log was not applied"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["search", "--json", "--k", "1000", "--data-dir"])
        .arg(&data_dir)
        .arg("the")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hits: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(hits.len(), 1000);
    let held: std::collections::HashSet<(String, String)> = files
        .iter()
        .map(|f| (f.kind.clone(), f.external_id.clone()))
        .collect();
    let mut chunks = std::collections::HashSet::new();
    for hit in &hits {
        let key = (
            hit["kind"].as_str().unwrap().to_string(),
            hit["external_id"].as_str().unwrap().to_string(),
        );
        assert!(
            held.contains(&key),
            "the index holds {key:?}, which the store does not"
        );
        assert!(
            chunks.insert((hit["file_id"].as_i64(), hit["chunk_index"].as_i64())),
            "a chunk indexed twice: {hit}"
        );
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn bad_arguments_are_refused_with_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args([
            "sync",
            "--site",
            "not a url",
            "--email",
            "a@b.c",
            "--api-token",
            "x",
            "--data-dir",
            "/nonexistent/x",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a URL"));
    let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["sync", "--site", "http://127.0.0.1:9"])
        .env_remove("CONFSYNC_API_TOKEN")
        .env_remove("CONFSYNC_PAT")
        .output()
        .unwrap();
    assert!(!output.status.success());
    // A viewer that is not one, or a store that is not there.
    let dir = std::env::temp_dir().join(format!("confsync-search-args-{}", std::process::id()));
    for (args, expected) in [
        (vec!["search", "--as", "{bad", "x"], "--as is not a viewer"),
        (
            vec!["search", "--as", r#"{"agent": "yes"}"#, "x"],
            "--as is not a viewer",
        ),
        (vec!["search", "x"], "no store in"),
        (vec!["search", " "], "nothing to search for"),
        (vec!["status"], "no store in"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
            .args(&args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!dir.exists(), "looking made a data directory");
}

#[test]
fn create_org_prints_a_key_that_is_stored_hashed() {
    let dir = std::env::temp_dir().join(format!("confsync-cli-org-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let create = |name: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
            .args(["admin", "create-org", "--name", name, "--data-dir"])
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let first = create("Acme");
    let second = create("Globex");
    assert_eq!(first["name"], "Acme");
    assert_eq!(first["organization_id"], 1);
    assert_eq!(second["organization_id"], 2);
    let key = first["api_key"].as_str().unwrap();
    assert!(key.starts_with("csk_") && key.len() > 60);
    assert_ne!(key, second["api_key"].as_str().unwrap());
    // The database holds no key in the clear (WAL included).
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["admin", "create-org", "--name", "", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--name"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 11, finding 8: a later `confsync sync` without the flag keeps the
/// stored connection's enforcement of Confluence's permissions; only
/// `--no-enforce-permissions` switches it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_changes_only_when_asked() {
    let sim = common::simulated_site(5, 1, 5, 0).await;
    let creds = sim.credentials();
    let data_dir = std::env::temp_dir().join(format!("confsync-enforce-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let run = |extra: &[&str]| {
        let output = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let enforced = || async {
        let store = store::Store::open(&data_dir).await.unwrap();
        let connections = store.connections().await.unwrap();
        assert_eq!(connections.len(), 1);
        connections[0].enforce_permissions
    };
    run(&["--enforce-permissions"]);
    assert!(enforced().await);
    run(&[]);
    assert!(
        enforced().await,
        "a run without the flag switched enforcement off"
    );
    run(&["--no-enforce-permissions"]);
    assert!(!enforced().await);
    run(&[]);
    assert!(!enforced().await);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A slow simulated site: a sync of it takes a few seconds.
async fn slow_site(seed: u64) -> confluence_sim::RunningSimulator {
    common::simulated_site(seed, 2, 300, 10).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_of_the_same_connection_is_refused_while_one_runs() {
    let sim = slow_site(41).await;
    let creds = sim.credentials();
    let data_dir = std::env::temp_dir().join(format!("confsync-twice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let first = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
        .spawn()
        .unwrap();
    // The first holds the lock once it has made its data directory.
    let started = Instant::now();
    while !data_dir.join("locks").exists() {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "the second ran alongside: {stderr}"
    );
    assert!(
        stderr.contains("another `confsync sync`") && stderr.contains(&creds.email),
        "{stderr}"
    );
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Once it ended, the next run goes ahead.
    let third = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
        .output()
        .unwrap();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// `confsync sync` beside `confsync serve` on one data directory: the
/// server holds the index, and its follower notices the other process's
/// commits (it polls the log), so what the sync wrote becomes searchable
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_beside_a_running_server_becomes_searchable() {
    let sim = slow_site(42).await;
    let creds = sim.credentials();
    let data_dir = std::env::temp_dir().join(format!("confsync-beside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let addr = free_addr();
    let mut server = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(&data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&reqwest::Client::new(), &format!("http://{addr}")).await;
    let synced = sync_command(&creds.base_url, &creds.email, &creds.api_token, &data_dir)
        .output()
        .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    // Searched by another process, which reads what the server's index
    // committed.
    let started = Instant::now();
    loop {
        let output = confsync(&["search", "--json", "--k", "1", "the"], &data_dir);
        if String::from_utf8_lossy(&output.stdout).lines().count() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server never indexed the other process's sync: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A connection made by mistake (a wrong account) is listed, shown and
/// removed with everything synced through it: gone from the store and
/// from search; the right one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_listed_shown_and_removed() {
    let (sim, data_dir) = synced_site(43, 2, 40, "conns", &[]).await;
    let creds = sim.credentials();

    let list = confsync(&["connections", "list", "--json"], &data_dir);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed: Vec<serde_json::Value> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["account"], creds.email);
    let id = listed[0]["id"].as_str().unwrap().to_string();

    let show = confsync(&["connections", "show", &id], &data_dir);
    assert!(show.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert!(
        shown["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "page" && f["files"].as_i64().unwrap() > 0),
        "{shown}"
    );
    let found = confsync(&["search", "--json", "--k", "1", "the"], &data_dir);
    assert_eq!(String::from_utf8_lossy(&found.stdout).lines().count(), 1);

    let removed = confsync(&["connections", "remove", &id], &data_dir);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(String::from_utf8_lossy(&removed.stdout).contains(&id));
    // Gone: from the list, from search, and unknown to show and remove.
    let list = confsync(&["connections", "list"], &data_dir);
    assert!(String::from_utf8_lossy(&list.stdout).trim().is_empty());
    let found = confsync(&["search", "--json", "--k", "1", "the"], &data_dir);
    assert_eq!(String::from_utf8_lossy(&found.stdout).lines().count(), 0);
    for args in [
        ["connections", "show", id.as_str()],
        ["connections", "remove", id.as_str()],
    ] {
        let output = confsync(&args, &data_dir);
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("no connection"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Issue 16: a later run's flags either match the stored connection or
/// are refused, saying what differs; `--replace-scope` changes it on
/// purpose. Wrong credentials never replace working ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_settings_change_only_on_purpose() {
    let sim = common::simulated_site(44, 3, 60, 0).await;
    let creds = sim.credentials();
    let data_dir = std::env::temp_dir().join(format!("confsync-scope-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let run = |token: &str, extra: &[&str]| {
        sync_command(&creds.base_url, &creds.email, token, &data_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let counts = || async {
        let store = store::Store::open(&data_dir).await.unwrap();
        let connection = store.connections().await.unwrap().remove(0);
        let mut counts = BTreeMap::new();
        for (kind, _, n) in store.counts(&connection.id).await.unwrap() {
            *counts.entry(kind).or_insert(0) += n;
        }
        let secret = store.credentials(&connection.id).await.unwrap();
        (connection, counts, secret)
    };
    let first = run(&creds.api_token, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let (_, before, secret) = counts().await;
    assert!(before["page"] > 0 && before["attachment"] > 0 && before["comment"] > 0);

    // Another scope, or other kinds: refused, nothing deleted.
    let key = sim.with_site(|s| s.spaces.values().next().unwrap().key.clone());
    for extra in [vec!["--spaces", key.as_str()], vec!["--content", "pages"]] {
        let refused = run(&creds.api_token, &extra);
        assert!(!refused.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("--replace-scope") && stderr.contains("this run asks for"),
            "{stderr}"
        );
        assert!(stderr.contains("Nothing was changed"), "{stderr}");
        assert_eq!(counts().await.1, before, "{extra:?} changed the store");
    }

    // A wrong token: one line naming the site and the account, and the
    // stored credentials stay.
    let wrong = run("not-the-token", &[]);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("refused the credentials of") && stderr.contains(&creds.email),
        "{stderr}"
    );
    assert_eq!(
        counts().await.2,
        secret,
        "a refused token replaced the stored one"
    );

    // On purpose: pages only. The other kinds go; the flags are kept.
    let replaced = run(&creds.api_token, &["--replace-scope", "--content", "pages"]);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    let (connection, after, _) = counts().await;
    assert_eq!(connection.content_kinds, "pages");
    assert_eq!(after.get("page"), before.get("page"));
    assert_eq!(after.len(), 1, "only pages are left: {after:?}");
    // A later run without flags syncs what is stored, and lists no
    // attachments or comments.
    sim.reset_stats();
    let again = run(&creds.api_token, &[]);
    assert!(again.status.success());
    let stats = sim.stats();
    assert!(
        !stats
            .operations
            .keys()
            .any(|op| op.contains("attachments") || op.contains("footer-comments")),
        "{:?}",
        stats.operations
    );
    let status = confsync(&["status"], &data_dir);
    assert!(String::from_utf8_lossy(&status.stdout).contains("content: pages"));
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Issue 16: failures before any work are said at once, in one line,
/// with the address and the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_said_at_once_in_one_line() {
    let sim = common::simulated_site(45, 1, 5, 0).await;
    let creds = sim.credentials();
    let dir = std::env::temp_dir().join(format!("confsync-fail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let closed = format!("http://{}", free_addr());
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, b"").unwrap();
    let cases: Vec<(String, Vec<&str>, std::path::PathBuf, Vec<&str>)> = vec![
        (
            closed.clone(),
            vec![],
            dir.join("d1"),
            vec!["cannot reach", closed.as_str(), "refused"],
        ),
        (
            creds.base_url.clone(),
            vec!["--context-path", "/confluence"],
            dir.join("d2"),
            vec!["no Confluence REST API at", "/confluence", "--context-path"],
        ),
        (
            creds.base_url.clone(),
            vec![],
            a_file.clone(),
            vec!["is a file", "a-file"],
        ),
    ];
    for (site, extra, data_dir, expected) in cases {
        let started = Instant::now();
        let output = sync_command(&site, &creds.email, &creds.api_token, &data_dir)
            .args(&extra)
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{site} took {:?}",
            started.elapsed()
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for text in expected {
            assert!(
                stderr.to_lowercase().contains(&text.to_lowercase()),
                "{text} in {stderr}"
            );
        }
        assert!(!stderr.contains("error sending request"), "{stderr}");
    }
    // Nothing was made for the failed runs.
    assert!(!dir.join("d1").join("confsync.db").exists());
    assert!(!dir.join("d2").join("confsync.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 16: `convert` refuses what is not text before reading it whole.
#[test]
fn convert_refuses_binary_input() {
    let dir = std::env::temp_dir().join(format!("confsync-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let elf = dir.join("program");
    let mut bytes = b"\x7fELF\x02\x01\x01\x00".to_vec();
    bytes.extend((0..200_000u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&elf, &bytes).unwrap();
    let latin1 = dir.join("latin1.xml");
    std::fs::write(&latin1, b"<p>caf\xe9 cr\xe8me</p>").unwrap();
    let page = dir.join("page.xml");
    std::fs::write(&page, "<p>caf\u{e9} <strong>cr\u{e8}me</strong></p>").unwrap();
    for (file, expected) in [
        (&elf, "is not text (a NUL byte"),
        (&latin1, "is not UTF-8 text"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
            .arg("convert")
            .arg(file)
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .arg("convert")
        .arg(&page)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "caf\u{e9} **cr\u{e8}me**"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 16: `status` shows why a connection's last sync ended, whatever
/// its status; `--as` takes Confluence groups by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_last_error_and_search_takes_group_names() {
    let (sim, data_dir) = synced_site(46, 4, 80, "groups", &["--enforce-permissions"]).await;

    // A group by its name finds what the same group by its id finds, and
    // more than nobody does.
    let (name, id) = sim.with_site(|s| {
        let g = s.groups.iter().find(|g| g.name == "engineering").unwrap();
        (g.name.clone(), g.id.clone())
    });
    let search_as = |groups: &str| {
        let viewer = format!(r#"{{"signed_in": true, "confluence_groups": [{groups}]}}"#);
        let output = confsync(
            &["search", "--json", "--k", "50", "--as", &viewer, "the"],
            &data_dir,
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().lines().count()
    };
    let by_name = search_as(&format!("\"{name}\""));
    let by_id = search_as(&format!("\"{id}\""));
    let nobody = search_as("");
    assert_eq!(by_name, by_id);
    assert!(
        by_name > nobody,
        "{by_name} results as {name}, {nobody} as nobody"
    );

    let store = store::Store::open(&data_dir).await.unwrap();
    let connection = store.connections().await.unwrap().remove(0);
    store
        .set_connection_status(
            &connection.id,
            store::ConnectionStatus::NeedsReauthorization,
            Some("unauthorized: the token was revoked"),
            false,
        )
        .await
        .unwrap();
    drop(store);
    let status = confsync(&["status"], &data_dir);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("last error: unauthorized: the token was revoked"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Issue 17: `confsync mcp` serves a data directory to an agent over
/// stdio; the official Python SDK (PyPI `mcp`) initialises, lists the
/// tools, searches, fetches and lists resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reaches_a_data_directory_over_stdio_mcp() {
    let (_sim, data_dir) = synced_site(47, 2, 40, "mcp", &[]).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/clients/mcp_agent.py"))
        .arg("stdio")
        .arg(env!("CARGO_BIN_EXE_confsync"))
        .arg(&data_dir)
        .arg("the")
        .arg("first")
        .output()
        .expect("run scripts/test, which installs .venv");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(seen["server"], "confsync");
    assert_eq!(
        seen["tools"],
        serde_json::json!(["fetch", "list_spaces", "search"])
    );
    assert!(seen["results"].as_array().unwrap().len() > 3, "{seen}");
    assert_eq!(seen["fetch"]["error"], false, "{seen}");
    let title = seen["results"][0]["title"].as_str().unwrap();
    assert!(seen["fetch"]["text"]
        .as_str()
        .unwrap()
        .starts_with(&format!("# {title}")));
    assert_eq!(seen["spaces"].as_array().unwrap().len(), 2, "{seen}");
    // 40 pages, their blog posts, comments and attachments: one page of
    // 100 resources at most.
    let listed = seen["resources"].as_array().unwrap().len();
    assert!(listed > 40 && listed <= 100, "{listed} resources");
    assert!(
        seen["resource_text"].as_str().unwrap().starts_with("# "),
        "{seen}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
