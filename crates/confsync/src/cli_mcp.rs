//! `confsync mcp`: the store's content for a desktop AI agent, as an MCP
//! server over stdio (stdout carries only the protocol; logs go to stderr).

use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct McpArgs {
    /// Where the store and index live
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
    /// Only this organisation's content (its id, number or name); every
    /// organisation's when absent
    #[arg(long)]
    org: Option<String>,
    /// The viewer the agent searches as (JSON, as `confsync search --as`);
    /// anonymous when absent
    #[arg(long = "as", value_name = "VIEWER_JSON")]
    viewer: Option<String>,
    #[command(flatten)]
    embeddings: crate::cli_search::EmbeddingArgs,
}

pub async fn mcp(args: McpArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use rmcp::ServiceExt;
    let viewer: index::Viewer = match &args.viewer {
        Some(json) => serde_json::from_str(json).context("--as is not a viewer (see --help)")?,
        None => index::Viewer::default(),
    };
    let store = crate::open_existing_store(args.database_url.as_deref(), &args.data_dir).await?;
    let viewer = crate::cli_search::with_group_ids(viewer, &store).await?;
    let index = crate::cli_search::open_index(&args.data_dir, &store, &args.embeddings).await?;
    let organisations = match &args.org {
        Some(org) => vec![
            store
                .find_organisation(org)
                .await?
                .with_context(|| format!("no organisation {org:?} in this store"))?
                .id,
        ],
        None => store
            .organisations()
            .await?
            .into_iter()
            .map(|o| o.id)
            .collect(),
    };
    // What a `confsync sync` beside it commits becomes searchable.
    let _follower = index::Follower::start(index.clone(), store.clone());
    let knowledge = server::mcp::Knowledge::new(
        store,
        index,
        Some(server::mcp::Audience {
            organisations,
            customer_id: None,
            viewer,
        }),
    );
    tracing::info!(data_dir = %args.data_dir.display(), "MCP server on stdio");
    let running = knowledge
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session")?;
    running.waiting().await.context("serving MCP")?;
    Ok(())
}
