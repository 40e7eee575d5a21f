//! Content out without search (presigned links to a file's Markdown and
//! raw body, its chunks) and Carbon's published schema for what confsync
//! answers, with every kind of file the simulator makes: pages, blog
//! posts, comments and attachments of every media type.

use super::*;

/// A validator for one of Carbon's component schemas.
fn carbon_validator(name: &str) -> jsonschema::Validator {
    within_carbon(
        &carbon_document(),
        json!({"$ref": format!("#/components/schemas/{name}")}),
    )
}

/// A schema of Carbon's document, compiled with the document's
/// components beside it (its `$ref`s point there).
fn within_carbon(carbon: &Value, schema: Value) -> jsonschema::Validator {
    let mut schema = schema;
    if let Some(object) = schema.as_object_mut() {
        object.insert("components".into(), carbon["components"].clone());
    } else {
        schema = json!({"allOf": [schema], "components": carbon["components"]});
    }
    jsonschema::options()
        .should_validate_formats(false)
        .build(&schema)
        .unwrap()
}

fn conforms(validator: &jsonschema::Validator, name: &str, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "not Carbon's {name}: {errors:?}\n{value:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_links_chunks_and_carbons_schema() {
    let sim = simulator(3, 60).await;
    let dir = TempDir::new("content");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("reader");
    let before_sync = chrono::Utc::now().to_rfc3339();
    let source = api.connect(&sim, true).await;
    api.wait_ready(source).await;
    let files = api.all_files(json!({})).await;
    // Confluence's creation dates: attachments carry theirs, comments
    // their first version's (later versions say nothing of creation).
    for file in &files {
        let kind = file["file_metadata"]["kind"].as_str().unwrap();
        let first = file["file_metadata"]["version"] == 1;
        if kind == "attachment" || (kind == "comment" && first) {
            let created = file["created_at"].as_str().unwrap();
            assert!(created < before_sync.as_str(), "{kind} created {created}");
        }
    }

    // Every file, of every kind and media type, is Carbon's UserFile with
    // a file_format from Carbon's list.
    let user_file = carbon_validator("UserFile");
    let mut kinds = std::collections::BTreeMap::new();
    for file in &files {
        conforms(&user_file, "UserFile", file);
        let kind = file["file_metadata"]["kind"].as_str().unwrap().to_string();
        let format = file["file_statistics"]["file_format"].clone();
        kinds
            .entry(kind.clone())
            .or_insert_with(Vec::new)
            .push(file.clone());
        if kind == "attachment" {
            let media = file["file_metadata"]["media_type"].as_str().unwrap();
            let expected = match media {
                "text/plain" => "TXT",
                "text/markdown" => "MD",
                "text/csv" => "CSV",
                "text/html" => "HTML",
                "application/pdf" => "PDF",
                "image/png" => "PNG",
                _ => "DOCX",
            };
            assert_eq!(format, expected, "{media}");
        } else {
            assert_eq!(format, "CONFLUENCE", "{kind}");
        }
    }
    for kind in ["page", "blogpost", "comment", "attachment"] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} synced: {:?}",
            kinds.keys()
        );
    }
    let page = &kinds["page"][0];
    let page_id = page["id"].as_i64().unwrap();
    conforms(
        &carbon_validator("UserFilesV2"),
        "UserFilesV2",
        &api.ok("/user_files_v2", json!({"pagination": {"limit": 5}}))
            .await,
    );
    let sources = api.ok("/user_data_sources", json!({})).await;
    for source in sources["results"].as_array().unwrap() {
        conforms(
            &carbon_validator("OrganizationUserDataSourceAPI"),
            "OrganizationUserDataSourceAPI",
            source,
        );
    }

    // The Markdown, through a link that needs no credentials; the store's
    // own, as a sandboxed download.
    let presigned = carbon_validator("PresignedURLResponse");
    let (status, link) = api.get(&format!("/parsed_file/{page_id}")).await;
    assert_eq!(status, 200, "{link}");
    conforms(&presigned, "PresignedURLResponse", &link);
    let url = link["presigned_url"].as_str().unwrap().to_string();
    let plain = reqwest::Client::new();
    let got = plain.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let headers = got.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    let stored = running
        .app
        .store
        .file_content(page_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.text().await.unwrap(), stored.markdown.clone().unwrap());

    // The raw body: the storage format as synced.
    let raw = api.get(&format!("/raw_file/{page_id}")).await.1;
    let raw_url = raw["presigned_url"].as_str().unwrap();
    let body = plain
        .get(raw_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, stored.body.unwrap());

    // An attachment's bytes, fetched from Confluence: its size is the one
    // Confluence gives; its text is the parsed part.
    for attachment in &kinds["attachment"] {
        let id = attachment["id"].as_i64().unwrap();
        let raw = api.get(&format!("/raw_file/{id}")).await.1;
        let got = plain
            .get(raw["presigned_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(
            got.headers()["content-type"],
            attachment["file_metadata"]["media_type"].as_str().unwrap()
        );
        let bytes = got.bytes().await.unwrap();
        assert_eq!(
            bytes.len() as i64,
            attachment["file_statistics"]["file_size"].as_i64().unwrap(),
            "{}",
            attachment["name"]
        );
    }

    // A link altered in any part is refused; so is one without signature.
    for bad in [
        url.replace("/parsed?", "/raw?"),
        url.replace(&format!("/{page_id}/"), &format!("/{}/", page_id + 1)),
        url.replace("expires=", "expires=1"),
        url.split('?').next().unwrap().to_string(),
    ] {
        let (status, body) = answer(plain.get(&bad).send().await.unwrap()).await;
        assert_eq!(status, 403, "{bad}: {body}");
        assert_eq!(body["code"], "link_invalid");
    }

    // Another customer cannot have a link to this file.
    let other = org.customer("someone-else");
    assert_eq!(other.get(&format!("/parsed_file/{page_id}")).await.0, 404);
    assert_eq!(
        other
            .post(
                "/text_chunks",
                json!({"filters": {"user_file_id": page_id}})
            )
            .await
            .0,
        404
    );

    // Chunks: one file's, in order, paginated, vectors only when asked.
    let chunks_schema = carbon_validator("EmbeddingsAndChunksResponse");
    let all = api
        .ok(
            "/text_chunks",
            json!({"filters": {"user_file_id": page_id}, "pagination": {"limit": 100}}),
        )
        .await;
    conforms(&chunks_schema, "EmbeddingsAndChunksResponse", &all);
    let count = all["count"].as_i64().unwrap();
    assert_eq!(
        count,
        page["file_statistics"]["num_embeddings"].as_i64().unwrap()
    );
    assert!(count > 0);
    let indexes: Vec<i64> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chunk_index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, (0..count).collect::<Vec<_>>());
    assert!(all["results"][0]["embedding"].is_null());
    let second = api
        .ok(
            "/text_chunks",
            json!({"filters": {"user_file_id": page_id}, "pagination": {"limit": 1, "offset": 1}}),
        )
        .await;
    if count > 1 {
        assert_eq!(second["results"][0], all["results"][1]);
    }

    // Several files' chunks by user_files_v2's filters.
    let two: Vec<i64> = files
        .iter()
        .take(2)
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    let listed = api
        .ok(
            "/list_chunks_and_embeddings",
            json!({"filters": {"ids": two}, "pagination": {"limit": 250}, "include_vectors": true}),
        )
        .await;
    conforms(&chunks_schema, "EmbeddingsAndChunksResponse", &listed);
    let expected: i64 = files
        .iter()
        .take(2)
        .map(|f| f["file_statistics"]["num_embeddings"].as_i64().unwrap())
        .sum();
    assert_eq!(listed["count"], expected);
    assert!(listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| two.contains(&c["user_file_id"].as_i64().unwrap())));
    // A list given empty names no file.
    let none = api
        .ok(
            "/list_chunks_and_embeddings",
            json!({"filters": {"ids": []}}),
        )
        .await;
    assert_eq!(none["count"], 0);

    // Carbon's older and secondary endpoints, on the same operations.
    // The v1 listing: v2's files as a bare list.
    let v1 = api
        .ok(
            "/user_files",
            json!({"pagination": {"limit": 5}, "order_by": "id"}),
        )
        .await;
    let v2 = api
        .ok(
            "/user_files_v2",
            json!({"pagination": {"limit": 5}, "order_by": "id"}),
        )
        .await;
    assert_eq!(v1, v2["results"]);
    // Tags on a file: added (a key again takes the new value), found by
    // user_files_v2's tag filter, removed by key.
    let tagged = api
        .ok(
            "/create_user_file_tags",
            json!({"organization_user_file_id": page_id, "tags": {"team": "eng", "tier": 1}}),
        )
        .await;
    conforms(&user_file, "UserFile", &tagged);
    assert_eq!(tagged["tags"]["team"], "eng");
    let found = api
        .ok(
            "/user_files_v2",
            json!({"filters": {"tags": {"team": "eng"}}}),
        )
        .await;
    assert_eq!(found["count"], 1);
    assert_eq!(found["results"][0]["id"], page_id);
    // The listing reads the file's tags back as they were set.
    assert_eq!(
        found["results"][0]["tags"],
        json!({"team": "eng", "tier": 1})
    );
    let untagged = api
        .ok(
            "/delete_user_file_tags",
            json!({"organization_user_file_id": page_id, "tags": ["team"]}),
        )
        .await;
    assert!(untagged["tags"].get("team").is_none()); // A list-valued tag matches any of its elements; a number its like.
    api.ok(
        "/create_user_file_tags",
        json!({"organization_user_file_id": page_id, "tags": {"topics": ["alpha", "beta"]}}),
    )
    .await;
    for (filter, found) in [
        (json!({"topics": "beta"}), 1),
        (json!({"topics": ["gamma", "alpha"]}), 1),
        (json!({"topics": "delta"}), 0),
        (json!({"tier": 1}), 1),
        (json!({"tier": "1"}), 0),
    ] {
        let answer = api
            .ok("/user_files_v2", json!({"filters": {"tags": filter}}))
            .await;
        assert_eq!(answer["count"], found, "{filter}");
    }

    assert_eq!(untagged["tags"]["tier"], 1);
    assert_eq!(
        other
            .post(
                "/create_user_file_tags",
                json!({"organization_user_file_id": page_id, "tags": {"x": "y"}}),
            )
            .await
            .0,
        404
    );
    // Tags on the data source.
    let source_schema = carbon_validator("OrganizationUserDataSourceAPI");
    let added = api
        .ok(
            "/data_sources/tags/add",
            json!({"data_source_id": source, "tags": {"env": "prod", "team": "eng"}}),
        )
        .await;
    conforms(&source_schema, "OrganizationUserDataSourceAPI", &added);
    assert_eq!(added["tags"], json!({"env": "prod", "team": "eng"}));
    let removed = api
        .ok(
            "/data_sources/tags/remove",
            json!({"data_source_id": source, "tags_to_remove": ["env"]}),
        )
        .await;
    assert_eq!(removed["tags"], json!({"team": "eng"}));
    let cleared = api
        .ok(
            "/data_sources/tags/remove",
            json!({"data_source_id": source, "remove_all_tags": true}),
        )
        .await;
    assert_eq!(cleared["tags"], json!({}));
    // The deprecated listing: the spaces, then a space's children.
    let list_schema = carbon_validator("ListResponse");
    let spaces = api
        .ok(
            "/integrations/confluence/list",
            json!({"data_source_id": source}),
        )
        .await;
    conforms(&list_schema, "ListResponse", &spaces);
    let space = spaces["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["has_children"] == true)
        .expect("a space with pages")
        .clone();
    let children = api
        .ok(
            "/integrations/confluence/list",
            json!({"data_source_id": source, "parent_id": space["id"]}),
        )
        .await;
    conforms(&list_schema, "ListResponse", &children);
    assert!(!children["data"].as_array().unwrap().is_empty());
    // The deprecated sync: files/sync under its older name.
    assert_eq!(
        api.ok(
            "/integrations/confluence/sync",
            json!({"data_source_id": source, "ids": [space["id"]]}),
        )
        .await["success"],
        true
    );
    // files/sync's tags land on the chosen space's files, once synced.
    api.ok(
        "/integrations/files/sync",
        json!({"data_source_id": source, "ids": [space["id"]], "tags": {"project": "atlas"}}),
    )
    .await;
    api.wait_ready(source).await;
    let atlas = api.all_files(json!({"tags": {"project": "atlas"}})).await;
    assert!(!atlas.is_empty(), "the space's files carry the tags");
    assert!(atlas.len() < files.len(), "only the space's files");
    assert!(atlas.iter().all(|f| f["tags"]["project"] == "atlas"));
    // A chosen page's tags: on the page (and its subtree).
    let chosen_page = kinds["page"][0]["external_file_id"].clone();
    api.ok(
        "/integrations/files/sync",
        json!({"data_source_id": source, "ids": [chosen_page], "tags": {"picked": true}}),
    )
    .await;
    api.wait_ready(source).await;
    let picked = api.all_files(json!({"tags": {"picked": true}})).await;
    assert!(
        picked.iter().any(|f| f["external_file_id"] == chosen_page),
        "{picked:?}"
    );
    assert!(picked.len() < files.len());

    // The older delete: one that names nothing deletes nothing; by id.
    let doomed = kinds["blogpost"][0]["id"].as_i64().unwrap();
    let before = api.ok("/user_files_v2", json!({})).await["count"].clone();
    assert_eq!(api.ok("/delete_files", json!({})).await["success"], true);
    assert_eq!(api.ok("/user_files_v2", json!({})).await["count"], before);
    assert_eq!(
        api.ok("/delete_files", json!({"file_ids": [doomed]})).await["success"],
        true
    );
    let left = api
        .ok("/user_files_v2", json!({"filters": {"ids": [doomed]}}))
        .await;
    assert_eq!(left["count"], 0);
    running.stop().await;
}

/// Every operation confsync shares with Carbon, called with a valid
/// request: the answer is valid by Carbon's published response schema for
/// that operation. An operation added to the table without an example here
/// fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_carbons() {
    let carbon = carbon_document();
    let sim = simulator(2, 30).await;
    let dir = TempDir::new("carbon-answers");
    let mut config = config(&sim, &dir);
    config.webhooks.allow_private_targets = true;
    let running = start(config).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c1");
    let creds = sim.credentials();
    let (_receiver, hook_url) = Receiver::start(0).await;

    let mut checked: Vec<(String, String)> = Vec::new();
    let mut call =
        |method: &'static str, path: String, template: &'static str, body: Option<Value>| {
            checked.push((method.to_string(), template.to_string()));
            let api = &api;
            let carbon = &carbon;
            async move {
                let (status, answer) = match (method, body) {
                    ("get", _) => api.get(&path).await,
                    ("delete", _) => api.delete(&path).await,
                    (_, body) => api.post(&path, body.unwrap_or(json!({}))).await,
                };
                assert!(
                    (200..300).contains(&status),
                    "{method} {path}: {status} {answer}"
                );
                let schema = carbon["paths"][template][method]["responses"]["200"]["content"]
                    ["application/json"]["schema"]
                    .clone();
                let validator = within_carbon(carbon, schema);
                conforms(&validator, &format!("{method} {template}"), &answer);
                answer
            }
        };

    // Connect (an API token), and wait for the files.
    let connected = call(
        "post",
        "/integrations/connect".into(),
        "/integrations/connect",
        Some(
            json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
            "username": creds.email, "access_token": creds.api_token},
            "sync_options": {"sync_files_on_connection": true}}),
        ),
    )
    .await;
    let source = connected["data_source"]["id"].as_i64().unwrap();
    let files = api.wait_ready(source).await;
    let file = files[0]["id"].as_i64().unwrap();
    let (doomed_v1, doomed_v2) = (
        files[1]["id"].as_i64().unwrap(),
        files[2]["id"].as_i64().unwrap(),
    );
    api.list_items(source).await;
    let items = api
        .ok(
            "/integrations/items/list",
            json!({"data_source_id": source}),
        )
        .await;
    let space = items["items"][0]["external_id"].clone();
    assert!(space.is_string(), "{items}");

    call(
        "get",
        "/auth/v1/access_token".into(),
        "/auth/v1/access_token",
        None,
    )
    .await;
    call("get", "/whoami".into(), "/whoami", None).await;
    call(
        "get",
        "/auth/v1/white_labeling".into(),
        "/auth/v1/white_labeling",
        None,
    )
    .await;
    call(
        "post",
        "/integrations/oauth_url".into(),
        "/integrations/oauth_url",
        Some(json!({"service": "CONFLUENCE", "confluence_subdomain": "acme"})),
    )
    .await;
    let source_body = Some(json!({"data_source_id": source}));
    call(
        "post",
        "/integrations/items/list".into(),
        "/integrations/items/list",
        source_body.clone(),
    )
    .await;
    call(
        "post",
        "/integrations/confluence/list".into(),
        "/integrations/confluence/list",
        source_body.clone(),
    )
    .await;
    call(
        "post",
        "/user_data_sources".into(),
        "/user_data_sources",
        None,
    )
    .await;
    call("post", "/user_files_v2".into(), "/user_files_v2", None).await;
    call("post", "/user_files".into(), "/user_files", None).await;
    call(
        "post",
        "/create_user_file_tags".into(),
        "/create_user_file_tags",
        Some(json!({"organization_user_file_id": file, "tags": {"team": "eng"}})),
    )
    .await;
    call(
        "post",
        "/delete_user_file_tags".into(),
        "/delete_user_file_tags",
        Some(json!({"organization_user_file_id": file, "tags": ["team"]})),
    )
    .await;
    call(
        "post",
        "/data_sources/tags/add".into(),
        "/data_sources/tags/add",
        Some(json!({"data_source_id": source, "tags": {"env": "prod"}})),
    )
    .await;
    call(
        "post",
        "/data_sources/tags/remove".into(),
        "/data_sources/tags/remove",
        Some(json!({"data_source_id": source, "remove_all_tags": true})),
    )
    .await;
    call(
        "get",
        format!("/parsed_file/{file}"),
        "/parsed_file/{file_id}",
        None,
    )
    .await;
    call(
        "get",
        format!("/raw_file/{file}"),
        "/raw_file/{file_id}",
        None,
    )
    .await;
    call(
        "post",
        "/text_chunks".into(),
        "/text_chunks",
        Some(json!({"filters": {"user_file_id": file}})),
    )
    .await;
    call(
        "post",
        "/list_chunks_and_embeddings".into(),
        "/list_chunks_and_embeddings",
        Some(json!({"filters": {"ids": [file]}})),
    )
    .await;
    call(
        "post",
        "/embeddings".into(),
        "/embeddings",
        Some(json!({"query": "the", "k": 3})),
    )
    .await;
    call(
        "post",
        "/update_users".into(),
        "/update_users",
        Some(json!({"customer_ids": ["c1"], "auto_sync_enabled_sources": ["CONFLUENCE"]})),
    )
    .await;
    call("post", "/list_users".into(), "/list_users", None).await;
    let hook = call(
        "post",
        "/add_webhook".into(),
        "/add_webhook",
        Some(json!({"url": hook_url})),
    )
    .await;
    call("post", "/webhooks".into(), "/webhooks", None).await;
    call(
        "delete",
        format!("/delete_webhook/{}", hook["id"]),
        "/delete_webhook/{webhook_id}",
        None,
    )
    .await;
    call(
        "post",
        "/resync_file".into(),
        "/resync_file",
        Some(json!({"file_id": file})),
    )
    .await;
    call(
        "post",
        "/integrations/files/sync".into(),
        "/integrations/files/sync",
        Some(json!({"data_source_id": source, "ids": [space]})),
    )
    .await;
    call(
        "post",
        "/integrations/confluence/sync".into(),
        "/integrations/confluence/sync",
        Some(json!({"data_source_id": source, "ids": [space]})),
    )
    .await;
    call(
        "post",
        "/integrations/items/sync".into(),
        "/integrations/items/sync",
        source_body.clone(),
    )
    .await;
    call(
        "post",
        "/integrations/items/sync/cancel".into(),
        "/integrations/items/sync/cancel",
        source_body.clone(),
    )
    .await;
    call(
        "post",
        "/delete_files".into(),
        "/delete_files",
        Some(json!({"file_ids": [doomed_v1]})),
    )
    .await;
    call(
        "post",
        "/delete_files_v2".into(),
        "/delete_files_v2",
        Some(json!({"filters": {"ids": [doomed_v2]}})),
    )
    .await;
    call(
        "post",
        "/revoke_access_token".into(),
        "/revoke_access_token",
        source_body,
    )
    .await;
    call(
        "post",
        "/delete_users".into(),
        "/delete_users",
        Some(json!({"customer_ids": ["c1"]})),
    )
    .await;

    // The white label operations: Carbon documents no shape (`{}`), but
    // its Go SDK decodes each answer as an object.
    let label = json!({"data_source_type": "CONFLUENCE", "credentials": {"client_id": "own-app",
        "redirect_uri": "https://app.example.com/cb", "client_secret": "s"}});
    let created = org.ok("/white_label/create", json!([label.clone()])).await;
    let id = created["results"][0]["id"].clone();
    for (path, body) in [
        ("/white_label/list", json!({})),
        ("/white_label/update", label),
        ("/white_label/delete", json!({"ids": [id]})),
    ] {
        let answer = org.ok(path, body).await;
        assert!(answer.is_object(), "{path}: {answer}");
    }
    assert!(created.is_object());

    // Every operation Carbon documents with a response schema that says
    // something was called here.
    for endpoint in server::openapi::endpoints() {
        let schema = &carbon["paths"][endpoint.path][endpoint.method]["responses"]["200"]
            ["content"]["application/json"]["schema"];
        let documented = schema.as_object().is_some_and(|o| !o.is_empty());
        if documented && endpoint.path != "/integrations/confluence/oauth" {
            assert!(
                checked.contains(&(endpoint.method.to_string(), endpoint.path.to_string())),
                "{} {} is Carbon's but not checked here",
                endpoint.method,
                endpoint.path
            );
        }
    }
    running.stop().await;
}

/// Issue 16: Carbon's `file_sync_config.sync_attachments` chooses whether
/// a data source syncs attachments, at connect and again with files/sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_sync_config_chooses_whether_attachments_sync() {
    let sim = simulator(3, 60).await;
    let dir = TempDir::new("kinds");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("pages-only");
    let source = api
        .connect_with(
            &sim,
            json!({"sync_files_on_connection": true,
                "file_sync_config": {"sync_attachments": false, "split_rows": true}}),
        )
        .await;
    let kinds = |files: &[Value]| -> std::collections::BTreeSet<String> {
        files
            .iter()
            .map(|f| f["file_metadata"]["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let files = api.wait_ready(source).await;
    let without = kinds(&files);
    assert!(
        without.contains("page") && without.contains("comment"),
        "{without:?}"
    );
    assert!(!without.contains("attachment"), "{without:?}");
    assert!(
        !sim.stats()
            .operations
            .contains_key("GET /wiki/api/v2/attachments"),
        "attachments were listed"
    );

    // Chosen again with attachments: they come.
    let space = sim.with_site(|s| s.spaces.values().next().unwrap().key.clone());
    api.ok(
        "/integrations/files/sync",
        json!({"data_source_id": source, "ids": [space],
            "file_sync_config": {"sync_attachments": true}}),
    )
    .await;
    let started = std::time::Instant::now();
    loop {
        let files = api.wait_ready(source).await;
        if kinds(&files).contains("attachment") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no attachments came"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connection = api.connection(&running, source).await;
    assert_eq!(
        connection.content_kinds,
        "pages,blogposts,comments,attachments"
    );
}
