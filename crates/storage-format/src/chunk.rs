//! Structure-aware chunks of Markdown: split by sections (headings), then
//! by blocks (paragraphs, lists, tables, code), tables by rows with their
//! header repeated, code by lines with its fence repeated, and only then by
//! words. Chunks are sized in tokens, estimated as four bytes a token (the
//! ratio of English text in the BPE tokenizers that Carbon's sizes count),
//! and overlap by a few tokens. Each carries its heading path and the byte
//! range of the Markdown it covers.

use serde::Serialize;

#[derive(Clone, Debug)]
pub struct ChunkOptions {
    /// Tokens a chunk holds at most (Carbon's default: 1500).
    pub chunk_size: usize,
    /// Tokens of the previous chunk repeated at the start of the next
    /// (Carbon's default: 20).
    pub overlap: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            chunk_size: 1500,
            overlap: 20,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chunk {
    pub text: String,
    pub heading_path: Vec<String>,
    /// Byte range of the Markdown this chunk's own content comes from (the
    /// overlap excluded).
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
}

pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

#[derive(Debug)]
struct Block {
    start: usize,
    end: usize,
    heading: Option<(usize, String)>,
}

fn fence_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let run = trimmed.chars().take_while(|c| *c == '`').count();
    if run >= 3 {
        return Some(&trimmed[..run]);
    }
    let run = trimmed.chars().take_while(|c| *c == '~').count();
    (run >= 3).then(|| &trimmed[..run])
}

fn heading_of(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&level) && line[level..].starts_with(' ') {
        Some((level, line[level..].trim().to_string()))
    } else {
        None
    }
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut fence: Option<String> = None;
    let mut offset = 0;
    for line in markdown.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if let Some(open) = &fence {
            if fence_of(content).is_some_and(|f| f.starts_with(open.as_str())) {
                fence = None;
            }
            continue;
        }
        if let Some(f) = fence_of(content) {
            fence = Some(f.to_string());
            start.get_or_insert(line_start);
            continue;
        }
        if content.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(Block {
                    start: s,
                    end: line_start,
                    heading: None,
                });
            }
            continue;
        }
        if let Some(heading) = heading_of(content) {
            if let Some(s) = start.take() {
                out.push(Block {
                    start: s,
                    end: line_start,
                    heading: None,
                });
            }
            out.push(Block {
                start: line_start,
                end: offset,
                heading: Some(heading),
            });
            continue;
        }
        start.get_or_insert(line_start);
    }
    if let Some(s) = start {
        out.push(Block {
            start: s,
            end: markdown.len(),
            heading: None,
        });
    }
    out
}

/// Splits an oversized block into pieces that fit, by its structure.
fn pieces(markdown: &str, start: usize, end: usize, budget: usize) -> Vec<(usize, usize, String)> {
    let text = &markdown[start..end];
    if estimate_tokens(text) <= budget {
        return vec![(start, end, text.trim_end().to_string())];
    }
    let lines: Vec<(usize, &str)> = {
        let mut offset = start;
        text.split_inclusive('\n')
            .map(|l| {
                let at = offset;
                offset += l.len();
                (at, l)
            })
            .collect()
    };
    let first = lines.first().map(|(_, l)| l.trim_end()).unwrap_or("");
    let is_table = first.starts_with('|');
    let fence = fence_of(first).map(|f| (first.to_string(), f.to_string()));
    // What each piece repeats: a table's header and separator, a code
    // block's opening fence (its closing fence is added back).
    let (prefix, body): (String, &[(usize, &str)]) = if is_table && lines.len() > 2 {
        (format!("{}{}", lines[0].1, lines[1].1), &lines[2..])
    } else if let Some((open, _)) = &fence {
        let last = lines.len().saturating_sub(1);
        (format!("{open}\n"), &lines[1..last.max(1)])
    } else {
        (String::new(), &lines[..])
    };
    let suffix = fence
        .as_ref()
        .map(|(_, f)| format!("\n{f}"))
        .unwrap_or_default();
    let room = budget
        .saturating_sub(estimate_tokens(&prefix) + estimate_tokens(&suffix))
        .max(8);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_start = start;
    let mut current_end = start;
    let flush =
        |current: &mut String, s: usize, e: usize, out: &mut Vec<(usize, usize, String)>| {
            if !current.trim().is_empty() {
                out.push((s, e, format!("{prefix}{}{suffix}", current.trim_end())));
            }
            current.clear();
        };
    for &(at, line) in body {
        if estimate_tokens(line) > room {
            // One line longer than a chunk: by words.
            flush(&mut current, current_start, current_end, &mut out);
            let mut words = String::new();
            for word in line.split_inclusive(' ') {
                if estimate_tokens(&words) + estimate_tokens(word) > room && !words.is_empty() {
                    out.push((
                        at,
                        at + line.len(),
                        format!("{prefix}{}{suffix}", words.trim_end()),
                    ));
                    words.clear();
                }
                words.push_str(word);
            }
            if !words.trim().is_empty() {
                out.push((
                    at,
                    at + line.len(),
                    format!("{prefix}{}{suffix}", words.trim_end()),
                ));
            }
            current_start = at + line.len();
            current_end = current_start;
            continue;
        }
        if estimate_tokens(&current) + estimate_tokens(line) > room && !current.is_empty() {
            flush(&mut current, current_start, current_end, &mut out);
            current_start = at;
        }
        if current.is_empty() {
            current_start = at;
        }
        current.push_str(line);
        current_end = at + line.len();
    }
    flush(&mut current, current_start, current_end, &mut out);
    out
}

fn tail_tokens(text: &str, tokens: usize) -> &str {
    if tokens == 0 {
        return "";
    }
    let bytes = tokens * 4;
    if text.len() <= bytes {
        return text;
    }
    let mut at = text.len() - bytes;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    // Start at a word.
    match text[at..].find(char::is_whitespace) {
        Some(space) => text[at + space..].trim_start(),
        None => &text[at..],
    }
}

pub fn chunk(markdown: &str, options: &ChunkOptions) -> Vec<Chunk> {
    let size = options.chunk_size.max(16);
    let overlap = options.overlap.min(size / 4);
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut current: Vec<(usize, usize, String)> = Vec::new();
    let mut current_path: Vec<String> = Vec::new();

    let emit = |current: &mut Vec<(usize, usize, String)>,
                heading_path: &[String],
                chunks: &mut Vec<Chunk>| {
        if current.is_empty() {
            return;
        }
        let body = current
            .iter()
            .map(|(_, _, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let start = current.first().map(|c| c.0).unwrap_or(0);
        let end = current.last().map(|c| c.1).unwrap_or(start);
        let text = match chunks.last() {
            Some(previous) if overlap > 0 => {
                let tail = tail_tokens(&previous.text, overlap);
                // An overlap cut from a code block would unbalance fences.
                if tail.is_empty() || tail.contains("```") || tail.contains("~~~") {
                    body
                } else {
                    format!("{tail}\n\n{body}")
                }
            }
            _ => body,
        };
        chunks.push(Chunk {
            tokens: estimate_tokens(&text),
            text,
            heading_path: heading_path.to_vec(),
            start,
            end,
        });
        current.clear();
    };

    let budget = size.saturating_sub(overlap).max(8);
    let mut has_body = false;
    for block in blocks(markdown) {
        if let Some((level, title)) = &block.heading {
            // A new section starts a new chunk.
            emit(&mut current, &current_path, &mut chunks);
            has_body = false;
            path.retain(|(l, _)| l < level);
            path.push((*level, title.clone()));
            current_path = path.iter().map(|(_, t)| t.clone()).collect();
        }
        for piece in pieces(markdown, block.start, block.end, budget) {
            let used: usize = current.iter().map(|(_, _, t)| estimate_tokens(t) + 1).sum();
            // A heading stays with what follows it, never alone.
            if used + estimate_tokens(&piece.2) > budget && has_body {
                emit(&mut current, &current_path, &mut chunks);
                has_body = false;
            }
            has_body |= block.heading.is_none();
            current.push(piece);
        }
    }
    emit(&mut current, &current_path, &mut chunks);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_blocks_tables_and_code_split_by_structure() {
        let mut md =
            String::from("# Guide\n\nIntro paragraph.\n\n## Table\n\n| a | b |\n| --- | --- |\n");
        for i in 0..200 {
            md.push_str(&format!("| row {i} | value {i} |\n"));
        }
        md.push_str("\n## Code\n\n```rust\n");
        for i in 0..200 {
            md.push_str(&format!("let x{i} = {i};\n"));
        }
        md.push_str("```\n");
        let chunks = chunk(
            &md,
            &ChunkOptions {
                chunk_size: 200,
                overlap: 10,
            },
        );
        assert!(chunks.len() > 4);
        for c in &chunks {
            // A heading may ride along over the budget.
            assert!(c.tokens <= 200 + 12 + 5, "{} tokens", c.tokens);
            assert!(c.start <= c.end && c.end <= md.len());
        }
        assert_eq!(chunks[0].heading_path, vec!["Guide".to_string()]);
        let table_chunks: Vec<_> = chunks
            .iter()
            .filter(|c| c.heading_path.last().map(String::as_str) == Some("Table"))
            .collect();
        assert!(table_chunks.len() > 1);
        for c in &table_chunks {
            assert!(
                c.text.contains("| a | b |"),
                "the header repeats: {}",
                c.text
            );
        }
        let code_chunks: Vec<_> = chunks
            .iter()
            .filter(|c| c.heading_path.last().map(String::as_str) == Some("Code"))
            .collect();
        for c in &code_chunks {
            let fences = c.text.matches("```").count();
            assert!(
                fences >= 2 && fences % 2 == 0,
                "code stays fenced: {}",
                c.text
            );
        }
    }

    #[test]
    fn defaults_keep_a_small_page_whole() {
        let chunks = chunk("# A\n\ntext\n", &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "# A\n\ntext");
        assert!(chunk("", &ChunkOptions::default()).is_empty());
    }
}
