//! `confsync serve`, `confsync admin create-org`, and `confsync demo`
//! (a simulated site connected and synced through the HTTP API).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use store::SyncState;

#[derive(Args)]
pub struct ServeArgs {
    /// Where the store and index live (overrides the config file)
    #[arg(long, env = "CONFSYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (overrides the config file; default 127.0.0.1:8080)
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// A TOML configuration file (its keys: README.md, "The HTTP API")
    #[arg(long, env = "CONFSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// The store: sqlite://... or absent for the embedded one under the
    /// data directory, postgres://... for PostgreSQL (overrides the config
    /// file; the key then comes from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = server::Config::load(args.config.as_deref()).map_err(anyhow::Error::msg)?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = args.database_url {
        config.database_url = Some(url);
    }
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let running = server::start(config, listener)
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(url = %running.url(), "serving; the API's description is at /openapi.json");
    stopped().await?;
    tracing::info!("stopping: finishing requests in flight, handing back running jobs");
    running.stop().await;
    Ok(())
}

/// Until Ctrl-C (SIGINT) or SIGTERM, what a service manager or an
/// orchestrator sends.
async fn stopped() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for ctrl-c")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for ctrl-c")
    }
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an organisation; prints one JSON line with its id and API key
    CreateOrg(CreateOrgArgs),
    /// Create a knowledge admin of an organisation for the console at
    /// /admin; prints a one-time sign-in link (or, with
    /// CONFSYNC_ADMIN_PASSWORD set, sets that password)
    CreateAdmin(CreateAdminArgs),
}

#[derive(Args)]
pub struct CreateAdminArgs {
    /// The organisation: its id, number or name
    #[arg(long)]
    org: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    /// The server's public URL, which the sign-in link starts with
    #[arg(
        long,
        env = "CONFSYNC_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Hours the sign-in link stays valid
    #[arg(long, default_value_t = 24)]
    link_hours: u64,
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args)]
pub struct CreateOrgArgs {
    #[arg(long)]
    name: String,
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
}

pub async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateOrg(args) => {
            anyhow::ensure!(
                !args.name.trim().is_empty() && args.name.len() <= 200,
                "--name must be 1 to 200 characters"
            );
            let store = crate::open_store(args.database_url.as_deref(), &args.data_dir).await?;
            let (organisation, key) = server::create_organisation(&store, &args.name).await?;
            println!(
                "{}",
                json!({"organization_id": organisation.number, "id": organisation.id, "name": organisation.name, "api_key": key})
            );
            Ok(())
        }
        AdminCommand::CreateAdmin(args) => {
            anyhow::ensure!(
                args.database_url.is_some() || args.data_dir.join("confsync.db").exists(),
                "no store in {}: create an organisation first (confsync admin create-org)",
                args.data_dir.display()
            );
            let store = crate::open_store(args.database_url.as_deref(), &args.data_dir).await?;
            let organisation = store.find_organisation(&args.org).await?.with_context(|| {
                format!(
                    "no organisation {:?} (give its id, number or name)",
                    args.org
                )
            })?;
            // The password only ever from the environment: argv is visible
            // to every user of the machine.
            let password = std::env::var("CONFSYNC_ADMIN_PASSWORD").ok();
            let hash = match &password {
                Some(password) => {
                    server::console::check_password(password).map_err(anyhow::Error::msg)?;
                    Some(server::console::hash_password(password).map_err(anyhow::Error::msg)?)
                }
                None => None,
            };
            let admin = store
                .create_admin(&organisation.id, &args.email, &args.name, hash.as_deref())
                .await?;
            if password.is_some() {
                println!(
                    "{}",
                    json!({"admin_id": admin.id, "email": admin.email, "signin": format!("{}/admin/signin", args.url.trim_end_matches('/'))})
                );
            } else {
                let link = server::console::signin_link(
                    &store,
                    &args.url,
                    &admin.id,
                    Duration::from_secs(args.link_hours.clamp(1, 24 * 7) * 3600),
                )
                .await?;
                println!(
                    "{}",
                    json!({"admin_id": admin.id, "email": admin.email, "signin_link": link})
                );
            }
            Ok(())
        }
    }
}

#[derive(Args)]
pub struct DemoArgs {
    /// Pages of the simulated site
    #[arg(long, default_value_t = 2000)]
    pages: u32,
    /// Spaces of the simulated site
    #[arg(long, default_value_t = 6)]
    spaces: u32,
    /// Where the store lives
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-demo")]
    data_dir: PathBuf,
    /// Address of the simulated site (fixed, so that running the demo
    /// again finds the same connection and syncs it incrementally)
    #[arg(long, default_value = "127.0.0.1:8990")]
    sim_addr: SocketAddr,
    /// Address of the API
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Stop once the sample search is printed (instead of serving until Ctrl-C)
    #[arg(long)]
    exit: bool,
}

/// The demo on the embedded default: a simulated Confluence site, the
/// server over a store under `--data-dir`, the site connected through the
/// API and synced, then a sample search through /embeddings.
/// The demo's knowledge admin.
const DEMO_ADMIN: &str = "admin@demo.example";

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let sim = confluence_sim::Simulator::spawn(
        confluence_sim::SimConfig {
            site: confluence_sim::SiteConfig {
                seed: 1,
                spaces: args.spaces,
                pages: args.pages,
            },
            ..Default::default()
        },
        args.sim_addr,
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.sim_addr))?;
    let creds = sim.credentials();
    let config = demo_config(&args, &creds);
    let store = crate::open_store(None, &args.data_dir).await?;
    // One organisation for the demo; a fresh key each run (keys are only
    // ever shown once).
    let organisation = store.ensure_organisation("demo").await?;
    let key = server::add_api_key(&store, &organisation).await?;

    drop(store);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let running = server::start(config, listener)
        .await
        .map_err(anyhow::Error::msg)?;
    let api = running.url();
    eprintln!(
        "simulated Confluence site at {}\nconfsync API at {api}",
        creds.base_url
    );
    let http = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        http.post(format!("{api}{path}"))
            .bearer_auth(&key)
            .header("customer-id", "demo-user")
            .json(&body)
            .send()
    };
    let connected: Value = call(
        "/integrations/connect",
        json!({"authentication": {"source": "CONFLUENCE", "subdomain": "demo", "username": creds.email, "access_token": creds.api_token}}),
    )
    .await?
    .error_for_status()
    .context("connecting the simulated site")?
    .json()
    .await?;
    let data_source_id = connected["data_source"]["id"].as_i64().unwrap_or_default();
    eprintln!("connected: data source {data_source_id}; syncing");
    let started = std::time::Instant::now();
    loop {
        let sources: Value = call(
            "/user_data_sources",
            json!({"filters": {"ids": [data_source_id]}}),
        )
        .await?
        .json()
        .await?;
        let status = sources["results"][0]["sync_status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status == "READY" {
            break;
        }
        anyhow::ensure!(
            status != "SYNC_ERROR",
            "the sync failed: {}",
            sources["results"][0]["data_source_metadata"]["error"]
        );
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the sync did not finish in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let files: Value = call("/user_files_v2", json!({"pagination": {"limit": 1}}))
        .await?
        .json()
        .await?;
    eprintln!(
        "synced {} files in {:.1} s",
        files["count"],
        started.elapsed().as_secs_f64()
    );
    // The admin console's face: the same site, connected by a demo admin
    // for the organisation itself, every (non-personal) space chosen.
    let app = &running.app;
    let admin = match app.store.admin_by_email(DEMO_ADMIN).await? {
        Some((admin, _)) => admin,
        None => {
            app.store
                .create_admin(&organisation, DEMO_ADMIN, "Demo Admin", None)
                .await?
        }
    };
    let console_connection =
        server::console::connect_every_space(app, &admin, "demo", &creds.email, &creds.api_token)
            .await
            .map_err(anyhow::Error::msg)
            .context("connecting the site in the console")?;
    loop {
        let connection = app.store.connection(&console_connection.id).await?;
        match connection.status {
            store::ConnectionStatus::Ready => break,
            store::ConnectionStatus::SyncError | store::ConnectionStatus::NeedsReauthorization => {
                anyhow::bail!(
                    "the console's sync failed: {}",
                    connection.error.unwrap_or_default()
                )
            }
            _ => {}
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1200),
            "the console's sync did not finish in 20 minutes"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let signin =
        server::console::signin_link(&app.store, &api, &admin.id, Duration::from_secs(24 * 3600))
            .await?;
    println!("admin console: {api}/admin");
    println!("sign in (once; valid 24 hours): {signin}");
    // The picker's view: the site's spaces, which the connect listed (a
    // queued job) and the data source says when.
    let listing = std::time::Instant::now();
    loop {
        let sources: Value = call(
            "/user_data_sources",
            json!({"filters": {"ids": [data_source_id]}}),
        )
        .await?
        .error_for_status()
        .context("listing the site's items")?
        .json()
        .await?;
        if !sources["results"][0]["source_items_synced_at"].is_null() {
            break;
        }
        anyhow::ensure!(
            listing.elapsed() < std::time::Duration::from_secs(120),
            "the site's items were not listed within two minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let spaces: Value = call(
        "/integrations/items/list",
        json!({"data_source_id": data_source_id, "pagination": {"limit": 20}}),
    )
    .await?
    .json()
    .await?;
    let keys: Vec<String> = spaces["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["external_id"].as_str().map(str::to_string))
        .collect();
    println!("spaces: {}", keys.join(" "));
    let space = keys.first().cloned().unwrap_or_default();
    let query = "release plan";
    let found: Value = call("/embeddings", json!({"query": query, "k": 3}))
        .await?
        .json()
        .await?;
    println!("search {query:?}:");
    for doc in found["documents"].as_array().into_iter().flatten() {
        println!(
            "  {:.2}  {}  {}",
            doc["score"].as_f64().unwrap_or_default(),
            doc["source"].as_str().unwrap_or(""),
            doc["source_url"].as_str().unwrap_or("")
        );
    }
    eprintln!(
        "\nUse the API (Carbon's shape; its description is at {api}/openapi.json):\n  \
         curl -s -H 'content-type: application/json' {api}/embeddings -H 'authorization: Bearer {key}' -H 'customer-id: demo-user' -d '{{\"query\": \"release plan\", \"k\": 5}}'\n  \
         curl -s -H 'content-type: application/json' {api}/user_files_v2 -H 'authorization: Bearer {key}' -H 'customer-id: demo-user' -d '{{\"pagination\": {{\"limit\": 5}}}}'\n  \
         curl -s -H 'content-type: application/json' {api}/integrations/oauth_url -H 'authorization: Bearer {key}' -H 'customer-id: someone' -d '{{\"service\": \"CONFLUENCE\", \"confluence_subdomain\": \"demo\"}}'\n\
         Change the site, then sync again (the schedule does it every 24 hours):\n  \
         curl -X POST {sim}/_sim/mutate -d '{{\"seed\": 1, \"random_changes\": 20}}'\n  \
         curl -s -H 'content-type: application/json' {api}/integrations/files/sync -H 'authorization: Bearer {key}' -H 'customer-id: demo-user' -d '{{\"data_source_id\": {data_source_id}, \"ids\": [\"{space}\"]}}'",
        sim = creds.base_url,
    );
    if args.exit {
        running.stop().await;
        return Ok(());
    }
    eprintln!("Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    running.stop().await;
    Ok(())
}

fn demo_config(args: &DemoArgs, creds: &confluence_sim::Credentials) -> server::Config {
    let mut config = server::Config {
        addr: args.addr,
        data_dir: args.data_dir.clone(),
        ..Default::default()
    };
    config.stand_in(
        "demo",
        &creds.base_url,
        &creds.oauth_client_id,
        &creds.oauth_client_secret,
    );
    config.webhooks.allow_private_targets = true;
    config
}
