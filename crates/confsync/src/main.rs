//! The `confsync` command line: `demo`, `serve`, `admin`, `sync`, `search` and `status`
//! over the embedded store and index, `convert` (storage format to Markdown, text or chunks),
//! and `sim`, the Confluence simulator. Logs go to stderr; stdout
//! carries only output meant for machines (JSON lines).

#![forbid(unsafe_code)]

mod cli_connections;
mod cli_mcp;
mod cli_search;
mod cli_serve;
mod cli_sync;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "confsync",
    version,
    about = "Self-hosted Confluence knowledge connector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The demo: a simulated Confluence site, connected and synced through the HTTP API
    Demo(cli_serve::DemoArgs),
    /// Serve the HTTP API (Carbon-compatible), with sync workers and the scheduler
    Serve(cli_serve::ServeArgs),
    /// Organisations and their API keys
    #[command(subcommand)]
    Admin(cli_serve::AdminCommand),
    /// Sync a Confluence site into the store (resuming an unfinished sync)
    Sync(cli_sync::SyncArgs),
    /// Show connections, what they hold and their last syncs
    Status(cli_sync::StatusArgs),
    /// List, show or remove the store's connections
    #[command(subcommand)]
    Connections(cli_connections::ConnectionsCommand),
    /// Search the synced content as a viewer
    Search(cli_search::SearchArgs),
    /// Serve the synced content to an AI agent over MCP (stdio)
    Mcp(cli_mcp::McpArgs),
    /// Convert a storage-format page to Markdown, text or chunks (JSON lines)
    Convert(ConvertArgs),
    /// Serve a simulated Confluence Cloud site (for tests, benchmarks and the demo)
    Sim(SimArgs),
}

#[derive(Args)]
struct ConvertArgs {
    /// What to print
    #[arg(long, value_enum, default_value = "markdown")]
    format: ConvertFormat,
    /// Tokens a chunk holds at most
    #[arg(long, default_value_t = 1500)]
    chunk_size: usize,
    /// Tokens of overlap between chunks
    #[arg(long, default_value_t = 20)]
    chunk_overlap: usize,
    /// The storage-format file; `-` or nothing for standard input
    file: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConvertFormat {
    Markdown,
    Text,
    Chunks,
}

/// Never fails on a page's content: warnings go to stderr, output to
/// stdout. Input that is not text (an executable, an image) is refused
/// before it is read whole, and text is converted in place, without a
/// copy.
fn run_convert(args: ConvertArgs) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let (name, mut reader): (String, Box<dyn Read>) = match args.file.as_deref() {
        None => ("standard input".into(), Box::new(std::io::stdin().lock())),
        Some(path) if path.as_os_str() == "-" => {
            ("standard input".into(), Box::new(std::io::stdin().lock()))
        }
        Some(path) => (
            path.display().to_string(),
            Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            ),
        ),
    };
    // The first block decides: binary files show a NUL byte or invalid
    // UTF-8 within their first kilobytes.
    let mut bytes = Vec::new();
    (&mut reader)
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {name}"))?;
    check_text(&bytes, &name)?;
    reader
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {name}"))?;
    if let Some(at) = memchr_nul(&bytes) {
        anyhow::bail!(
            "{name} is not text (a NUL byte at offset {at}): convert takes a storage-format page (XHTML)"
        );
    }
    let input = std::str::from_utf8(&bytes).map_err(|e| not_text(&name, e.valid_up_to()))?;
    let resolver = storage_format::NoResolver;
    let converted = match args.format {
        ConvertFormat::Text => storage_format::to_text(input, &resolver),
        ConvertFormat::Markdown | ConvertFormat::Chunks => {
            storage_format::to_markdown(input, &resolver)
        }
    };
    drop(bytes);
    for warning in &converted.warnings {
        tracing::warn!(offset = warning.offset, "{}", warning.message);
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        ConvertFormat::Chunks => {
            let options = storage_format::ChunkOptions {
                chunk_size: args.chunk_size,
                overlap: args.chunk_overlap,
            };
            for chunk in storage_format::chunk(&converted.output, &options) {
                writeln!(out, "{}", serde_json::to_string(&chunk)?)?;
            }
        }
        _ => out.write_all(converted.output.as_bytes())?,
    }
    Ok(())
}

/// Refuses a first block that is not UTF-8 text: a NUL byte, or invalid
/// UTF-8 (a character cut in two by the block's end is allowed).
fn check_text(bytes: &[u8], name: &str) -> anyhow::Result<()> {
    if let Some(at) = memchr_nul(bytes) {
        anyhow::bail!(
            "{name} is not text (a NUL byte at offset {at}): convert takes a storage-format page (XHTML)"
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        // A character cut by the block's end.
        Err(e) if e.error_len().is_none() => Ok(()),
        Err(e) => Err(not_text(name, e.valid_up_to())),
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

fn not_text(name: &str, at: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "{name} is not UTF-8 text (invalid at byte {at}): convert takes a storage-format page (XHTML)"
    )
}

#[derive(Args)]
struct SimArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:0", env = "CONFSYNC_SIM_ADDR")]
    addr: SocketAddr,
    /// Seed of the generated site: the same seed gives the same site
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of spaces (every fifth is a personal space)
    #[arg(long, default_value_t = 5)]
    spaces: u32,
    /// Number of pages, spread over the spaces (blog posts come in addition)
    #[arg(long, default_value_t = 200)]
    pages: u32,
    /// Lifetime of OAuth access tokens, in seconds
    #[arg(long, default_value_t = 3600)]
    access_token_ttl: u64,
    /// Token-bucket rate limit per credential, as CAPACITY/REFILL_PER_SECOND (e.g. 100/10)
    #[arg(long)]
    rate_limit: Option<String>,
    /// Probability in [0, 1] that an API request is answered with a fault
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed for the random faults
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Latency added to every API request, in milliseconds
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

fn parse_rate_limit(text: &str) -> anyhow::Result<confluence_sim::RateLimitConfig> {
    let (capacity, refill) = text
        .split_once('/')
        .context("--rate-limit takes CAPACITY/REFILL_PER_SECOND, e.g. 100/10")?;
    let config = confluence_sim::RateLimitConfig {
        capacity: capacity
            .trim()
            .parse()
            .context("rate-limit capacity is not a number")?,
        refill_per_second: refill
            .trim()
            .parse()
            .context("rate-limit refill is not a number")?,
    };
    anyhow::ensure!(
        config.capacity >= 1.0 && config.refill_per_second > 0.0,
        "rate-limit capacity must be at least 1 and refill above 0"
    );
    Ok(config)
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fault_rate),
        "--fault-rate must be between 0 and 1"
    );
    let config = confluence_sim::SimConfig {
        site: confluence_sim::SiteConfig {
            seed: args.seed,
            spaces: args.spaces,
            pages: args.pages,
        },
        access_token_ttl: Duration::from_secs(args.access_token_ttl.max(1)),
        faults: confluence_sim::FaultConfig {
            rate: args.fault_rate,
            seed: args.fault_seed,
            latency_ms: args.latency_ms,
            ..Default::default()
        },
        rate_limit: args
            .rate_limit
            .as_deref()
            .map(parse_rate_limit)
            .transpose()?,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let running = confluence_sim::Simulator::spawn(config, args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    // The first line on stdout is the machine-readable handshake.
    println!("{}", serde_json::to_string(&running.credentials())?);
    let counts = running.with_site(|site| (site.content.len(), site.attachments.len()));
    tracing::info!(
        base_url = %running.base_url(),
        content = counts.0,
        attachments = counts.1,
        generated_in_ms = started.elapsed().as_millis() as u64,
        "simulator serving"
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}

/// The store a command works on: the embedded one under `data_dir`, or the
/// one `database_url` names.
pub(crate) async fn open_store(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<store::Store> {
    use anyhow::Context;
    if database_url.is_none_or(|url| url.starts_with("sqlite:")) {
        check_data_dir(data_dir)?;
    }
    store::Store::open_url(database_url, data_dir)
        .await
        .with_context(|| match database_url {
            Some(url) => format!("opening the store at {}", store::redact_url(url)),
            None => format!("opening the store in {}", data_dir.display()),
        })
}

/// A data directory the embedded store can live in, or one line that
/// says why not (a file in its place, no permission, a read-only disk).
pub(crate) fn check_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let shown = data_dir.display();
    if data_dir.exists() && !data_dir.is_dir() {
        anyhow::bail!("the data directory {shown} is a file, not a directory");
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create the data directory {shown}: {}", io_cause(&e))
    })?;
    let probe = data_dir.join(".confsync-write-check");
    std::fs::write(&probe, b"").map_err(|e| {
        anyhow::anyhow!(
            "cannot write in the data directory {shown}: {}",
            io_cause(&e)
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// An I/O error as a person reads it ("permission denied"), without the
/// "(os error 13)" detail.
fn io_cause(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    text.to_lowercase()
}

/// `open_store` for a command that only looks or changes what is there:
/// a data directory without a store is said to be empty, not made into a
/// new one.
pub(crate) async fn open_existing_store(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<store::Store> {
    anyhow::ensure!(
        database_url.is_some() || data_dir.join("confsync.db").exists(),
        "no store in {} (run `confsync sync` or `confsync demo` first)",
        data_dir.display()
    );
    open_store(database_url, data_dir).await
}

/// Errors print as one line of causes (no backtrace): they are for the
/// person at the terminal.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a file or
        // a log collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Demo(args) => runtime.block_on(cli_serve::demo(args)),
        Command::Serve(args) => runtime.block_on(cli_serve::serve(args)),
        Command::Admin(command) => runtime.block_on(cli_serve::admin(command)),
        Command::Sim(args) => runtime.block_on(run_sim(args)),
        Command::Convert(args) => run_convert(args),
        Command::Sync(args) => runtime.block_on(cli_sync::sync(args)),
        Command::Status(args) => runtime.block_on(cli_sync::status(args)),
        Command::Connections(command) => runtime.block_on(cli_connections::run(command)),
        Command::Search(args) => runtime.block_on(cli_search::search(args)),
        Command::Mcp(args) => runtime.block_on(cli_mcp::mcp(args)),
    }
}
