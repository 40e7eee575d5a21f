//! Hostile input: extreme nesting, large pages, and arbitrary markup. The
//! converter returns, keeps the text, leaks no storage markup, and chunks
//! stay within their bounds. (Speed is measured by the benchmark, never
//! asserted here.)

use proptest::prelude::*;
use storage_format::{chunk, to_markdown, to_text, ChunkOptions, NoResolver};

#[test]
fn a_hundred_thousand_levels_of_nesting() {
    for tag in ["div", "ul", "ac:structured-macro", "strong", "table"] {
        let depth = 100_000;
        let mut page = String::new();
        for _ in 0..depth {
            page.push_str(&format!("<{tag}>"));
        }
        page.push_str("deep text");
        for _ in 0..depth {
            page.push_str(&format!("</{tag}>"));
        }
        let converted = to_markdown(&page, &NoResolver);
        assert!(converted.output.contains("deep text"), "{tag}");
        // And unclosed, too.
        let unclosed = format!("{}deep text", format!("<{tag}>").repeat(depth));
        let converted = to_markdown(&unclosed, &NoResolver);
        assert!(converted.output.contains("deep text"), "{tag} unclosed");
        assert!(!converted.warnings.is_empty());
    }
}

#[test]
fn a_ten_megabyte_page() {
    let block = "<h2>Section</h2><p>Some <strong>bold</strong> text &amp; a <ac:link><ri:page ri:content-title=\"Other\"/></ac:link>.</p>\
                 <table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>\
                 <ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[let x = 1;]]></ac:plain-text-body></ac:structured-macro>";
    let page = block.repeat(10 * 1024 * 1024 / block.len() + 1);
    assert!(page.len() >= 10 * 1024 * 1024);
    let converted = to_markdown(&page, &NoResolver);
    assert!(converted.output.len() > 1_000_000);
    let chunks = chunk(&converted.output, &ChunkOptions::default());
    assert!(chunks.len() > 100);
    assert!(chunks.iter().all(|c| c.tokens <= 1600));
}

/// The Markdown without fenced code blocks and code spans.
fn outside_code(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        // A fence may follow list markers and quote prefixes.
        let mut content = line.trim_start();
        loop {
            let before = content;
            for prefix in ["- [x] ", "- [ ] ", "- ", "> ", ">"] {
                content = content.strip_prefix(prefix).unwrap_or(content).trim_start();
            }
            if let Some((n, rest)) = content.split_once(". ") {
                if n.parse::<u64>().is_ok() {
                    content = rest.trim_start();
                }
            }
            if content == before {
                break;
            }
        }
        if content.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            for (i, part) in line.split('`').enumerate() {
                if i % 2 == 0 {
                    out.push_str(part);
                }
            }
            out.push('\n');
        }
    }
    out
}

fn soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<p>".to_string()),
        Just("</p>".to_string()),
        Just("<ul><li>".to_string()),
        Just("</li></ul>".to_string()),
        Just("<table><tr><td>".to_string()),
        Just("</td></tr></table>".to_string()),
        Just("<ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[".to_string()),
        Just("]]></ac:plain-text-body></ac:structured-macro>".to_string()),
        Just("<ac:structured-macro ac:name=\"info\"><ac:parameter ac:name=\"title\">T".to_string()),
        Just("</ac:parameter><ac:rich-text-body>".to_string()),
        Just("</ac:rich-text-body></ac:structured-macro>".to_string()),
        Just("<ac:link><ri:page ri:content-title=\"X\"/>".to_string()),
        Just("</ac:link>".to_string()),
        Just(
            "<ac:task-list><ac:task><ac:task-status>complete</ac:task-status><ac:task-body>"
                .to_string()
        ),
        Just("<strong>".to_string()),
        Just("</em>".to_string()),
        Just("&nbsp;&amp;&#x41;&bogus;&".to_string()),
        Just("<a href=unquoted>".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        "[a-z ]{0,12}".prop_map(|s| s),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_markup_converts_without_leaking_storage_elements(input in soup()) {
        let markdown = to_markdown(&input, &NoResolver);
        let _ = to_text(&input, &NoResolver);
        // Code may quote markup; everything else must not carry it.
        let prose = outside_code(&markdown.output);
        // Escaped (`\<ac:`) is text that quotes markup, not markup; and
        // CDATA may carry markup as text, which then stays text.
        let raw = |needle: &str| prose.match_indices(needle).any(|(at, _)| !prose[..at].ends_with('\\'));
        if !input.contains("<![CDATA[") {
            prop_assert!(!raw("<ac:") && !raw("<ri:"), "{}", markdown.output);
        }
        let chunks = chunk(&markdown.output, &ChunkOptions { chunk_size: 64, overlap: 4 });
        for c in &chunks {
            prop_assert!(c.start <= c.end && c.end <= markdown.output.len());
            prop_assert!(markdown.output.is_char_boundary(c.start) && markdown.output.is_char_boundary(c.end));
        }
    }

    #[test]
    fn words_of_plain_paragraphs_survive(words in prop::collection::vec("[a-z]{2,10}", 1..40)) {
        let page: String = words.iter().map(|w| format!("<p>{w}</p>")).collect();
        let output = to_markdown(&page, &NoResolver).output;
        for w in &words {
            prop_assert!(output.contains(w.as_str()));
        }
    }
}
