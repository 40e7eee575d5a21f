//! `confsync demo` as a user runs it: it prints the admin console's URL
//! and a one-time sign-in link, and the console, signed in with that link,
//! lists the simulated site's spaces as Synced.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_opens_the_console_with_its_spaces_synced() {
    let dir = std::env::temp_dir().join(format!("confsync-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Free ports for the simulated site and the server.
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_confsync"))
            .args(["demo", "--pages", "120", "--spaces", "6", "--data-dir"])
            .arg(&dir)
            .args(["--addr", &port(), "--sim-addr", &port()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (console, link) = tokio::task::spawn_blocking(move || {
        let (mut console, mut link) = (None, None);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("admin console: ") {
                console = Some(url.to_string());
            }
            if let Some(rest) = line.strip_prefix("sign in (once; valid 24 hours): ") {
                link = Some(rest.to_string());
                break;
            }
        }
        (console, link)
    })
    .await
    .unwrap();
    let console = console.expect("the demo prints the console's URL");
    let link = link.expect("the demo prints a sign-in link");
    assert!(link.starts_with(&console), "{link} is under {console}");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The link shows a page, and signs in only when its button is pressed.
    assert_eq!(http.get(&link).send().await.unwrap().status(), 200);
    let signed_in = http.post(&link).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Used once: the same link no longer signs in.
    assert_eq!(http.post(&link).send().await.unwrap().status(), 404);
    let started = Instant::now();
    loop {
        let page = http
            .get(&console)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let spaces = page.matches("<tr class=\"space\"").count();
        let synced = page.matches(">Synced<").count();
        // The demo site has 6 spaces, one of them personal (not offered):
        // 5 space rows and the site's row, all Synced.
        if spaces == 5 && synced == 6 {
            assert!(page.contains("connected by Demo Admin"), "{page}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{spaces} spaces, {synced} synced:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The operator's `confsync search` on the demo's data directory finds
    // the demo's content (filled through the console, not `confsync
    // sync`), while the server holds the index, and creates nothing.
    let output = common::confsync(&["search", "--json", "--k", "3", "the"], &dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hits = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        hits.lines().count(),
        3,
        "the demo's content is found: {hits}"
    );
    let organisations = common::confsync(&["search", "--org", "default", "the"], &dir);
    assert!(
        String::from_utf8_lossy(&organisations.stderr).contains("no organisation \"default\""),
        "the first search made no organisation \"default\": {}",
        String::from_utf8_lossy(&organisations.stderr)
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `confsync admin create-admin`: a sign-in link, or with the password
/// from the environment (never argv) a password set; a second admin with
/// the same email is refused.
#[test]
fn create_admin_prints_a_link_or_sets_the_password() {
    let dir = std::env::temp_dir().join(format!("confsync-create-admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |args: &[&str], password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confsync"));
        command.args(args).arg("--data-dir").arg(&dir);
        command.env_remove("CONFSYNC_ADMIN_PASSWORD");
        if let Some(password) = password {
            command.env("CONFSYNC_ADMIN_PASSWORD", password);
        }
        command.output().unwrap()
    };
    // No store yet: said so, nothing created.
    let none = run(
        &[
            "admin",
            "create-admin",
            "--org",
            "Acme",
            "--email",
            "a@acme.com",
            "--name",
            "A",
        ],
        None,
    );
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("create an organisation first"));
    assert!(run(&["admin", "create-org", "--name", "Acme"], None)
        .status
        .success());
    let linked = run(
        &[
            "admin",
            "create-admin",
            "--org",
            "Acme",
            "--email",
            "Kim@Acme.com",
            "--name",
            "Kim",
            "--url",
            "https://kb.acme.com/",
        ],
        None,
    );
    assert!(
        linked.status.success(),
        "{}",
        String::from_utf8_lossy(&linked.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&linked.stdout).unwrap();
    assert_eq!(answer["email"], "kim@acme.com");
    assert!(answer["signin_link"]
        .as_str()
        .unwrap()
        .starts_with("https://kb.acme.com/admin/signin/link/"));
    let short = run(
        &[
            "admin",
            "create-admin",
            "--org",
            "Acme",
            "--email",
            "lee@acme.com",
            "--name",
            "Lee",
        ],
        Some("short"),
    );
    assert!(!short.status.success(), "a short password is refused");
    let set = run(
        &[
            "admin",
            "create-admin",
            "--org",
            "Acme",
            "--email",
            "lee@acme.com",
            "--name",
            "Lee",
        ],
        Some("a long enough passphrase"),
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&set.stdout).unwrap();
    assert!(answer.get("signin_link").is_none());
    let again = run(
        &[
            "admin",
            "create-admin",
            "--org",
            "Acme",
            "--email",
            "kim@acme.com",
            "--name",
            "Kim",
        ],
        None,
    );
    assert!(!again.status.success(), "one admin per email");
    let _ = std::fs::remove_dir_all(&dir);
}
