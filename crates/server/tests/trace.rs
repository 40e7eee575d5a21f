//! The whole API flow with every log at TRACE (confsync's and every
//! library's), and not one secret in what is logged: API keys, customer
//! tokens, Confluence API tokens, OAuth client secrets and tokens, webhook
//! signing keys, white-label secrets. Its own test binary, so that its
//! subscriber sees everything the process logs.

use confluence_sim::{SimConfig, Simulator, SiteConfig};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    auth: String,
    customer: Option<String>,
    body: Option<Value>,
) -> Value {
    let mut request = http
        .request(method, url.clone())
        .header("authorization", auth);
    if let Some(customer) = customer {
        request = request.header("customer-id", customer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_the_logs_at_trace() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let sim = Simulator::spawn(
        SimConfig {
            site: SiteConfig {
                seed: 11,
                spaces: 1,
                pages: 6,
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let creds = sim.credentials();
    let dir = std::env::temp_dir().join(format!("confsync-trace-{}", std::process::id()));
    let mut config = server::Config {
        data_dir: dir.clone(),
        workers: 1,
        scheduler_tick_secs: 1,
        ..Default::default()
    };
    config.stand_in(
        "acme",
        &creds.base_url,
        &creds.oauth_client_id,
        &creds.oauth_client_secret,
    );
    config.webhooks.allow_private_targets = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = server::start(config, listener).await.unwrap();
    let base = running.url();
    let (organisation, key) = server::create_organisation(&running.app.store, "org")
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bearer = format!("Bearer {key}");
    let post = |path: &str, auth: &str, customer: Option<&str>, body: Value| {
        call(
            &http,
            reqwest::Method::POST,
            format!("{base}{path}"),
            auth.to_string(),
            customer.map(String::from),
            Some(body),
        )
    };

    // An API-token connection, synced.
    let connected = post(
        "/integrations/connect",
        &bearer,
        Some("c1"),
        json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
            "username": creds.email, "access_token": creds.api_token}}),
    )
    .await;
    assert!(connected["data_source"]["id"].as_i64().is_some());
    let started = Instant::now();
    loop {
        let sources = post("/user_data_sources", &bearer, Some("c1"), json!({})).await;
        if sources["results"][0]["sync_status"] == "READY" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An OAuth connection: consent on the simulator, then the callback.
    let url = post(
        "/integrations/oauth_url",
        &bearer,
        Some("c2"),
        json!({"service": "CONFLUENCE", "confluence_subdomain": "acme"}),
    )
    .await["oauth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let params: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let consent = http
        .post(format!("{}/authorize/consent", sim.base_url()))
        .form(&[
            ("client_id", params["client_id"].as_str()),
            ("redirect_uri", params["redirect_uri"].as_str()),
            ("scope", params["scope"].as_str()),
            ("state", params["state"].as_str()),
            ("account", "admin@example.com"),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    let callback = consent.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(http.get(&callback).send().await.unwrap().status(), 200);
    // Webhooks, a white label, customer tokens, a search.
    let hook = post(
        "/add_webhook",
        &bearer,
        None,
        json!({"url": "http://127.0.0.1:9/hook"}),
    )
    .await;
    let label_secret = "white-label-secret-7c1e";
    post(
        "/white_label/create",
        &bearer,
        None,
        json!([{"data_source_type": "CONFLUENCE", "credentials": {"client_id": "app", "redirect_uri": "https://app.example.com/cb", "client_secret": label_secret}}]),
    )
    .await;
    let tokens = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/auth/v1/access_token"),
        bearer.clone(),
        Some("c1".into()),
        None,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let token_auth = format!("Token {access}");
    post("/user_files_v2", &token_auth, None, json!({})).await;
    post(
        "/embeddings",
        &token_auth,
        None,
        json!({"query": "the", "k": 5}),
    )
    .await;
    post("/resync_file", &bearer, Some("c1"), json!({"file_id": 1})).await;
    // The OAuth connection's tokens, as the store holds them (sealed).
    let store = &running.app.store;
    let user = store
        .end_user(&organisation.id, "c2")
        .await
        .unwrap()
        .unwrap();
    let (connections, _) = store
        .data_sources(&organisation.id, &user.id, &[], None, true, false, 10, 0)
        .await
        .unwrap();
    let sealed: Value =
        serde_json::from_slice(&store.credentials(&connections[0].id).await.unwrap()).unwrap();
    let oauth_access = sealed["oauth"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let oauth_refresh = sealed["oauth"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("TRACE"), "the log was not at TRACE");
    assert!(
        log.contains("route=\"/integrations/connect\""),
        "the access log is missing"
    );
    let secrets = [
        ("the API key", key.clone()),
        ("a customer access token", access.clone()),
        (
            "a customer refresh token",
            tokens["refresh_token"].as_str().unwrap().to_string(),
        ),
        ("the Confluence API token", creds.api_token.clone()),
        ("the OAuth client secret", creds.oauth_client_secret.clone()),
        ("the OAuth code", code),
        ("the OAuth state", params["state"].clone()),
        ("an OAuth access token", oauth_access),
        ("an OAuth refresh token", oauth_refresh),
        (
            "the webhook signing key",
            hook["signing_key"].as_str().unwrap().to_string(),
        ),
        ("the white label's secret", label_secret.to_string()),
    ];
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is too short to look for");
        assert!(
            !log.contains(secret.as_str()),
            "{what} is in the log ({} bytes of log at TRACE)",
            log.len()
        );
    }
    eprintln!(
        "{} bytes of TRACE log, none of {} secrets in them",
        log.len(),
        secrets.len()
    );
}
