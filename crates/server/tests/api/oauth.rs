//! OAuth states forged, replayed or expired are refused; subdomains that
//! try to point elsewhere are refused; a cancelled consent is announced.

use super::*;
use base64::Engine as _;

/// oauth_url for a subdomain and the simulator's consent: the callback URL.
async fn consent(api: &Api, sim: &RunningSimulator, subdomain: &str, decision: &str) -> String {
    let request = json!({"service": "CONFLUENCE", "confluence_subdomain": subdomain});
    authorize(api, sim, request, decision).await.1
}

fn with_param(callback: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

async fn get(api: &Api, url: &str) -> (u16, Value) {
    answer(api.http.get(url).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn states_must_be_ours_unused_and_fresh() {
    let sim = simulator(1, 5).await;
    let dir = TempDir::new("oauth");
    let mut config = config(&sim, &dir);
    config.oauth_state_ttl_secs = 2;
    let running = start(config).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c1");
    let (receiver, hook_url) = Receiver::start(0).await;
    let key = org.ok("/add_webhook", json!({"url": hook_url})).await["signing_key"]
        .as_str()
        .unwrap()
        .to_string();

    // Forged: a state we never issued; one whose claims were changed; none.
    let callback = consent(&api, &sim, "acme", "accept").await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let (body, signature) = state.split_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(body).unwrap()).unwrap();
    claims["c"] = json!("someone-else");
    let tampered = format!("{}.{signature}", engine.encode(claims.to_string()));
    for forged in [
        "not-a-state".to_string(),
        format!("{body}.{}", engine.encode([0u8; 32])),
        tampered,
        String::new(),
    ] {
        let (status, answer) = get(&api, &with_param(&callback, "state", &forged)).await;
        assert_eq!(status, 400, "{forged}: {answer}");
        assert_eq!(answer["code"], "invalid_state");
    }
    let without = callback.split('?').next().unwrap().to_string() + "?code=x";
    assert_eq!(get(&api, &without).await.1["code"], "invalid_state");
    // The genuine one still works (forgeries did not consume it), once.
    let (status, done) = get(&api, &callback).await;
    assert_eq!(status, 200, "{done}");
    let (status, replay) = get(&api, &callback).await;
    assert_eq!((status, replay["code"].as_str()), (400, Some("state_used")));
    assert_eq!(api.ok("/user_data_sources", json!({})).await["count"], 1);

    // Expired: the consent took longer than the state lives.
    let late = consent(&api, &sim, "acme", "accept").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, answer) = get(&api, &late).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("state_expired")),
        "{answer}"
    );

    // Cancelled: an error page, and Carbon's CANCEL event.
    let cancelled = consent(&api, &sim, "acme", "deny").await;
    let (status, answer) = get(&api, &cancelled).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("access_denied"))
    );
    receiver
        .wait_for(&key, |events| events.iter().any(|(t, _)| t == "CANCEL"))
        .await;

    // A valid subdomain of a site the consenting account cannot reach:
    // refused after the exchange, without calling that site.
    let elsewhere = consent(&api, &sim, "other-site", "accept").await;
    let (status, answer) = get(&api, &elsewhere).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("site_not_accessible")),
        "{answer}"
    );
    assert_eq!(api.ok("/user_data_sources", json!({})).await["count"], 1);

    // No subdomain: the only site the account reaches (the same site and
    // account again: the connection is updated, not doubled).
    let any_site = consent(&api, &sim, "", "accept").await;
    let (status, answer) = get(&api, &any_site).await;
    assert_eq!(status, 200, "{answer}");
    let sources = api.ok("/user_data_sources", json!({})).await;
    assert_eq!(sources["count"], 1);
    assert_eq!(
        sources["results"][0]["data_source_metadata"]["site_url"],
        sim.base_url().as_str()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdomains_cannot_point_elsewhere() {
    let sim = simulator(1, 5).await;
    let dir = TempDir::new("subdomain");
    let running = start(config(&sim, &dir)).await;
    let api = Api::new(&running, "org").await.customer("c1");
    let creds = sim.credentials();
    for evil in [
        "evil.com",
        "acme.atlassian.net.evil.com",
        "127.0.0.1",
        "localhost:8080",
        "acme@evil.com",
        "acme/../../evil",
        "http://evil.com",
        "",
        "a b",
        &sim.base_url(),
    ] {
        // (An empty subdomain asks for the account's only site instead.)
        if !evil.is_empty() {
            let (status, answer) = api
                .post(
                    "/integrations/oauth_url",
                    json!({"service": "CONFLUENCE", "confluence_subdomain": evil}),
                )
                .await;
            assert_eq!(status, 422, "{evil:?}: {answer}");
            assert_eq!(
                answer["detail"][0]["loc"],
                json!(["body", "confluence_subdomain"])
            );
        }
        let (status, answer) = api
            .post(
                "/integrations/connect",
                json!({"authentication": {"source": "CONFLUENCE", "subdomain": evil, "username": creds.email, "access_token": creds.api_token}}),
            )
            .await;
        assert_eq!(status, 422, "{evil:?}: {answer}");
    }
    // A personal access token is for a site the operator named, never a
    // Cloud subdomain.
    let (status, _) = api
        .post(
            "/integrations/connect",
            json!({"authentication": {"source": "CONFLUENCE", "subdomain": "somecompany", "access_token": "pat"}}),
        )
        .await;
    assert_eq!(status, 422);
    // Wrong credentials for the named site: a clear 400.
    let (status, answer) = api
        .post(
            "/integrations/connect",
            json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme", "username": creds.email, "access_token": "wrong"}}),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid_credentials"))
    );
    running.stop().await;
}

/// Carbon's Confluence connect: tokens the caller got with the
/// organisation's own OAuth app, handed to /integrations/connect; taken
/// only once that app is registered, synced, and refreshed with it (the
/// refresh token rotates).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_from_the_organisations_own_app_connect() {
    let sim = simulator(2, 20).await;
    let dir = TempDir::new("oauth-tokens");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c1");
    let creds = sim.credentials();
    let redirect = "https://app.example.com/atlassian/callback";

    // The developer's own consent and code exchange, at Atlassian.
    let consented = api
        .http
        .post(format!("{}/authorize/consent", sim.base_url()))
        .form(&[
            ("client_id", creds.oauth_client_id.as_str()),
            ("redirect_uri", redirect),
            ("scope", "read:confluence-content.all offline_access"),
            ("state", "developer-state"),
            ("account", "admin@example.com"),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consented.status(), 302);
    let location = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = api
        .http
        .post(format!("{}/oauth/token", sim.base_url()))
        .json(
            &json!({"grant_type": "authorization_code", "client_id": creds.oauth_client_id,
            "client_secret": creds.oauth_client_secret, "code": code, "redirect_uri": redirect}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let body = json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
        "access_token": tokens["access_token"], "refresh_token": refresh}});

    // Refused until the organisation's app is registered: confsync could
    // not refresh them.
    let (status, refused) = api.post("/integrations/connect", body.clone()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("oauth_app_not_configured"))
    );
    org.ok(
        "/white_label/create",
        json!([{"data_source_type": "CONFLUENCE", "credentials": {"client_id": creds.oauth_client_id,
            "client_secret": creds.oauth_client_secret, "redirect_uri": redirect}}]),
    )
    .await;
    let connected = api.ok("/integrations/connect", body).await;
    let source = connected["data_source"]["id"].as_i64().unwrap();
    let external = connected["data_source"]["data_source_external_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(external.contains("|admin@example.com|"), "{external}");
    // Synced, the tokens refreshed with the organisation's app on the way.
    let files = api.wait_ready(source).await;
    assert!(!files.is_empty());
    let connection = api.connection(&running, source).await;
    assert_eq!(connection.auth_kind, "oauth");
    let stored: Value =
        serde_json::from_slice(&running.app.store.credentials(&connection.id).await.unwrap())
            .unwrap();
    let text = stored.to_string();
    assert!(!text.contains(&refresh), "the refresh token was rotated");
    running.stop().await;
}
