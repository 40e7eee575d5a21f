//! Every endpoint answers malformed JSON, wrong types, unknown ids,
//! oversized bodies and missing credentials with a 4xx JSON error: never a
//! 500, never a panic. The OpenAPI document matches the router, and
//! answers match the document's schemas.

use super::*;
use rand::{Rng, SeedableRng};

fn random_json(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
    let keys = [
        "data_source_id",
        "file_id",
        "ids",
        "k",
        "query",
        "filters",
        "pagination",
        "customer_ids",
        "service",
        "confluence_subdomain",
        "authentication",
        "url",
        "limit",
        "offset",
        "tags",
        "auto_sync_interval",
        "auto_sync_enabled_sources",
        "order_by",
        "order_dir",
        "viewer",
        "hybrid_search",
        "hybrid_search_tuning_parameters",
        "parent_id",
        "chunk_size",
        "credentials",
        "data_source_type",
        "query_vector",
        "sync_statuses",
        "name",
        "subdomain",
        "access_token",
    ];
    match if depth > 3 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..8)
    } {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen_range(-3i64..1_000_000_000_000)),
        3 => json!(rng.gen::<f64>() * 1e12 - 5e11),
        4 => json!(
            [
                "",
                "CONFLUENCE",
                "ALL",
                "\u{0}",
                "a\"b",
                "<script>",
                "acme",
                "💥",
                "desc",
                "id"
            ][rng.gen_range(0..10)]
        ),
        5 | 6 => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..6) {
                map.insert(
                    keys[rng.gen_range(0..keys.len())].into(),
                    random_json(rng, depth + 1),
                );
            }
            Value::Object(map)
        }
        _ => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
    }
}

/// A body (with its content type), the authorization header, and what the case is.
type Case<'a> = (Option<(String, &'a str)>, Option<String>, &'a str);

fn concrete(path: &str) -> String {
    path.replace("{webhook_id}", "12345")
        .replace("{file_id}", "987654")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_4xx_json() {
    let sim = simulator(1, 5).await;
    let dir = TempDir::new("malformed");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c1");
    // A data source and a file exist, so that lookups get past "no customer".
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    let client = &api.http;
    let base = running.url();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let big = "x".repeat(2 << 20);
    let mut checked = 0;
    for endpoint in server::openapi::endpoints() {
        if endpoint.path == "/integrations/confluence/oauth" {
            continue; // below, with query strings
        }
        let url = format!("{base}{}", concrete(endpoint.path));
        let method =
            reqwest::Method::from_bytes(endpoint.method.to_uppercase().as_bytes()).unwrap();
        let send = |body: Option<(String, &str)>, auth: Option<String>| {
            let mut request = client
                .request(method.clone(), &url)
                .header("customer-id", "c1");
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            if let Some((body, kind)) = body {
                request = request.header("content-type", kind).body(body);
            }
            request.send()
        };
        let key = Some(format!("Bearer {}", org.key));
        let mut cases: Vec<Case> = vec![
            (Some(("{".into(), "application/json")), key.clone(), "truncated JSON"),
            (Some(("{\"a\": 1} trailing".into(), "application/json")), key.clone(), "trailing garbage"),
            (Some(("[1, 2]".into(), "application/json")), key.clone(), "an array"),
            (Some(("\"text\"".into(), "application/json")), key.clone(), "a string"),
            (Some((json!({"data_source_id": "x", "file_id": [], "file_ids": "z", "k": "ten", "customer_ids": 5, "ids": "z",
                "pagination": 7, "query": 1, "url": false, "service": 3}).to_string(), "application/json")), key.clone(), "wrong types"),
            (Some((json!({"data_source_id": 987654, "file_id": 987654, "ids": [987654], "k": 3, "query": "q",
                "customer_ids": ["nobody"], "url": "http://127.0.0.1:9/x", "service": "CONFLUENCE"}).to_string(), "application/json")), key.clone(), "unknown ids"),
            (Some((big.clone(), "application/json")), key.clone(), "oversized"),
            (Some((r#"{"customer_id": "a\u0000b", "query": "q\u0000", "tags": {"k\u0000": 1}}"#.into(), "application/json")), key.clone(), "a NUL character"),
            (Some(("a=b".into(), "application/x-www-form-urlencoded")), key.clone(), "a form"),
            (Some(("{}".into(), "application/json")), None, "no credentials"),
            (Some(("{}".into(), "application/json")), Some("Bearer wrong".into()), "a wrong key"),
            (Some(("{}".into(), "application/json")), Some("Basic eDp5".into()), "another scheme"),
            (Some(("{}".into(), "application/json")), Some("Token nope".into()), "a wrong token"),
        ];
        for _ in 0..25 {
            cases.push((
                Some((random_json(&mut rng, 0).to_string(), "application/json")),
                key.clone(),
                "random JSON",
            ));
        }
        if endpoint.request.is_none() {
            // No body to malform: the credentials still must be right.
            cases.retain(|(_, auth, _)| auth != &key);
        }
        for (body, auth, what) in cases {
            let body_text = body
                .as_ref()
                .map(|(b, _)| b.chars().take(200).collect::<String>());
            let response = send(body, auth).await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let parsed: Result<Value, _> = serde_json::from_str(&text);
            assert!(
                parsed.is_ok(),
                "{} {}: {what}: not JSON: {text:.200}",
                endpoint.method,
                endpoint.path
            );
            // 2xx is fine where the input happens to be valid (random JSON
            // that is a valid empty query); 5xx never.
            assert!(
                status < 500,
                "{} {} {what} {body_text:?}: {status} {text:.300}",
                endpoint.method,
                endpoint.path
            );
            if what != "random JSON" && what != "unknown ids" {
                assert!(
                    (400..500).contains(&status),
                    "{} {} {what}: {status} {text:.300}",
                    endpoint.method,
                    endpoint.path
                );
                assert!(
                    parsed.unwrap()["detail"].is_string() || status == 422,
                    "{text}"
                );
            }
            checked += 1;
        }
    }
    // The callback with garbage.
    for query in [
        "",
        "?state=",
        "?state=a.b&code=c",
        "?code=x&state=%00%ff",
        "?error=access_denied",
        &format!("?state={}", "a".repeat(10_000)),
    ] {
        let (status, _) = answer(
            client
                .get(format!("{base}/integrations/confluence/oauth{query}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{query:.50}");
    }
    // Unknown paths and methods: JSON too.
    let (status, body) = answer(client.get(format!("{base}/nope")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = answer(
        client
            .get(format!("{base}/embeddings"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body) = org.delete("/delete_webhook/not-a-number").await;
    assert_eq!(status, 422, "{body}");
    assert!(checked > 500);
    // The server still serves.
    assert!(!api.all_files(json!({})).await.is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_matches_the_router_and_the_answers() {
    let sim = simulator(1, 8).await;
    let dir = TempDir::new("openapi");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c1");
    let (status, document) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let endpoints = server::openapi::endpoints();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, endpoints.len());
    // Every documented operation is routed (the fallback answers
    // "no such endpoint" / "method_not_allowed" otherwise).
    for endpoint in &endpoints {
        assert!(paths[endpoint.path][endpoint.method].is_object());
        let method =
            reqwest::Method::from_bytes(endpoint.method.to_uppercase().as_bytes()).unwrap();
        let response = api
            .http
            .request(
                method,
                format!("{}{}", running.url(), concrete(endpoint.path)),
            )
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert!(
            !(status == 404 && body["detail"] == "no such endpoint") && status != 405,
            "{} {} is documented but not routed",
            endpoint.method,
            endpoint.path
        );
    }
    // Carbon's names: the fields Carbon's document requires in its answers
    // are in ours (for the shapes confsync shares with it).
    let carbon = carbon_document();
    for (ours, theirs) in [
        ("DataSource", "OrganizationUserDataSourceAPI"),
        ("UserFile", "UserFile"),
        ("Item", "ExternalSourceItem"),
        ("Document", "DocumentResponse"),
        ("WebhookOut", "Webhook"),
        ("WebhookNoKey", "WebhookNoKey"),
        ("UserOut", "ListUserResponse"),
        ("TokenResponse", "TokenResponse"),
        ("ItemsListResponse", "ListDataSourceItemsResponse"),
        ("UserFilesResponse", "UserFilesV2"),
    ] {
        let our_fields = document["components"]["schemas"][ours]["properties"]
            .as_object()
            .unwrap();
        for field in carbon["components"]["schemas"][theirs]["required"]
            .as_array()
            .unwrap()
        {
            assert!(
                our_fields.contains_key(field.as_str().unwrap()),
                "{ours} lacks Carbon's {theirs}.{field}"
            );
        }
    }
    // Answers validate against the document.
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    let schema_of = |name: &str| {
        let mut root = json!({"components": document["components"].clone()});
        root["$ref"] = json!(format!("#/components/schemas/{name}"));
        jsonschema::validator_for(&root).unwrap()
    };
    for (path, body, schema) in [
        ("/user_files_v2", json!({}), "UserFilesResponse"),
        ("/user_data_sources", json!({}), "DataSourcesResponse"),
        (
            "/embeddings",
            json!({"query": "the", "k": 3}),
            "EmbeddingsResponse",
        ),
        (
            "/list_users",
            json!({"include_count": true}),
            "ListUsersResponse",
        ),
        ("/webhooks", json!({}), "WebhooksResponse"),
    ] {
        let answer = api.ok(path, body).await;
        let validator = schema_of(schema);
        let errors: Vec<String> = validator
            .iter_errors(&answer)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:?}");
    }
    running.stop().await;
}
