//! `confsync search`, and the index that `sync` keeps in step as it
//! commits.

use anyhow::Context;
use clap::Args;
use index::{Filters, HybridWeights, Index, SearchRequest, Viewer};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An OpenAI-compatible embedding provider, for hybrid search.
#[derive(Args, Clone, Default)]
pub struct EmbeddingArgs {
    /// Base URL of an OpenAI-compatible API (e.g. https://api.openai.com/v1);
    /// without it, search is keyword only
    #[arg(long, env = "CONFSYNC_EMBEDDINGS_URL")]
    pub embeddings_url: Option<String>,
    /// Embedding model
    #[arg(
        long,
        env = "CONFSYNC_EMBEDDINGS_MODEL",
        default_value = "text-embedding-3-small"
    )]
    pub embeddings_model: String,
    /// API key of the provider (from the environment, so that it stays out of `ps`)
    #[arg(long, env = "CONFSYNC_EMBEDDINGS_KEY", hide_env_values = true)]
    pub embeddings_key: Option<String>,
}

impl EmbeddingArgs {
    fn embedder(&self) -> anyhow::Result<Option<Arc<dyn index::Embedder>>> {
        let Some(url) = &self.embeddings_url else {
            return Ok(None);
        };
        let parsed = url::Url::parse(url)
            .with_context(|| format!("--embeddings-url {url:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "--embeddings-url must be http(s)"
        );
        Ok(Some(Arc::new(index::OpenAiEmbedder::new(
            index::OpenAiConfig {
                base_url: url.clone(),
                model: self.embeddings_model.clone(),
                api_key: self.embeddings_key.clone(),
                dimensions: None,
            },
        )?)))
    }
}

pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

/// Opens the data directory's index and brings it up to date with the
/// store (read-only, as it is, when another process is writing it).
pub async fn open_index(
    data_dir: &Path,
    store: &store::Store,
    embeddings: &EmbeddingArgs,
) -> anyhow::Result<Arc<Index>> {
    let embedder = embeddings.embedder()?;
    let index = Index::open(&index_dir(data_dir), store, embedder)
        .await
        .with_context(|| format!("opening the index in {}", index_dir(data_dir).display()))?;
    if !index.is_writable() {
        tracing::info!("another process is writing the index; searching what it has committed");
    }
    Ok(Arc::new(index))
}

#[derive(Args)]
pub struct SearchArgs {
    /// Where the store and index live
    #[arg(long, env = "CONFSYNC_DATA_DIR", default_value = "confsync-data")]
    data_dir: PathBuf,
    /// The store: absent or sqlite://... the embedded one under the data
    /// directory; postgres://... PostgreSQL (key from CONFSYNC_SECRET_KEY)
    #[arg(long, env = "CONFSYNC_DATABASE_URL")]
    database_url: Option<String>,
    /// The viewer to search as, as JSON: {"signed_in", "agent", "tags",
    /// "organization_ids", "group_ids", "confluence_account_id",
    /// "confluence_groups"}; anonymous when absent
    #[arg(long = "as", value_name = "VIEWER_JSON")]
    viewer: Option<String>,
    /// Chunks to return
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// One JSON line per chunk instead of text
    #[arg(long)]
    json: bool,
    /// Only these space keys (comma-separated)
    #[arg(long, value_delimiter = ',')]
    spaces: Vec<String>,
    /// Fuse keyword and vector ranking; the weight of the semantic side
    /// (Carbon's weight_a; keyword gets 1 - this)
    #[arg(long, value_name = "WEIGHT_A")]
    hybrid: Option<f32>,
    #[command(flatten)]
    embeddings: EmbeddingArgs,
    /// What to search for (quotes make a phrase)
    query: String,
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let viewer: Viewer = match &args.viewer {
        Some(json) => serde_json::from_str(json).context("--as is not a viewer (see --help)")?,
        None => Viewer::default(),
    };
    anyhow::ensure!(
        args.database_url.is_some() || args.data_dir.join("confsync.db").exists(),
        "no store in {} (run `confsync sync` or `confsync demo` first)",
        args.data_dir.display()
    );
    let store = crate::open_store(args.database_url.as_deref(), &args.data_dir).await?;
    let index = open_index(&args.data_dir, &store, &args.embeddings).await?;
    let organisation = store.ensure_organisation("default").await?;
    let request = SearchRequest {
        organisation_id: organisation,
        customer_id: None,
        viewer,
        query: args.query.clone(),
        query_vector: None,
        k: args.k,
        filters: Filters {
            space_keys: args.spaces.clone(),
            ..Filters::default()
        },
        hybrid: args.hybrid.map(|a| HybridWeights {
            weight_a: a,
            weight_b: 1.0 - a,
        }),
        include_vectors: false,
    };
    let hits = index.search(&store, &request).await?;
    print_hits(&hits, args.json)
}

pub fn print_hits(hits: &[index::Hit], json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        for hit in hits {
            writeln!(out, "{}", serde_json::to_string(hit)?)?;
        }
        return Ok(());
    }
    if hits.is_empty() {
        writeln!(out, "no results")?;
    }
    for (n, hit) in hits.iter().enumerate() {
        let heading = if hit.heading_path.is_empty() {
            String::new()
        } else {
            format!(" > {}", hit.heading_path.join(" > "))
        };
        writeln!(
            out,
            "{:>2}. {}{} [{} {} in {}] score {:.3}",
            n + 1,
            hit.title,
            heading,
            hit.kind,
            hit.external_id,
            hit.space_key,
            hit.score
        )?;
        if let Some(url) = &hit.url {
            writeln!(out, "    {url}")?;
        }
        let (open, close) = if std::io::stdout().is_terminal() {
            ("\x1b[1m", "\x1b[0m")
        } else {
            ("**", "**")
        };
        let snippet = hit
            .snippet
            .replace("<mark>", open)
            .replace("</mark>", close)
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&amp;", "&");
        if !snippet.is_empty() {
            writeln!(out, "    {}", snippet.replace('\n', " "))?;
        }
    }
    Ok(())
}
