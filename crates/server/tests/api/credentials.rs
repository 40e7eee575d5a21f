//! Every operation of `/openapi.json`, called with every kind of
//! credential, answers as the document declares its security: a new
//! endpoint is covered here without anyone remembering to add it.

use super::*;
use server::openapi::Auth;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    None,
    GarbageKey,
    GarbageToken,
    ExpiredToken,
    RefreshTokenAsAccess,
    KeyWithoutCustomer,
    KeyWithCustomer,
    OtherOrganisationKey,
    CustomerToken,
}

/// What the document's security promises for a credential.
#[derive(Debug, PartialEq)]
enum Outcome {
    Unauthenticated,
    CustomerRequired,
    TokenForbidden,
    Allowed,
}

fn expected(auth: Auth, kind: Kind) -> Outcome {
    use Kind::*;
    if auth == Auth::Public {
        return Outcome::Allowed;
    }
    match kind {
        None | GarbageKey | GarbageToken | ExpiredToken | RefreshTokenAsAccess => {
            Outcome::Unauthenticated
        }
        KeyWithCustomer | OtherOrganisationKey => Outcome::Allowed,
        KeyWithoutCustomer => match auth {
            Auth::Organisation => Outcome::Allowed,
            _ => Outcome::CustomerRequired,
        },
        CustomerToken => match auth {
            Auth::Customer => Outcome::Allowed,
            _ => Outcome::TokenForbidden,
        },
    }
}

fn observed(status: u16, answer: &Value) -> Outcome {
    match (status, answer["code"].as_str()) {
        (401, _) => Outcome::Unauthenticated,
        (400, Some("customer_id_required")) => Outcome::CustomerRequired,
        (403, Some("customer_token_forbidden")) => Outcome::TokenForbidden,
        (403, _) => panic!("an unexpected 403: {answer}"),
        _ => Outcome::Allowed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_answers_each_credential_as_documented() {
    let sim = simulator(1, 4).await;
    let dir = TempDir::new("credentials");
    let running = start(config(&sim, &dir)).await;
    let store = &running.app.store;
    let org = Api::new(&running, "one").await;
    let other = Api::new(&running, "two").await;
    // A customer whose data nobody else may see: its id must never appear
    // in another organisation's answers.
    let marker = "customer-of-one-3f9a";
    let owner = org.customer(marker);
    let source = owner.connect(&sim, true).await;
    owner.wait_ready(source).await;
    let hook = org
        .ok("/add_webhook", json!({"url": "http://127.0.0.1:9/hook"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let tokens = owner.get("/auth/v1/access_token").await.1;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let expired = "expired-token-for-the-walk";
    store
        .add_customer_token(
            &server::hash_secret(expired),
            &org.organisation_id,
            marker,
            "access",
            "2000-01-01T00:00:00.000Z",
            None,
        )
        .await
        .unwrap();

    let document = org.get("/openapi.json").await.1;
    let endpoints = server::openapi::endpoints();
    let kinds = [
        Kind::None,
        Kind::GarbageKey,
        Kind::GarbageToken,
        Kind::ExpiredToken,
        Kind::RefreshTokenAsAccess,
        Kind::KeyWithoutCustomer,
        Kind::KeyWithCustomer,
        Kind::OtherOrganisationKey,
        Kind::CustomerToken,
    ];
    let mut checked = 0;
    for endpoint in &endpoints {
        // The document declares what the table says.
        let security = &document["paths"][endpoint.path][endpoint.method]["security"];
        let declared = match endpoint.auth {
            Auth::Public => json!([]),
            Auth::Organisation => json!([{"apiKey": []}]),
            Auth::OrganisationForCustomer => json!([{"apiKey": [], "customerId": []}]),
            Auth::Customer => json!([{"apiKey": [], "customerId": []}, {"customerToken": []}]),
        };
        assert_eq!(*security, declared, "{} {}", endpoint.method, endpoint.path);
        for kind in kinds {
            let path = endpoint
                .path
                .replace("{webhook_id}", &hook.to_string())
                .replace("{file_id}", "1");
            let method =
                reqwest::Method::from_bytes(endpoint.method.to_uppercase().as_bytes()).unwrap();
            let mut request = org.http.request(method, format!("{}{path}", org.base));
            request = match kind {
                Kind::None => request,
                Kind::GarbageKey => request
                    .bearer_auth("csk_not_a_key")
                    .header("customer-id", marker),
                Kind::GarbageToken => request.header("authorization", "Token not-a-token"),
                Kind::ExpiredToken => request.header("authorization", format!("Token {expired}")),
                Kind::RefreshTokenAsAccess => {
                    request.header("authorization", format!("Token {refresh}"))
                }
                Kind::KeyWithoutCustomer => request.bearer_auth(&org.key),
                Kind::KeyWithCustomer => request
                    .bearer_auth(&org.key)
                    .header("customer-id", "walker"),
                // Another organisation's key (a customer of the same name
                // there is its own: isolation.rs tests that).
                Kind::OtherOrganisationKey => request
                    .bearer_auth(&other.key)
                    .header("customer-id", "intruder"),
                Kind::CustomerToken => request.header("authorization", format!("Token {access}")),
            };
            if endpoint.request.is_some() {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!("{} {path} as {kind:?}: not JSON: {text}", endpoint.method)
            });
            assert!(
                status < 500,
                "{} {path} as {kind:?}: {status} {answer}",
                endpoint.method
            );
            assert_eq!(
                observed(status, &answer),
                expected(endpoint.auth, kind),
                "{} {path} as {kind:?}: {status} {answer}",
                endpoint.method
            );
            if kind == Kind::OtherOrganisationKey && path != "/openapi.json" {
                assert!(
                    !text.contains(marker),
                    "{path} leaked another organisation's customer: {text}"
                );
            }
            checked += 1;
        }
    }
    // The walk is as wide as the document: nothing was skipped.
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(checked, operations * kinds.len());
    eprintln!("checked {checked} (operation, credential) pairs");
    running.stop().await;
}
