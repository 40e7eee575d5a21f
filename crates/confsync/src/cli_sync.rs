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
    /// Kinds of content to sync, comma-separated from pages, blogposts,
    /// comments and attachments (all when absent)
    #[arg(long)]
    content: Option<String>,
    /// Change what an existing connection syncs to exactly what this run's
    /// --spaces, --pages, --no-personal-spaces and --content say (without
    /// it, a run that asks for something else than the stored connection
    /// is refused). Content no longer chosen is deleted from the store
    #[arg(long)]
    replace_scope: bool,
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
    anyhow::ensure!(
        args.pages
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "--pages takes numeric page ids"
    );
    let content = args
        .content
        .as_deref()
        .map(sync::ContentKinds::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--content: {e}"))?;
    let base = site.base.clone();
    let client = confluence::Client::new(site, credentials, confluence::RetryPolicy::default())?;
    // One request before anything is written: a wrong address, context
    // path or credential is said now, in one line, and stored
    // credentials are replaced only by ones the site accepts.
    client
        .current_user()
        .await
        .map_err(|error| explain_check(&error, &client, &account))?;
    // One sync of a site and account at a time on a data directory: a
    // second would double the requests to Confluence and the counts in
    // the reports. The lock goes with the process, however it ends.
    if args.database_url.is_none() {
        crate::check_data_dir(&args.data_dir)?;
    }
    let _lock = lock_sync(&args.data_dir, &base, &account)?;
    let store = crate::open_store(args.database_url.as_deref(), &args.data_dir).await?;
    let organisation = store.ensure_organisation("default").await?;
    let connection = match store
        .find_connection(&organisation, &base, &account)
        .await?
    {
        Some(connection) => {
            let stored = StoredScope::of(&connection);
            if args.replace_scope {
                let scope = serde_json::json!({"spaces": args.spaces, "pages": args.pages});
                store
                    .replace_scope(
                        &connection.id,
                        &scope,
                        !args.no_personal_spaces,
                        &content.unwrap_or_default().names(),
                    )
                    .await?;
            } else {
                let differences = stored.differences(&args, content);
                anyhow::ensure!(
                    differences.is_empty(),
                    "connection {} (`confsync connections show {}`) {}.\n\
                     Nothing was changed. Run again without these flags to sync it as it is, \
                     or add --replace-scope to sync exactly what this run's flags say \
                     (content no longer chosen is deleted from the store).",
                    connection.id,
                    connection.id,
                    differences.join("; ")
                );
            }
            // The site accepted these credentials just now: a token
            // rotated since the last run replaces the stored one.
            if store.credentials(&connection.id).await? != secret.to_string().into_bytes() {
                store
                    .set_credentials(&connection.id, secret.to_string().as_bytes())
                    .await?;
                eprintln!("the stored credentials of {} were replaced by this run's (the site accepted them)", connection.id);
            }
            store.connection(&connection.id).await?
        }
        None => {
            let connection = store
                .create_connection(store::NewConnection {
                    organisation_id: &organisation,
                    site_url: &base,
                    auth_kind,
                    account: &account,
                    credentials: secret.to_string().as_bytes(),
                    allow_personal_spaces: !args.no_personal_spaces,
                    scope: serde_json::json!({"spaces": args.spaces, "pages": args.pages}),
                })
                .await?;
            if let Some(content) = content {
                store
                    .set_content_kinds(&connection.id, &content.names())
                    .await?;
            }
            store.connection(&connection.id).await?
        }
    };
    // What this run syncs is the stored connection's, whatever was given.
    let stored = StoredScope::of(&connection);
    let options = sync::SyncOptions {
        spaces: stored.spaces,
        pages: stored.pages,
        allow_personal_spaces: connection.allow_personal_spaces,
        download_concurrency: args.download_concurrency,
        space_concurrency: args.space_concurrency,
        link_base: None,
        content: stored.content,
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
            bar.set_message(progress_line(&p));
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
    let report =
        outcome.map_err(|error| explain_failure(error, &base_of(&connection), &account))?;
    indexed.context("indexing failed; the next sync or search catches up")?;
    let mut line = serde_json::to_value(&report)?;
    line["indexed_chunks"] = index.num_chunks().into();
    println!("{line}");
    Ok(())
}

/// One line of a sync's progress, for a terminal: the spaces done of how
/// many, then what has been listed so far.
fn progress_line(p: &sync::Progress) -> String {
    let mut parts = Vec::new();
    match p.spaces_total {
        Some(total) => parts.push(format!("spaces {}/{total}", p.spaces_done)),
        None => parts.push("listing spaces".into()),
    }
    for (n, what) in [
        (p.pages, "pages"),
        (p.blogposts, "blog posts"),
        (p.attachments, "attachments"),
        (p.comments, "comments"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let mut line = parts.join(" · ");
    if matches!(p.phase, "attachments" | "comments") {
        line.push_str(&format!(" · now {}", p.phase));
    }
    line
}

/// What a stored connection syncs, as a run compares it with its flags.
struct StoredScope {
    spaces: Vec<String>,
    pages: Vec<String>,
    content: sync::ContentKinds,
    personal: bool,
}

impl StoredScope {
    fn of(connection: &store::Connection) -> StoredScope {
        let list = |key: &str| -> Vec<String> {
            connection.scope[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        StoredScope {
            spaces: list("spaces"),
            pages: list("pages"),
            content: sync::ContentKinds::parse(&connection.content_kinds).unwrap_or_default(),
            personal: connection.allow_personal_spaces,
        }
    }

    /// What this run's flags ask for that the stored connection does not
    /// do, in words; a flag not given asks for nothing.
    fn differences(&self, args: &SyncArgs, content: Option<sync::ContentKinds>) -> Vec<String> {
        let set = |items: &[String]| -> std::collections::BTreeSet<String> {
            items.iter().cloned().collect()
        };
        let show = |items: &[String]| -> String {
            if items.is_empty() {
                "every readable space".into()
            } else {
                format!("spaces {}", items.join(","))
            }
        };
        let mut out = Vec::new();
        if !args.spaces.is_empty() && set(&args.spaces) != set(&self.spaces) {
            out.push(format!(
                "syncs {}, this run asks for --spaces {}",
                show(&self.spaces),
                args.spaces.join(",")
            ));
        }
        if !args.pages.is_empty() && set(&args.pages) != set(&self.pages) {
            out.push(format!(
                "syncs pages {}, this run asks for --pages {}",
                if self.pages.is_empty() {
                    "(whole spaces)".into()
                } else {
                    self.pages.join(",")
                },
                args.pages.join(",")
            ));
        }
        if args.no_personal_spaces && self.personal {
            out.push("syncs personal spaces, this run asks for --no-personal-spaces".into());
        }
        if let Some(content) = content.filter(|c| *c != self.content) {
            out.push(format!(
                "syncs {}, this run asks for --content {}",
                self.content.names(),
                content.names()
            ));
        }
        out
    }
}

/// What a connection (as JSON) is told to sync, in words.
fn scope_words(connection: &serde_json::Value) -> String {
    let list = |key: &str| -> Vec<&str> {
        connection["scope"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect()
    };
    let (spaces, pages) = (list("spaces"), list("pages"));
    let all = connection["scope"]["all"]
        .as_bool()
        .unwrap_or(spaces.is_empty() && pages.is_empty());
    let mut words = Vec::new();
    if all {
        words.push("every readable space".to_string());
    }
    if !spaces.is_empty() {
        words.push(format!("spaces {}", spaces.join(",")));
    }
    if !pages.is_empty() {
        words.push(format!("pages {} with their descendants", pages.join(",")));
    }
    if words.is_empty() {
        words.push("nothing chosen yet".into());
    }
    if connection["allow_personal_spaces"] == false {
        words.push("no personal spaces".into());
    }
    words.join(", ")
}

/// The site a connection syncs, as its error messages name it.
fn base_of(connection: &store::Connection) -> String {
    connection.site_url.clone()
}

/// The first request's failure, in one line a person can act on.
fn explain_check(
    error: &confluence::Error,
    client: &confluence::Client,
    account: &str,
) -> anyhow::Error {
    let site = client.site();
    let root = format!("{}{}", site.base, site.context);
    match error {
        confluence::Error::Unreachable(cause) => {
            anyhow::anyhow!("cannot reach {}: {cause}", site.base)
        }
        confluence::Error::Transport(cause) => {
            anyhow::anyhow!("no answer from {}: {cause}", site.base)
        }
        confluence::Error::Unauthorized(_) => anyhow::anyhow!(
            "{} refused the credentials of {account} (401): check {}",
            site.base,
            if account.starts_with("pat:") { "the personal access token" } else { "--email and the API token" }
        ),
        confluence::Error::Forbidden(_) => anyhow::anyhow!(
            "{} refused {account} access to its REST API (403): the account needs the 'Can use' permission",
            site.base
        ),
        confluence::Error::NotFound(_) => anyhow::anyhow!(
            "no Confluence REST API at {root} (404): check --site and --context-path \
             (/wiki on Cloud, often empty on Data Center)"
        ),
        confluence::Error::Decode { .. } => anyhow::anyhow!(
            "{root} answered, but not as Confluence's REST API does: check --site and --context-path"
        ),
        confluence::Error::ForeignOrigin(target) => anyhow::anyhow!(
            "{} redirects to {target}: give that address as --site",
            site.base
        ),
        other => anyhow::anyhow!("{}: {other}", site.base),
    }
}

/// A sync's failure: whether running it again resumes, or something
/// must change first.
fn explain_failure(error: sync::Error, site: &str, account: &str) -> anyhow::Error {
    match &error {
        sync::Error::Confluence(confluence::Error::Unauthorized(_)) => anyhow::anyhow!(
            "{site} stopped accepting the credentials of {account} during the sync (401); \
             what was synced is kept: run again with working credentials to resume"
        ),
        sync::Error::Confluence(confluence::Error::Unreachable(cause)) => anyhow::anyhow!(
            "lost the connection to {site} ({cause}); what was synced is kept: run again to resume"
        ),
        sync::Error::Confluence(e) if e.is_retryable() => anyhow::anyhow!(
            "sync of {site} stopped: {e}; what was synced is kept: run again to resume"
        ),
        sync::Error::Confluence(e) => anyhow::anyhow!("sync of {site} failed: {e}"),
        sync::Error::Store(e) => anyhow::anyhow!(
            "the store failed: {e}; what was committed is kept: run again to resume once it is fixed"
        ),
    }
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
        if let Some(error) = c["error"].as_str() {
            // Whatever the status (a sync that needs new credentials
            // too), the reason the last sync ended is shown.
            println!("  last error: {error}");
        }
        println!(
            "  syncs: {}; content: {}",
            scope_words(c),
            c["content_kinds"].as_str().unwrap_or("")
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
