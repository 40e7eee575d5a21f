//! `confsync sync` and `confsync status`.

use anyhow::Context;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::SyncState;

#[derive(Args)]
pub struct SyncArgs {
    /// The site: https://acme.atlassian.net, a Data Center base URL, or the
    /// gateway form https://api.atlassian.com/ex/confluence/{cloudId}
    #[arg(long)]
    site: String,
    /// Account email, with --api-token (Confluence Cloud)
    #[arg(long, requires = "api_token", conflicts_with = "pat")]
    email: Option<String>,
    /// API token (prefer the environment variable: arguments show in `ps`)
    #[arg(long, env = "CONFSYNC_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Personal access token (Data Center)
    #[arg(long, env = "CONFSYNC_PAT", hide_env_values = true)]
    pat: Option<String>,
    /// Space keys to sync, comma-separated; every readable space when absent
    #[arg(long, value_delimiter = ',')]
    spaces: Vec<String>,
    /// Page ids to sync with their descendants, comma-separated (instead of whole spaces)
    #[arg(long, value_delimiter = ',')]
    pages: Vec<String>,
    /// Skip personal spaces
    #[arg(long)]
    no_personal_spaces: bool,
    /// Context path of the site's API (/wiki on Cloud; often empty on Data Center)
    #[arg(long, default_value = "/wiki")]
    context_path: String,
    /// Where the store lives
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
    /// Attachment downloads in flight at once
    #[arg(long, default_value_t = 16)]
    download_concurrency: usize,
    /// Spaces synced at once
    #[arg(long, default_value_t = 4)]
    space_concurrency: usize,
    /// Apply Confluence's own permissions (space permissions, page
    /// restrictions) to searches; sync as an account that reads everything.
    /// Stored with the connection: later runs keep it unless told otherwise
    #[arg(long, conflicts_with = "no_enforce_permissions")]
    enforce_permissions: bool,
    /// Stop applying Confluence's own permissions to the stored connection
    #[arg(long)]
    no_enforce_permissions: bool,
    #[command(flatten)]
    embeddings: crate::cli_search::EmbeddingArgs,
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
    /// One JSON document instead of text
    #[arg(long)]
    json: bool,
}

fn site_url(site: &str, context: &str) -> anyhow::Result<confluence::SiteUrl> {
    let parsed = url::Url::parse(site).with_context(|| format!("--site {site:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
        "--site must be an http(s) URL with a host"
    );
    let base = site
        .trim_end_matches('/')
        .trim_end_matches("/wiki")
        .to_string();
    if base.contains("/ex/confluence/") {
        return Ok(confluence::SiteUrl {
            base,
            context: "/wiki".into(),
        });
    }
    Ok(confluence::SiteUrl {
        base,
        context: context.trim_end_matches('/').to_string(),
    })
}

pub async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let site = site_url(&args.site, &args.context_path)?;
    let (credentials, auth_kind, account, secret) = match (&args.email, &args.api_token, &args.pat)
    {
        (Some(email), Some(token), None) => (
            confluence::Credentials::ApiToken {
                email: email.clone(),
                token: token.clone(),
            },
            "api_token",
            email.clone(),
            serde_json::json!({"email": email, "api_token": token}),
        ),
        (None, _, Some(pat)) => (
            confluence::Credentials::PersonalAccessToken(pat.clone()),
            "pat",
            format!("pat:{}", fingerprint(pat)),
            serde_json::json!({"pat": pat}),
        ),
        _ => anyhow::bail!("give --email with --api-token, or --pat"),
    };
    // One sync of a site and account at a time on a data directory: a
    // second would double the requests to Confluence and the counts in
    // the reports. The lock goes with the process, however it ends.
    let _lock = lock_sync(&args.data_dir, &site.base, &account)?;
    let store = crate::open_store(args.database_url.as_deref(), &args.data_dir).await?;
    let organisation = store.ensure_organisation("default").await?;
    anyhow::ensure!(
        args.pages
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "--pages takes numeric page ids"
    );
    let scope = serde_json::json!({"spaces": args.spaces, "pages": args.pages});
    let connection = match store
        .find_connection(&organisation, &site.base, &account)
        .await?
    {
        Some(connection) => {
            store
                .set_credentials(&connection.id, secret.to_string().as_bytes())
                .await?;
            store.set_scope(&connection.id, &scope).await?;
            connection
        }
        None => {
            store
                .create_connection(store::NewConnection {
                    organisation_id: &organisation,
                    site_url: &site.base,
                    auth_kind,
                    account: &account,
                    credentials: secret.to_string().as_bytes(),
                    allow_personal_spaces: !args.no_personal_spaces,
                    scope: scope.clone(),
                })
                .await?
        }
    };
    let client = confluence::Client::new(site, credentials, confluence::RetryPolicy::default())?;
    let options = sync::SyncOptions {
        spaces: args.spaces.clone(),
        pages: args.pages.clone(),
        allow_personal_spaces: !args.no_personal_spaces,
        download_concurrency: args.download_concurrency,
        space_concurrency: args.space_concurrency,
        link_base: None,
    };
    // A stored connection's enforcement changes only when asked: a run
    // without either flag keeps it (switching it off silently would show
    // restricted pages to everyone).
    let enforce = match (args.enforce_permissions, args.no_enforce_permissions) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    if let Some(enforce) = enforce {
        store
            .set_enforce_permissions(&connection.id, enforce)
            .await?;
    }
    // The index follows the store as the sync commits.
    let index = crate::cli_search::open_index(&args.data_dir, &store, &args.embeddings).await?;
    let follower = index::Follower::start(index.clone(), store.clone());
    let mut engine = sync::Engine::new(client, store.clone(), &connection.id, options)
        .with_commit_hook(follower.hook());
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    if let Some(bar) = bar.clone() {
        engine = engine.with_progress(Arc::new(move |p: sync::Progress| {
            bar.set_message(format!("{}: {} items", p.phase, p.items));
        }));
    }
    let outcome = engine.run().await;
    drop(engine);
    if let Some(bar) = &bar {
        bar.set_message("indexing");
    }
    let indexed = follower.finish().await.map_err(|e| anyhow::anyhow!(e));
    // What this run applied is not needed again: the log is pruned below
    // every live replica (this one, on a data directory of its own).
    if indexed.is_ok() {
        if let Err(error) = index.prune(&store).await {
            tracing::warn!(%error, "pruning the index log failed; the next run does");
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = outcome.context("sync failed; run it again to resume")?;
    indexed.context("indexing failed; the next sync or search catches up")?;
    let mut line = serde_json::to_value(&report)?;
    line["indexed_chunks"] = index.num_chunks().into();
    println!("{line}");
    Ok(())
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    // Looking must not create: a mistyped directory is said to be empty.
    let store = crate::open_existing_store(args.database_url.as_deref(), &args.data_dir).await?;
    let mut out = Vec::new();
    for connection in store.connections().await? {
        let counts = store.counts(&connection.id).await?;
        let spaces = store.spaces(&connection.id).await?;
        let jobs = store.jobs(&connection.id, 1).await?;
        out.push(serde_json::json!({
            "connection": connection,
            "spaces": spaces,
            "files": counts.iter().map(|(k, s, n)| serde_json::json!({"kind": k, "status": s, "count": n})).collect::<Vec<_>>(),
            "last_job": jobs.first(),
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    if out.is_empty() {
        println!("no connections in {}", args.data_dir.display());
    }
    for entry in &out {
        let c = &entry["connection"];
        println!(
            "{} {} ({}) status {} last synced {}",
            c["id"].as_str().unwrap_or(""),
            c["site_url"].as_str().unwrap_or(""),
            c["account"].as_str().unwrap_or(""),
            c["status"].as_str().unwrap_or(""),
            c["last_synced_at"].as_str().unwrap_or("never"),
        );
        println!(
            "  spaces: {}",
            entry["spaces"].as_array().map_or(0, |s| s.len())
        );
        for file in entry["files"].as_array().into_iter().flatten() {
            println!(
                "  {:<11} {:<11} {}",
                file["kind"].as_str().unwrap_or(""),
                file["status"].as_str().unwrap_or(""),
                file["count"]
            );
        }
        if let Some(job) = entry["last_job"].as_object() {
            println!(
                "  last job: {} {} -> {}",
                job.get("status").and_then(|v| v.as_str()).unwrap_or(""),
                job.get("started_at").and_then(|v| v.as_str()).unwrap_or(""),
                job.get("finished_at")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unfinished")
            );
        }
    }
    Ok(())
}

/// A short fingerprint of a token (a SHA-256 prefix), to tell connections
/// apart without storing the token in the clear.
/// Takes the data directory's lock for syncing `site` as `account`, or
/// says who holds it.
fn lock_sync(data_dir: &Path, site: &str, account: &str) -> anyhow::Result<std::fs::File> {
    let dir = data_dir.join("locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!(
        "sync-{}.lock",
        fingerprint(&format!("{site}\n{account}"))
    ));
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `confsync sync` of {site} as {account} is running on {}; wait for it to end",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(token.as_bytes())[..8])
}
