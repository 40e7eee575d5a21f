//! The admin console in a real browser: Debian's Chromium, driven by
//! Playwright (`tests/clients/js/console.mjs`), against a real server and
//! the simulator, through every flow of the console. The script asks this
//! harness for what a browser cannot do (make Confluence fail, let time
//! pass until the session expires) on its standard output, and is
//! answered on its standard input.

use super::browser::{chromium, shots_dir, Script};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let chromium = chromium();
    // 32 spaces, so that the picker's first 20 and its type-ahead differ;
    // every fifth from the third is personal.
    let sim = simulator(32, 640).await;
    let dir = TempDir::new("console");
    let mut config = config(&sim, &dir);
    config.console.signin_attempts_per_minute = 20;
    let running = start(config).await;
    let store = &running.app.store;
    let creds = sim.credentials();

    // An API customer's connection, for the operator's view.
    let org = Api::new(&running, "console-org").await;
    let customer = org.customer("acme-customer");
    customer.connect(&sim, false).await;
    let admin = store
        .create_admin(&org.organisation_id, "kim@example.com", "Kim Admin", None)
        .await
        .unwrap();
    let link =
        server::console::signin_link(store, &running.url(), &admin.id, Duration::from_secs(3600))
            .await
            .unwrap();

    // What the script looks for: spaces by name, a personal one, and for
    // two spaces a title to search for.
    let (spaces, personal, titles) = sim.with_site(|site| {
        let mut spaces: Vec<(String, String)> = site
            .spaces
            .values()
            .filter(|s| s.space_type != confluence_sim::model::SpaceType::Personal)
            .map(|s| (s.key.clone(), s.name.clone()))
            .collect();
        spaces.sort_by_key(|(key, name)| (name.to_lowercase(), key.clone()));
        let personal = site
            .spaces
            .values()
            .find(|s| s.space_type == confluence_sim::model::SpaceType::Personal)
            .map(|s| s.name.clone())
            .unwrap();
        let titles: std::collections::HashMap<String, String> = site
            .spaces
            .values()
            .filter_map(|space| {
                site.space_content
                    .get(&space.id)?
                    .iter()
                    .filter_map(|id| site.content.get(id))
                    .find(|c| {
                        c.kind == confluence_sim::model::ContentKind::Page
                            && c.status == confluence_sim::model::Status::Current
                            && c.read_restriction.is_none()
                    })
                    .map(|c| (space.key.clone(), c.title.clone()))
            })
            .collect();
        (spaces, personal, titles)
    });
    assert!(spaces.len() > 20, "{} spaces", spaces.len());
    // A and B have pages; "far" sorts after the first 20.
    let with_pages: Vec<&(String, String)> = spaces
        .iter()
        .take(20)
        .filter(|(key, _)| titles.contains_key(key))
        .collect();
    let (a, b) = (with_pages[0], with_pages[1]);
    let far = spaces.last().unwrap();
    let space = |(key, name): &(String, String)| json!({"key": key, "name": name, "title": titles.get(key)});
    let shots = shots_dir("CONSOLE_SCREENSHOTS", dir.0.join("shots"));
    let plan = json!({
        "base": running.url(),
        "link": link,
        "chromium": chromium,
        "shots": shots,
        "account": creds.email,
        "first20": spaces.iter().take(20).map(|(_, name)| name).collect::<Vec<_>>(),
        "personal": personal,
        "a": space(a),
        "b": space(b),
        "far": space(far),
        "customer": "acme-customer",
        "password": "a long enough passphrase",
    });

    let mut script = Script::start("console.mjs", &[("CONSOLE_PLAN", plan.to_string())]);
    while let Some(ask) = script.next_ask().await {
        match ask.as_str() {
            // Confluence refuses the credentials from now on.
            "fail-on" => sim.set_faults(confluence_sim::FaultConfig {
                rate: 1.0,
                kinds: vec![confluence_sim::FaultKind::Unauthorized],
                ..Default::default()
            }),
            "fail-off" => sim.set_faults(confluence_sim::FaultConfig::default()),
            // Time passes beyond every session's end.
            "expire" => expire_sessions(&dir).await,
            other => panic!("the script asked for {other:?}"),
        }
        script.answer("ok").await;
    }
    script.finish("the console's browser flows").await;

    // What the browser did is in the store, with who did it.
    let actions = store
        .admin_actions(&org.organisation_id, 100)
        .await
        .unwrap();
    for action in [
        "Connect",
        "Add content",
        "Set viewing permissions",
        "Create segment",
        "Remove space",
        "Sync again",
    ] {
        assert!(
            actions
                .iter()
                .any(|a| a.action == action && a.admin_name == "Kim Admin"),
            "{action} not recorded: {actions:?}"
        );
    }
    running.stop().await;
}

/// Moves every session's end into the past, as time passing would.
async fn expire_sessions(dir: &TempDir) {
    use sqlx::{ConnectOptions, Connection};
    let sql = "UPDATE admin_sessions SET expires_at = '2000-01-01T00:00:00.000Z'";
    match dir.database_url() {
        Some(url) => {
            let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&mut db).await.unwrap();
        }
        None => {
            let mut db = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.0.join("confsync.db"))
                .connect()
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut db).await.unwrap();
        }
    }
}

/// Sign-in is rate-limited per email, and a wrong password or an unknown
/// email get the same answer.
#[tokio::test]
async fn sign_in_attempts_are_limited() {
    let sim = simulator(2, 10).await;
    let dir = TempDir::new("console-signin");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let hash = server::console::hash_password("correct horse battery").unwrap();
    running
        .app
        .store
        .create_admin(&org.organisation_id, "Lee@Example.com", "Lee", Some(&hash))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let attempt = |email: &'static str, password: &'static str| {
        http.post(format!("{}/admin/signin", running.url()))
            .form(&[("email", email), ("password", password), ("next", "/admin")])
            .send()
    };
    // A form past the console's limit is refused, not buffered.
    let huge = http
        .post(format!("{}/admin/signin", running.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={}", "a".repeat(300 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    // Unknown email and wrong password: one answer.
    let unknown = attempt("nobody@example.com", "whatever it is")
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let wrong = attempt("lee@example.com", "not the password")
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("do not match"));
    // The right one (the email in any case) opens a session: an HttpOnly,
    // SameSite=Lax cookie, and the console.
    let right = attempt("LEE@example.com", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(right.status(), 303);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{}/admin", running.url()))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    // A state-changing form without the session's CSRF token is refused.
    let forged = http
        .post(format!("{}/admin/signout", running.url()))
        .header("cookie", &session)
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Five attempts a minute per email (default), then 429.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            attempt("lee@example.com", "guess guess guess")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Without a session: pages redirect to sign-in, forms are 401.
    let page = http
        .get(format!("{}/admin/preview?q=x", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert!(page.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/admin/signin?next=%2Fadmin%2Fpreview"));
    let form = http
        .post(format!("{}/admin/connections/1/sync", running.url()))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 401);
    running.stop().await;
}
