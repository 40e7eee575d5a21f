//! `confsync search`, and the index that `sync` keeps in step as it
//! commits.

use anyhow::Context;
use clap::Args;
use index::{Filters, HybridWeights, Index, SearchRequest, Viewer};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::SyncState;

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
    /// "confluence_groups"} (Confluence groups by id or by name); anonymous
    /// when absent
    #[arg(long = "as", value_name = "VIEWER_JSON")]
    viewer: Option<String>,
    /// Results to return
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Chunks of one page (or file) among the results at most: 1 gives k
    /// pages, each by its best chunk
    #[arg(long, default_value_t = 1)]
    chunks_per_page: usize,
    /// One JSON line per chunk instead of text
    #[arg(long)]
    json: bool,
    /// Only these space keys (comma-separated)
    #[arg(long, value_delimiter = ',')]
    spaces: Vec<String>,
    /// Only this organisation's content (its id, number or name); every
    /// organisation's when absent (the operator's view of a data
    /// directory)
    #[arg(long)]
    org: Option<String>,
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
    anyhow::ensure!(
        !args.query.trim().is_empty(),
        "nothing to search for: give a query (quotes make a phrase)"
    );
    let viewer: Viewer = match &args.viewer {
        Some(json) => serde_json::from_str(json).context("--as is not a viewer (see --help)")?,
        None => Viewer::default(),
    };
    let store = crate::open_existing_store(args.database_url.as_deref(), &args.data_dir).await?;
    let viewer = with_group_ids(viewer, &store).await?;
    let index = open_index(&args.data_dir, &store, &args.embeddings).await?;
    // Which organisations: the one asked for, or all (nothing is created:
    // a search only reads).
    let organisations = match &args.org {
        Some(org) => vec![store.find_organisation(org).await?.with_context(|| {
            format!("no organisation {org:?} in this store (or the name is shared: give its id)")
        })?],
        None => store.organisations().await?,
    };
    let mut hits = Vec::new();
    for organisation in &organisations {
        let request = SearchRequest {
            organisation_id: organisation.id.clone(),
            customer_id: None,
            viewer: viewer.clone(),
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
            per_file: Some(args.chunks_per_page),
        };
        hits.extend(index.search(&store, &request).await?);
    }
    // One index, one scoring: the best k of all organisations.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(args.k);
    if hits.is_empty() && !args.json {
        if let Some(why) = why_nothing(&store, &index, &args).await? {
            eprintln!("{why}");
        }
    }
    print_hits(&hits, args.json)
}

/// The viewer with its Confluence groups as ids: a group may be given by
/// its name (as people know it), which the synced sites' group lists
/// turn into its id. A name no site has is kept as given (it may be an
/// id), and said.
pub(crate) async fn with_group_ids(
    mut viewer: Viewer,
    store: &store::Store,
) -> anyhow::Result<Viewer> {
    let mut groups = Vec::new();
    for group in std::mem::take(&mut viewer.confluence_groups) {
        let ids = store.group_ids_named(&group).await?;
        if ids.is_empty() {
            groups.push(group);
        } else {
            groups.extend(ids);
        }
    }
    groups.sort();
    groups.dedup();
    viewer.confluence_groups = groups;
    Ok(viewer)
}

/// Why a search found nothing, where the store can tell.
async fn why_nothing(
    store: &store::Store,
    index: &Index,
    args: &SearchArgs,
) -> anyhow::Result<Option<String>> {
    if index.num_chunks() == 0 {
        return Ok(Some(format!(
            "the store in {} holds nothing searchable yet (run `confsync sync`)",
            args.data_dir.display()
        )));
    }
    if args.query.matches('"').count() % 2 == 1 {
        return Ok(Some(
            "the query has an unbalanced quote: it was searched as words".into(),
        ));
    }
    if !args.spaces.is_empty() {
        let mut known = std::collections::BTreeSet::new();
        for connection in store.connections().await? {
            for space in store.spaces(&connection.id).await? {
                known.insert(space.key);
            }
        }
        let unknown: Vec<&String> = args.spaces.iter().filter(|k| !known.contains(*k)).collect();
        if !unknown.is_empty() {
            return Ok(Some(format!(
                "no space with the key {} is synced here",
                unknown
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(None)
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
