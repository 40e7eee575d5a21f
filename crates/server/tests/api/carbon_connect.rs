//! Carbon Connect, Carbon's own file picker, unmodified, as a developer
//! embeds it: a host page on one origin (bundled from the pinned npm
//! package by `tests/clients/js/carbon.mjs`), confsync on another, Debian's
//! Chromium driven by Playwright through the whole Confluence flow against
//! the simulator. Afterwards the store is checked for what the browser did.

use super::browser::{chromium, shots_dir, Script};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbon_connect_is_the_file_picker() {
    let chromium = chromium();
    let sim = simulator(6, 240).await;
    let dir = TempDir::new("carbon-connect");
    let shots = shots_dir("CARBON_SCREENSHOTS", dir.0.join("shots"));
    let mut script = Script::start("carbon.mjs", &[]);

    // The host page's origin, which confsync must allow.
    let ask = script
        .next_ask()
        .await
        .expect("the script asks for its plan");
    let origin = ask
        .strip_prefix("origin ")
        .expect("the first question is the origin")
        .to_string();
    let mut config = config(&sim, &dir);
    config.cors.allowed_origins = vec![origin];
    let running = start(config).await;
    let org = Api::new(&running, "carbon-org").await;
    let customer = org.customer("picker-user");

    // What the script looks for: every space the account sees, and a
    // space with at least two top-level pages anyone may read.
    let creds = sim.credentials();
    let (spaces, space) = sim.with_site(|site| {
        use confluence_sim::model::{ContentKind, SpaceType, Status};
        let spaces: Vec<String> = site.spaces.values().map(|s| s.name.clone()).collect();
        let space = site
            .spaces
            .values()
            .filter(|s| s.space_type != SpaceType::Personal)
            .find(|space| {
                site.space_content
                    .get(&space.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| site.content.get(id))
                    .filter(|c| {
                        c.kind == ContentKind::Page
                            && c.status == Status::Current
                            && c.parent_id.is_none()
                            && c.read_restriction.is_none()
                    })
                    .count()
                    >= 2
            })
            .map(|s| s.name.clone())
            .expect("a space with two top-level pages");
        (spaces, space)
    });
    let plan = json!({
        "api": running.url(),
        "key": org.key,
        "customer": "picker-user",
        "chromium": chromium,
        "shots": shots,
        "account": creds.email,
        "subdomain": "acme",
        "brand": "Carbon",
        "spaces": spaces,
        "space": space,
    });
    script.answer(&plan.to_string()).await;

    let mut chosen: Vec<String> = Vec::new();
    let mut source = None;
    while let Some(ask) = script.next_ask().await {
        match ask.split_once(' ').unwrap_or((ask.as_str(), "")) {
            // Confluence answers slowly, so that a listing is still running
            // when the user cancels it (some 8 s after it starts: a listing
            // is a request for the spaces and one per 250 pages of up to
            // 100 spaces, so each request must take longer than that).
            ("slow-on", _) => sim.set_faults(confluence_sim::FaultConfig {
                latency_ms: 8000,
                ..Default::default()
            }),
            // An item listing is running.
            ("listing", _) => {
                let connection = customer.connection(&running, source.unwrap()).await;
                wait_until("the listing runs", || async {
                    statuses(&running, &connection)
                        .await
                        .contains(&"RUNNING".into())
                })
                .await;
            }
            // Fast again, once the listing has stopped.
            ("slow-off", _) => {
                sim.set_faults(confluence_sim::FaultConfig::default());
                let connection = customer.connection(&running, source.unwrap()).await;
                wait_until("the listing stops", || async {
                    !statuses(&running, &connection)
                        .await
                        .contains(&"RUNNING".into())
                })
                .await;
            }
            // The data source syncs again, whole, as the schedule would.
            ("sync", titles) => {
                chosen = serde_json::from_str(titles).unwrap();
                let connection = only_connection(&running, &customer).await;
                source = Some(connection.data_source_id);
                let before = statuses(&running, &connection).await.len();
                assert!(running
                    .app
                    .store
                    .queue_sync(&org.organisation_id, &connection.id, "test", None, "")
                    .await
                    .unwrap());
                running.app.jobs_ready.notify_one();
                wait_until("the sync ends", || async {
                    let now = statuses(&running, &connection).await;
                    now.len() > before && now.iter().all(|s| s != "QUEUED" && s != "RUNNING")
                })
                .await;
            }
            (other, _) => panic!("the script asked for {other:?}"),
        }
        script.answer("ok").await;
    }
    script.finish("Carbon Connect's flow").await;

    // What the browser did, as the API tells it.
    assert_eq!(chosen.len(), 2, "the script chose two pages");
    let connection = customer
        .connection(&running, source.expect("the script asked for a sync"))
        .await;
    assert!(connection.revoked, "disconnected");
    let files = customer.all_files(json!({})).await;
    let named = |title: &str| files.iter().filter(|f| f["name"] == title).count();
    assert_eq!(named(&chosen[0]), 1, "the resynced page is kept");
    assert_eq!(named(&chosen[1]), 0, "the deleted page stayed deleted");
    let jobs = statuses(&running, &connection).await;
    assert!(
        jobs.iter().any(|status| status == "CANCELLED"),
        "the item listing was cancelled: {jobs:?}"
    );
    running.stop().await;
}

/// The statuses of a connection's jobs, newest first.
async fn statuses(running: &server::Running, connection: &store::Connection) -> Vec<String> {
    running
        .app
        .store
        .sync_jobs(&connection.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, status)| status)
        .collect()
}

async fn only_connection(running: &server::Running, customer: &Api) -> store::Connection {
    let sources = customer.ok("/user_data_sources", json!({})).await;
    let id = sources["results"][0]["id"].as_i64().expect("a data source");
    customer.connection(running, id).await
}

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within two minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
