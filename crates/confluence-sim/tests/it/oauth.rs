//! The OAuth 2.0 (3LO) server: consent without a browser, code exchange,
//! accessible-resources, gateway calls with the token, rotation of refresh
//! tokens with the reuse grace and family invalidation, and expiry.

use crate::common::{start, TestSim};
use serde_json::{json, Value};
use std::time::Duration;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn authorize(t: &TestSim, scope: &str, account: &str) -> String {
    let creds = t.sim.credentials();
    let url = format!(
        "{}/authorize?audience=api.atlassian.com&client_id={}&scope={}&redirect_uri={}&state=s-123&response_type=code&prompt=consent",
        t.base(),
        creds.oauth_client_id,
        url::form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
    );
    let page = t.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("action=\"/authorize/consent\""));
    let consent = t
        .client
        .post(format!("{}/authorize/consent", t.base()))
        .form(&[
            ("client_id", creds.oauth_client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "s-123"),
            ("account", account),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302);
    let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "s-123");
    query["code"].clone()
}

async fn token(t: &TestSim, body: Value) -> (u16, Value) {
    let response = t
        .client
        .post(format!("{}/oauth/token", t.base()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn exchange_body(t: &TestSim, code: &str) -> Value {
    let creds = t.sim.credentials();
    json!({"grant_type": "authorization_code", "client_id": creds.oauth_client_id,
           "client_secret": creds.oauth_client_secret, "code": code, "redirect_uri": REDIRECT})
}

fn refresh_body(t: &TestSim, refresh: &str) -> Value {
    let creds = t.sim.credentials();
    json!({"grant_type": "refresh_token", "client_id": creds.oauth_client_id,
           "client_secret": creds.oauth_client_secret, "refresh_token": refresh})
}

#[tokio::test]
async fn three_legged_flow_reaches_the_api_through_the_gateway() {
    let t = start(1, 3, 60).await;
    let code = authorize(
        &t,
        "read:confluence-content.all offline_access",
        "ben@example.com",
    )
    .await;
    let (status, tokens) = token(&t, exchange_body(&t, &code)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].is_string());
    // The code is single-use.
    let (status, error) = token(&t, exchange_body(&t, &code)).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (403, Some("invalid_grant"))
    );

    let resources: Value = t
        .client
        .get(format!("{}/oauth/token/accessible-resources", t.base()))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cloud_id = resources[0]["id"].as_str().unwrap();
    assert_eq!(cloud_id, t.sim.credentials().cloud_id);
    assert_eq!(resources[0]["url"], t.base());
    // The token acts as the consenting account: ben sees what ben may see.
    let ids = t
        .walk_ids_with(
            &format!("Bearer {access}"),
            &format!("/ex/confluence/{cloud_id}/wiki/api/v2/pages?limit=250"),
        )
        .await;
    let truth = t
        .sim
        .truth("ben@example.com")
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "page")
        .count();
    assert_eq!(ids.len(), truth);

    // Without offline_access there is no refresh token.
    let code = authorize(&t, "read:confluence-content.all", "ben@example.com").await;
    let (_, tokens) = token(&t, exchange_body(&t, &code)).await;
    assert!(tokens.get("refresh_token").is_none());
    // A wrong secret is refused.
    let code = authorize(&t, "offline_access", "ben@example.com").await;
    let mut body = exchange_body(&t, &code);
    body["client_secret"] = "wrong".into();
    assert_eq!(token(&t, body).await.0, 401);
}

impl TestSim {
    pub async fn walk_ids_with(&self, authorization: &str, path: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(path) = next {
            let reply = self.get_with(authorization, &path).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            ids.extend(
                reply.body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string()),
            );
            // Cloud's next links are site-relative even through the gateway.
            next = reply.body["_links"]["next"].as_str().map(|n| {
                let prefix = path.split("/wiki/").next().unwrap();
                format!("{prefix}{n}")
            });
        }
        ids
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_with_a_grace_then_the_family_dies() {
    let t = start(1, 2, 20).await;
    let code = authorize(
        &t,
        "offline_access read:confluence-content.all",
        "admin@example.com",
    )
    .await;
    let (_, first) = token(&t, exchange_body(&t, &code)).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let (status, second) = token(&t, refresh_body(&t, &r1)).await;
    assert_eq!(status, 200);
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "refresh tokens rotate");
    // Reuse of r1 within the grace still answers (concurrent refreshes).
    let (status, _) = token(&t, refresh_body(&t, &r1)).await;
    assert_eq!(status, 200);
    // After the grace, reuse is refused and the whole family is revoked.
    t.control_post("/_sim/oauth", json!({"refresh_grace_secs": 0.05}))
        .await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (status, error) = token(&t, refresh_body(&t, &r1)).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    let (status, _) = token(&t, refresh_body(&t, &r2)).await;
    assert_eq!(status, 403, "the family of a reused token is invalidated");
    assert!(t.sim.stats().refresh_token_reuses >= 2);
    let (status, error) = token(&t, json!({"grant_type": "password"})).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn expired_access_tokens_answer_as_cloud_does_in_the_field() {
    let t = start(1, 2, 20).await;
    t.control_post("/_sim/oauth", json!({"access_token_ttl_secs": 0.2}))
        .await;
    let code = authorize(&t, "offline_access", "admin@example.com").await;
    let (_, tokens) = token(&t, exchange_body(&t, &code)).await;
    assert_eq!(tokens["expires_in"], 1, "whole seconds, at least one");
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    assert_eq!(t.get_with(&bearer, "/wiki/api/v2/spaces").await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        t.get_with(&bearer, "/wiki/api/v2/spaces").await.status,
        404,
        "v2 answers 404"
    );
    assert_eq!(
        t.get_with(&bearer, "/wiki/rest/api/space").await.status,
        403,
        "v1 answers 403"
    );
    // A refreshed token works again.
    let (_, fresh) = token(
        &t,
        refresh_body(&t, tokens["refresh_token"].as_str().unwrap()),
    )
    .await;
    let bearer = format!("Bearer {}", fresh["access_token"].as_str().unwrap());
    assert_eq!(t.get_with(&bearer, "/wiki/api/v2/spaces").await.status, 200);
    // An unknown bearer is a plain 401.
    assert_eq!(
        t.get_with("Bearer nonsense", "/wiki/api/v2/spaces")
            .await
            .status,
        401
    );
}
