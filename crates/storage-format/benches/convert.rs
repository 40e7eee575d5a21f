//! Converter throughput on the corpus (../shared/corpus), printed as
//! figures: MB/s of storage format in, for Markdown, plain text and chunks
//! (Markdown then chunking), on one core; and adversarial inputs (a 10 MB
//! page, 100,000 levels of nesting, a page of stray `<` and `&`).
//!
//! `cargo bench -p storage-format --bench convert`

use std::path::PathBuf;
use std::time::{Duration, Instant};
use storage_format::{chunk, to_markdown, to_text, ChunkOptions, NoResolver};

fn corpus() -> Vec<String> {
    let shared = std::env::var("CONFSYNC_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let mut pages = Vec::new();
    for (tool, extension) in [("md2conf", "xml"), ("mark", "html")] {
        for entry in std::fs::read_dir(shared.join("corpus").join(tool)).expect("corpus") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == extension) {
                pages.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    pages
}

/// Runs `work` over the pages until at least `min` has passed; MB/s.
fn throughput(pages: &[String], min: Duration, work: &dyn Fn(&str) -> usize) -> f64 {
    let bytes: usize = pages.iter().map(String::len).sum();
    let mut rounds = 0usize;
    let mut sink = 0usize;
    let started = Instant::now();
    while started.elapsed() < min || rounds == 0 {
        for page in pages {
            sink = sink.wrapping_add(work(page));
        }
        rounds += 1;
    }
    std::hint::black_box(sink);
    (bytes * rounds) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn timed(name: &str, input: &str) {
    let started = Instant::now();
    let converted = to_markdown(input, &NoResolver);
    let elapsed = started.elapsed();
    println!(
        "{name:<44} {:>6.1} MB in {:>7.1} ms ({:.0} MB/s), {} warnings",
        input.len() as f64 / 1e6,
        elapsed.as_secs_f64() * 1000.0,
        input.len() as f64 / 1e6 / elapsed.as_secs_f64(),
        converted.warnings.len()
    );
}

fn main() {
    let pages = corpus();
    let bytes: usize = pages.iter().map(String::len).sum();
    println!(
        "corpus: {} pages, {:.0} KB",
        pages.len(),
        bytes as f64 / 1e3
    );
    let min = Duration::from_secs(3);
    let markdown = throughput(&pages, min, &|p| to_markdown(p, &NoResolver).output.len());
    let text = throughput(&pages, min, &|p| to_text(p, &NoResolver).output.len());
    let options = ChunkOptions::default();
    let chunks = throughput(&pages, min, &|p| {
        chunk(&to_markdown(p, &NoResolver).output, &options).len()
    });
    println!("markdown {markdown:>7.1} MB/s   text {text:>7.1} MB/s   chunks {chunks:>7.1} MB/s (one core)");

    let big = pages.concat().repeat(10 * 1024 * 1024 / bytes + 1);
    timed("10 MB page (the corpus, repeated)", &big);
    let nested = format!(
        "{}text{}",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    timed("100,000 levels of <div>", &nested);
    let unclosed = format!("{}text", "<ul><li>".repeat(100_000));
    timed("100,000 unclosed <ul><li>", &unclosed);
    let stray = "a < b & c <<< &&& <x y=1 z".repeat(400_000);
    timed("10 MB of stray < and & and broken tags", &stray);
    let attributes = format!("<p {}>x</p>", "a=1 ".repeat(2_500_000));
    timed("one tag with 2.5 million attributes", &attributes);
}
