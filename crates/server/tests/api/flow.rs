//! The whole Carbon flow, as a customer's application drives it.

use super::*;
use confluence_sim::Change;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn carbon_flow_end_to_end() {
    let sim = simulator(3, 60).await;
    let dir = TempDir::new("flow");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "acme-app").await;
    let api = org.customer("customer-1");

    // Webhooks first; the receiver refuses the first delivery (a retry
    // must bring it).
    let (receiver, hook_url) = Receiver::start(1).await;
    let hook = org.ok("/add_webhook", json!({"url": hook_url})).await;
    let key = hook["signing_key"].as_str().unwrap().to_string();
    assert_eq!(org.ok("/webhooks", json!({})).await["count"], 1);

    // oauth_url: the consent URL on the (simulated) Atlassian, with a state.
    let (params, callback) = authorize(
        &api,
        &sim,
        json!({"service": "CONFLUENCE", "confluence_subdomain": "acme",
               "chunk_size": 400, "sync_files_on_connection": false}),
        "accept",
    )
    .await;
    assert_eq!(params["response_type"], "code");
    assert!(params["scope"].contains("offline_access"));
    assert!(callback.starts_with(&format!("{}/integrations/confluence/oauth?", running.url())));
    // The callback: no API key (it is the browser), the state says who.
    let (status, done) = answer(api.http.get(&callback).send().await.unwrap()).await;
    assert_eq!(status, 200, "{done}");
    let data_source_id = done["data_source_id"].as_i64().unwrap();
    // The same callback again: the state was single-use.
    let (status, replay) = answer(api.http.get(&callback).send().await.unwrap()).await;
    assert_eq!((status, replay["code"].as_str()), (400, Some("state_used")));

    let sources = api.ok("/user_data_sources", json!({})).await;
    assert_eq!(sources["count"], 1);
    let source = &sources["results"][0];
    assert_eq!(source["id"], data_source_id);
    assert_eq!(source["data_source_type"], "CONFLUENCE");
    assert_eq!(source["token"], Value::Null, "no secret in answers");
    assert_eq!(source["organization_supplied_user_id"], "customer-1");
    assert_eq!(source["data_source_metadata"]["chunk_size"], 400);
    // Nothing chosen yet: nothing synced.
    assert_eq!(api.all_files(json!({})).await.len(), 0);

    // items/sync (a queued listing), then browse: spaces at the top, pages
    // under them.
    api.list_items(data_source_id).await;
    let spaces = api
        .ok(
            "/integrations/items/list",
            json!({"data_source_id": data_source_id, "pagination": {"limit": 50}}),
        )
        .await;
    let space_items = spaces["items"].as_array().unwrap();
    assert!(!space_items.is_empty());
    assert!(space_items
        .iter()
        .all(|i| i["item_type"] == "SPACE" && i["parent_external_id"].is_null()));
    let space = space_items
        .iter()
        .find(|i| i["is_expandable"] == true)
        .expect("a space with pages");
    let space_key = space["external_id"].as_str().unwrap().to_string();
    // Walk the space's tree two items a page, to exercise pagination.
    let mut expected_pages = std::collections::BTreeSet::new();
    let mut queue = vec![space_key.clone()];
    while let Some(parent) = queue.pop() {
        let mut offset = 0;
        loop {
            let page = api
                .ok(
                    "/integrations/items/list",
                    json!({"data_source_id": data_source_id, "parent_id": parent,
                           "pagination": {"limit": 2, "offset": offset}}),
                )
                .await;
            let items = page["items"].as_array().unwrap();
            for item in items {
                assert_eq!(item["item_type"], "PAGE");
                assert_eq!(item["root_external_id"], space_key.as_str());
                expected_pages.insert(item["external_id"].as_str().unwrap().to_string());
                if item["is_expandable"] == true {
                    queue.push(item["external_id"].as_str().unwrap().to_string());
                }
            }
            offset += items.len();
            if offset as i64 >= page["count"].as_i64().unwrap() {
                break;
            }
        }
    }
    assert!(!expected_pages.is_empty());
    let first_title = sim.with_site(|site| {
        site.content
            .values()
            .find(|c| expected_pages.contains(&c.id.to_string()))
            .map(|c| c.title.clone())
            .unwrap()
    });
    let named = api
        .ok(
            "/integrations/items/list",
            json!({"data_source_id": data_source_id, "filters": {"name": first_title}}),
        )
        .await;
    assert!(named["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == first_title.as_str()));

    // files/sync the space; poll until READY.
    api.ok(
        "/integrations/files/sync",
        json!({"data_source_id": data_source_id, "ids": [space_key]}),
    )
    .await;
    let files = api.wait_ready(data_source_id).await;
    let pages: std::collections::BTreeSet<String> = files
        .iter()
        .filter(|f| f["file_metadata"]["kind"] == "page")
        .map(|f| f["external_file_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pages, expected_pages, "the space's pages, all READY");
    assert!(
        files
            .iter()
            .all(|f| f["chunk_size"] == 400
                && f["organization_user_data_source_id"] == data_source_id)
    );

    // embeddings: a page's title finds that page.
    let target = files
        .iter()
        .find(|f| {
            f["file_metadata"]["kind"] == "page"
                && f["file_statistics"]["num_embeddings"].as_i64() > Some(0)
        })
        .unwrap();
    let file_id = target["id"].as_i64().unwrap();
    let external_id = target["external_file_id"].as_str().unwrap().to_string();
    let title = target["name"].as_str().unwrap().to_string();
    let found = api.search(&format!("\"{title}\""), 5).await;
    assert!(
        found.iter().any(|d| d["file_id"] == file_id),
        "{title}: {found:?}"
    );
    let ids: std::collections::BTreeSet<i64> =
        files.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert!(found
        .iter()
        .all(|d| ids.contains(&d["file_id"].as_i64().unwrap())));
    assert!(found
        .iter()
        .all(|d| d["source_type"] == "CONFLUENCE" && d["rank"].as_i64() > Some(0)));

    // An edit on the site, then resync_file: the new words are found.
    sim.apply(Change::Edit {
        id: external_id.clone(),
        body: Some("<p>The quokka marmalade protocol replaces the old one.</p>".into()),
    })
    .unwrap();
    let resynced = api.ok("/resync_file", json!({"file_id": file_id})).await;
    assert_eq!(resynced["id"], file_id);
    let version_before = target["file_metadata"]["version"].as_i64().unwrap();
    let started = Instant::now();
    loop {
        let now = api.all_files(json!({"ids": [file_id]})).await;
        let file = &now[0];
        if file["sync_status"] == "READY"
            && file["file_metadata"]["version"].as_i64() > Some(version_before)
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{file}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = api.search("quokka marmalade", 3).await;
    assert_eq!(
        found.first().map(|d| d["file_id"].clone()),
        Some(json!(file_id)),
        "{found:?}"
    );

    // delete_files_v2: gone from the files and from search.
    api.ok(
        "/delete_files_v2",
        json!({"filters": {"ids": [file_id]}, "send_webhook": true}),
    )
    .await;
    assert_eq!(api.all_files(json!({"ids": [file_id]})).await.len(), 0);
    let started = Instant::now();
    while api
        .search("quokka marmalade", 3)
        .await
        .iter()
        .any(|d| d["file_id"] == file_id)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "deleted file still found"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Webhooks for each step, signatures verified; the refused first
    // delivery came again.
    let want = [
        "ADD",
        "UPDATE",
        "FILES_CREATED",
        "FILE_READY",
        "DATA_SOURCE_READY",
        "FILE_SYNCING",
        "FILE_DELETED",
    ];
    let events = receiver
        .wait_for(&key, |events| {
            want.iter().all(|w| events.iter().any(|(t, _)| t == w))
        })
        .await;
    let created: Vec<i64> = events
        .iter()
        .filter(|(t, _)| t == "FILES_CREATED")
        .flat_map(|(_, p)| {
            p["object"]["object_id"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
        })
        .collect();
    assert!(
        ids.iter().all(|id| created.contains(id)),
        "every file announced as created"
    );
    assert!(events
        .iter()
        .any(|(t, p)| t == "FILE_SYNCING" && p["object"]["object_id"] == file_id));
    assert!(events
        .iter()
        .any(|(t, p)| t == "FILE_DELETED" && p["object"]["object_id"] == file_id));
    assert!(events.iter().all(|(_, p)| p["customer_id"] == "customer-1"));
    let received = receiver.received.lock().clone();
    let refused = received
        .iter()
        .find(|(_, _, status)| *status == 500)
        .unwrap()
        .1
        .clone();
    assert!(
        received
            .iter()
            .any(|(_, body, status)| *status == 200 && *body == refused),
        "the refused delivery was retried"
    );
    running.stop().await;
}
