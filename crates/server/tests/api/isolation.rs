//! Tenants: customer A cannot read, list, resync, delete or search
//! customer B's data, even by guessing ids; one organisation cannot reach
//! another's.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customers_and_organisations_are_kept_apart() {
    let sim = simulator(2, 24).await;
    let dir = TempDir::new("isolation");
    let running = start(config(&sim, &dir)).await;
    let org1 = Api::new(&running, "one").await;
    let org2 = Api::new(&running, "two").await;
    let a = org1.customer("alice");
    let b = org1.customer("bob");
    // Another organisation's customer with the same customer id.
    let a2 = org2.customer("alice");

    let source_a = a.connect(&sim, true).await;
    let source_b = b.connect(&sim, true).await;
    let files_a = a.wait_ready(source_a).await;
    let files_b = b.wait_ready(source_b).await;
    assert!(!files_a.is_empty());
    assert_eq!(files_a.len(), files_b.len(), "the same site, synced twice");
    let ids_a: Vec<i64> = files_a.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    let ids_b: Vec<i64> = files_b.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert!(ids_a.iter().all(|id| !ids_b.contains(id)));
    let hook_1 = org1
        .ok("/add_webhook", json!({"url": "http://127.0.0.1:9/hook"}))
        .await["id"]
        .clone();
    let label_1 = org1
        .ok(
            "/white_label/create",
            json!([{"data_source_type": "CONFLUENCE", "credentials": {"client_id": "mine", "redirect_uri": "https://app.example.com/cb", "client_secret": "s3cret"}}]),
        )
        .await["results"][0]["id"]
        .clone();

    // Listing: each sees its own.
    assert_eq!(b.all_files(json!({})).await.len(), files_b.len());
    assert_eq!(a2.all_files(json!({})).await.len(), 0);
    assert_eq!(a2.ok("/user_data_sources", json!({})).await["count"], 0);
    assert_eq!(b.ok("/user_data_sources", json!({})).await["count"], 1);
    // By id: someone else's ids match nothing.
    for who in [&b, &a2] {
        assert_eq!(who.all_files(json!({"ids": ids_a})).await.len(), 0);
        assert_eq!(
            who.all_files(json!({"organization_user_data_source_id": [source_a]}))
                .await
                .len(),
            0
        );
        let (status, _) = who
            .post(
                "/user_data_sources",
                json!({"filters": {"ids": [source_a]}}),
            )
            .await;
        assert_eq!(status, 200);
        for (path, body) in [
            (
                "/integrations/items/sync",
                json!({"data_source_id": source_a}),
            ),
            (
                "/integrations/items/list",
                json!({"data_source_id": source_a}),
            ),
            (
                "/integrations/files/sync",
                json!({"data_source_id": source_a, "ids": ["1"]}),
            ),
            ("/revoke_access_token", json!({"data_source_id": source_a})),
            ("/resync_file", json!({"file_id": ids_a[0]})),
            (
                "/integrations/oauth_url",
                json!({"service": "CONFLUENCE", "confluence_subdomain": "acme", "data_source_id": source_a}),
            ),
        ] {
            let (status, answer) = who.post(path, body).await;
            assert_eq!(status, 404, "{path}: {answer}");
            assert_eq!(answer["code"], "not_found");
        }
        // Deleting someone else's files deletes nothing.
        who.ok("/delete_files_v2", json!({"filters": {"ids": ids_a}}))
            .await;
        who.ok(
            "/delete_files_v2",
            json!({"filters": {"organization_user_data_source_id": [source_a]}}),
        )
        .await;
        // Searching: never another's chunks, even naming their files.
        let title = files_a[0]["name"].as_str().unwrap();
        let found = who
            .ok(
                "/embeddings",
                json!({"query": title, "k": 50, "file_ids": ids_a}),
            )
            .await;
        assert_eq!(found["documents"].as_array().unwrap().len(), 0);
        let found = who.ok("/embeddings", json!({"query": title, "k": 50, "parent_file_ids": ids_a, "include_all_children": true})).await;
        assert_eq!(found["documents"].as_array().unwrap().len(), 0);
        let found = who.search(title, 50).await;
        assert!(found
            .iter()
            .all(|d| !ids_a.contains(&d["file_id"].as_i64().unwrap())));
    }
    assert_eq!(
        a.all_files(json!({})).await.len(),
        files_a.len(),
        "nothing of alice's was deleted"
    );
    assert!(!a
        .search(files_a[0]["name"].as_str().unwrap(), 5)
        .await
        .is_empty());
    assert_eq!(
        a.ok("/user_data_sources", json!({})).await["results"][0]["revoked_access"],
        false
    );

    // The organisation's own settings: webhooks, white labels, users.
    assert_eq!(org2.ok("/webhooks", json!({})).await["count"], 0);
    let (status, _) = org2.delete(&format!("/delete_webhook/{hook_1}")).await;
    assert_eq!(status, 404);
    assert_eq!(org1.ok("/webhooks", json!({})).await["count"], 1);
    assert_eq!(org2.ok("/white_label/list", json!({})).await["count"], 0);
    let (status, _) = org2
        .post("/white_label/delete", json!({"ids": [label_1]}))
        .await;
    assert_eq!(status, 404);
    let listed = org1.ok("/white_label/list", json!({})).await;
    assert_eq!(listed["count"], 1);
    assert!(
        !listed.to_string().contains("s3cret"),
        "a secret never comes back"
    );
    assert_eq!(
        org2.ok("/list_users", json!({"include_count": true})).await["count"],
        0
    );
    // Deleting org2's "alice" (it has none) leaves org1's alice whole.
    org2.ok("/delete_users", json!({"customer_ids": ["alice"]}))
        .await;
    assert_eq!(a.all_files(json!({})).await.len(), files_a.len());

    // A customer token speaks for one customer only: a customer-id header
    // cannot widen it.
    let tokens = b.get("/auth/v1/access_token").await.1;
    let token = tokens["access_token"].as_str().unwrap();
    let as_token = |path: &str, body: Value| {
        org1.http
            .post(format!("{}{path}", org1.base))
            .header("authorization", format!("Token {token}"))
            .header("customer-id", "alice")
            .json(&body)
            .send()
    };
    let (status, seen) = answer(
        as_token("/user_files_v2", json!({"pagination": {"limit": 250}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen["count"].as_i64().unwrap() as usize, files_b.len());
    assert!(seen["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| ids_b.contains(&f["id"].as_i64().unwrap())));
    // A refresh token is not an access token.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let response = org1
        .http
        .post(format!("{}/user_files_v2", org1.base))
        .header("authorization", format!("Token {refresh}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Deleting bob removes his files from search; alice keeps hers.
    org1.ok("/delete_users", json!({"customer_ids": ["bob"]}))
        .await;
    assert_eq!(b.all_files(json!({})).await.len(), 0);
    let started = Instant::now();
    loop {
        let stale = running
            .app
            .index
            .search(
                &running.app.store,
                &index::SearchRequest {
                    organisation_id: running
                        .app
                        .store
                        .caller_by_key(&server::hash_secret(&org1.key), None)
                        .await
                        .unwrap()
                        .unwrap()
                        .0
                        .id,
                    query: files_b[0]["name"].as_str().unwrap().into(),
                    k: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .iter()
            .any(|hit| ids_b.contains(&hit.file_id));
        if !stale {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "bob's chunks still indexed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.all_files(json!({})).await.len(), files_a.len());
    running.stop().await;
}
