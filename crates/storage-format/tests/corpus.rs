//! The corpus test over ../shared/corpus (md2conf and mark): for every pair
//! of source Markdown and the storage format a publishing tool made of it,
//! the Markdown we produce carries the words of the source that the storage
//! format still holds (recall at least 0.95), keeps headings, lists, tables,
//! code blocks and links, and leaks no storage markup.

use std::collections::BTreeSet;
use std::path::PathBuf;
use storage_format::{to_markdown, NoResolver};

fn corpus_dir() -> PathBuf {
    let shared = std::env::var("CONFSYNC_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("corpus")
}

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

/// The words in the storage format's text (CDATA included), entities decoded.
fn storage_words(storage: &str) -> BTreeSet<String> {
    let mut text = String::new();
    let mut rest = storage;
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        text.push(' ');
        rest = &rest[at..];
        if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            text.push_str(&cdata[..end]);
            rest = cdata.get(end + 3..).unwrap_or("");
        } else {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            rest = &rest[end..];
            // Macro parameters are configuration (colours, ids, flags), not
            // text, except those that carry it.
            if tag.starts_with("<ac:parameter")
                && !tag.contains("\"title\"")
                && !tag.contains("\"body\"")
            {
                let close = rest.find("</ac:parameter>").map_or(rest.len(), |e| e + 15);
                rest = &rest[close..];
            }
        }
    }
    text.push_str(rest);
    let text = text
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    words(&text)
}

fn pairs() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for (tool, extension) in [("md2conf", "xml"), ("mark", "html")] {
        let dir = corpus_dir().join(tool);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut names: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        names.sort();
        for storage in names
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == extension))
        {
            let stem = storage.file_stem().unwrap().to_string_lossy().to_string();
            // mark renders variants of one source: name-droph1.html...
            let candidates = [
                stem.clone(),
                stem.rsplit_once('-')
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_default(),
            ];
            if let Some(md) = candidates
                .iter()
                .map(|c| dir.join(format!("{c}.md")))
                .find(|p| p.exists())
            {
                out.push((format!("{tool}/{stem}"), storage.clone(), md));
            }
        }
    }
    out
}

#[test]
fn corpus_words_structure_and_no_leaks() {
    let pairs = pairs();
    assert!(
        pairs.len() > 60,
        "the corpus is there: {} pairs",
        pairs.len()
    );
    let mut failures = Vec::new();
    let mut total_target = 0;
    let mut total_found = 0;
    for (name, storage_path, md_path) in &pairs {
        let storage = std::fs::read_to_string(storage_path).unwrap();
        let source = std::fs::read_to_string(md_path).unwrap();
        let converted = to_markdown(&storage, &NoResolver);
        let output = &converted.output;
        let target: BTreeSet<String> = words(&source)
            .intersection(&storage_words(&storage))
            .cloned()
            .collect();
        let produced = words(output);
        let found = target.iter().filter(|w| produced.contains(*w)).count();
        total_target += target.len();
        total_found += found;
        let recall = if target.is_empty() {
            1.0
        } else {
            found as f64 / target.len() as f64
        };
        if recall < 0.95 {
            let missing: Vec<_> = target
                .iter()
                .filter(|w| !produced.contains(*w))
                .take(12)
                .collect();
            failures.push(format!("{name}: recall {recall:.3}, missing {missing:?}"));
        }
        for leak in [
            "<ac:",
            "</ac:",
            "<ri:",
            "ac:name",
            "ri:filename",
            "ac:macro-id",
            "ac:schema-version",
            "ri:content-title",
        ] {
            if output.contains(leak) {
                failures.push(format!("{name}: leaks {leak}"));
            }
        }
        let has = |tag: &str| storage.contains(tag);
        if (has("<h1") || has("<h2") || has("<h3")) && !output.lines().any(|l| l.starts_with('#')) {
            failures.push(format!("{name}: headings lost"));
        }
        if has("<table") && !output.contains("| --- |") {
            failures.push(format!("{name}: table lost"));
        }
        if (has("<ul") || has("<ol"))
            && !output.lines().any(|l| {
                let t = l.trim_start();
                t.starts_with("- ")
                    || t.split_once(". ")
                        .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
            })
        {
            failures.push(format!("{name}: lists lost"));
        }
        if has("ac:name=\"code\"") && !output.contains("```") {
            failures.push(format!("{name}: code block lost"));
        }
        if has("<a href=\"http") && !output.contains("](http") {
            failures.push(format!("{name}: links lost"));
        }
    }
    let overall = total_found as f64 / total_target.max(1) as f64;
    println!(
        "corpus: {} pairs, overall word recall {overall:.4}",
        pairs.len()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
