//! `confsync connections list|show|remove`: the connections a data
//! directory's store holds, and removing one with everything synced
//! through it (as the API's revoke and delete do), so that a mistyped
//! `--site` or `--email` does not stay forever.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use store::SyncState;

#[derive(Args)]
pub struct StoreArgs {
    /// Where the store and index live
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
pub enum ConnectionsCommand {
    /// One line per connection: id, site, account, status
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// One JSON line per connection
        #[arg(long)]
        json: bool,
    },
    /// One connection as JSON, with what it holds by kind and status
    Show {
        #[command(flatten)]
        store: StoreArgs,
        /// The connection's id (from `list`)
        id: String,
    },
    /// Removes a connection with everything synced through it, from the
    /// store and from search
    Remove {
        #[command(flatten)]
        store: StoreArgs,
        /// The connection's id (from `list`)
        id: String,
    },
}

async fn open(args: &StoreArgs) -> anyhow::Result<store::Store> {
    crate::open_existing_store(args.database_url.as_deref(), &args.data_dir).await
}

async fn find(store: &store::Store, id: &str) -> anyhow::Result<store::Connection> {
    match store.connection(id).await {
        Ok(connection) => Ok(connection),
        Err(store::Error::NotFound(_)) => {
            anyhow::bail!(
                "no connection {id:?} in this store (`confsync connections list` shows them)"
            )
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn run(command: ConnectionsCommand) -> anyhow::Result<()> {
    match command {
        ConnectionsCommand::List { store: args, json } => {
            let store = open(&args).await?;
            for c in store.connections().await? {
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    println!(
                        "{}  {}  {}  {}{}",
                        c.id,
                        c.site_url,
                        c.account_label.as_deref().unwrap_or(&c.account),
                        c.status.as_str(),
                        c.error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        ConnectionsCommand::Show { store: args, id } => {
            let store = open(&args).await?;
            let connection = find(&store, &id).await?;
            let counts: Vec<serde_json::Value> = store
                .counts(&connection.id)
                .await?
                .into_iter()
                .map(|(kind, status, n)| serde_json::json!({"kind": kind, "status": status, "files": n}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "connection": connection,
                    "files": counts,
                    // For a Data Center site: register a webhook in
                    // Confluence to this path of `confsync serve`, with
                    // this secret, for edits to arrive at once.
                    "confluence_webhook": {
                        "path": format!("/webhooks/confluence/{}", connection.id),
                        "secret": server::pushes::secret_for(&store, &connection.id),
                    },
                }))?
            );
        }
        ConnectionsCommand::Remove { store: args, id } => {
            let store = open(&args).await?;
            let connection = find(&store, &id).await?;
            store.delete_connection(&connection.id).await?;
            // Out of search now where this process may write the index;
            // otherwise the process holding it (a server) applies the
            // log within its poll.
            let index = crate::cli_search::open_index(
                &args.data_dir,
                &store,
                &crate::cli_search::EmbeddingArgs::default(),
            )
            .await
            .context(
                "the connection is removed from the store; the index applies it when next opened",
            )?;
            if index.is_writable() {
                index.catch_up(&store).await?;
            }
            println!(
                "removed {} ({} as {}) and everything synced through it",
                connection.id, connection.site_url, connection.account
            );
        }
    }
    Ok(())
}
