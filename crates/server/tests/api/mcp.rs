//! `/mcp`, as an AI agent reaches it with the official Python SDK (PyPI
//! `mcp`, unmodified): initialise, list tools, search, fetch, resources;
//! authenticated as the API is, and seeing what its viewer may read only.

use super::*;
use std::collections::BTreeSet;

/// Runs tests/clients/mcp_agent.py against /mcp with these headers.
fn agent(base: &str, headers: Value, query: &str, fetch: Option<&str>) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "run scripts/test, which installs .venv");
    let mut command = std::process::Command::new(python);
    command
        .arg(root.join("tests/clients/mcp_agent.py"))
        .arg("http")
        .arg(format!("{base}/mcp"))
        .arg(headers.to_string())
        .arg(query);
    if let Some(fetch) = fetch {
        command.arg(fetch);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mcp_agent.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_searches_and_fetches_over_mcp_as_its_viewer() {
    let sim = simulator(3, 80).await;
    let dir = TempDir::new("mcp");
    let running = start(config(&sim, &dir)).await;
    let org = Api::new(&running, "org").await;
    let api = org.customer("c");
    let source = api
        .connect_with(
            &sim,
            json!({"sync_files_on_connection": true, "enforce_permissions": true}),
        )
        .await;
    api.wait_ready(source).await;

    // The admin (every group) through the API key, and Eli (no group)
    // through a token minted for him.
    let (admin, admin_groups, eli) = sim.with_site(|s| {
        let admin = &s.users[0];
        let groups: Vec<String> = admin
            .groups
            .iter()
            .map(|g| s.groups[*g as usize].id.clone())
            .collect();
        let eli = s.users.iter().find(|u| u.groups.is_empty()).unwrap();
        (admin.account_id.clone(), groups, eli.account_id.clone())
    });
    let as_admin = json!({
        "authorization": format!("Bearer {}", org.key),
        "customer-id": "c",
        "confsync-viewer": json!({"confluence_account_id": admin, "confluence_groups": admin_groups}).to_string(),
    });
    let minted = api
        .ok(
            "/auth/v1/access_token",
            json!({"viewer": {"confluence_account_id": eli}}),
        )
        .await;
    let as_eli =
        json!({"authorization": format!("Token {}", minted["access_token"].as_str().unwrap())});

    let seen = agent(&api.base, as_admin.clone(), "the", Some("first"));
    assert_eq!(seen["server"], "confsync");
    assert_eq!(seen["tools"], json!(["fetch", "list_spaces", "search"]));
    let results = seen["results"].as_array().unwrap();
    assert!(results.len() > 5, "{seen}");
    let ids: BTreeSet<i64> = results.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), results.len(), "one result per page");
    let fetched = seen["fetch"]["text"].as_str().unwrap();
    assert_eq!(seen["fetch"]["error"], false, "{fetched}");
    assert!(
        fetched.starts_with(&format!("# {}", results[0]["title"].as_str().unwrap())),
        "{fetched}"
    );
    assert!(
        fetched.contains("- URL: ") && fetched.contains("- Last modified: "),
        "{fetched}"
    );
    assert!(!seen["resources"].as_array().unwrap().is_empty());

    // What Eli may read in Confluence, by external id.
    let readable: BTreeSet<String> = sim
        .truth_for(Some(&eli), &[])
        .into_iter()
        .map(|t| t.id)
        .collect();
    let store = &running.app.store;
    let external = |id: i64| async move {
        let file = store.file_content(id).await.unwrap().unwrap();
        (file.kind, file.external_id)
    };
    // A page the admin found that Eli may not read: the test can fail.
    let mut hidden = None;
    for id in &ids {
        let (kind, external_id) = external(*id).await;
        if matches!(kind.as_str(), "page" | "blogpost") && !readable.contains(&external_id) {
            hidden = Some(*id);
            break;
        }
    }
    let hidden = hidden.expect("the admin finds pages Eli may not read");
    let seen = agent(&api.base, as_eli.clone(), "the", Some(&hidden.to_string()));
    for result in seen["results"].as_array().unwrap() {
        let (kind, external_id) = external(result["id"].as_i64().unwrap()).await;
        if matches!(kind.as_str(), "page" | "blogpost") {
            assert!(
                readable.contains(&external_id),
                "Eli found {external_id}: {result}"
            );
        }
    }
    assert_eq!(
        seen["fetch"]["error"], true,
        "Eli fetched a page he may not read: {seen}"
    );
    assert!(!seen["fetch"]["text"].as_str().unwrap().contains("- URL:"));
    for uri in seen["resources"].as_array().unwrap() {
        let id: i64 = uri
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let (kind, external_id) = external(id).await;
        if matches!(kind.as_str(), "page" | "blogpost") {
            assert!(readable.contains(&external_id), "Eli lists {external_id}");
        }
    }

    // A token may not widen its viewer; no credentials get the API's 401.
    let mut widened = as_eli.clone();
    widened["confsync-viewer"] = json!(json!({"agent": true}).to_string());
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let mut request = http
        .post(format!("{}/mcp", api.base))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize);
    for (name, value) in widened.as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = http
        .post(format!("{}/mcp", api.base))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["code"].is_string(), "{answer}");
    running.stop().await;
}
