//! Renders a parsed page as Markdown (CommonMark with GFM tables, task
//! lists and alerts) or as plain text. One walk serves both; the mode
//! decides the syntax. Recursion is bounded: below `MAX_DEPTH` a subtree is
//! rendered as its text, iteratively, so no input can exhaust the stack.

use std::fmt::Write;

use crate::parse::{Document, Kind, NodeId, ROOT};
use crate::{Resolver, Warning};

const MAX_DEPTH: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Markdown,
    Text,
}

pub struct Renderer<'a> {
    doc: &'a Document<'a>,
    resolver: &'a dyn Resolver,
    mode: Mode,
    pub warnings: Vec<Warning>,
    depth: usize,
    /// Inside a table cell: line breaks become `<br>`, blocks are joined.
    in_cell: usize,
    /// Spent strings, reused: the renderer makes one for each inline
    /// element it wraps, and allocation was a third of its time.
    pool: Vec<String>,
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "table"
            | "pre"
            | "blockquote"
            | "hr"
            | "div"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "aside"
            | "nav"
            | "figure"
            | "dl"
            | "ac:layout"
            | "ac:layout-section"
            | "ac:layout-cell"
            | "ac:task-list"
            | "ac:rich-text-body"
            | "thead"
            | "tbody"
            | "tr"
            | "li"
            | "center"
            | "details"
            | "summary"
            | "main"
    )
}

/// Macros that render inline (inside a paragraph).
fn is_inline_macro(name: &str) -> bool {
    matches!(name, "status" | "jira" | "anchor" | "mention" | "emoticon")
}

fn emoji(name: &str) -> &'static str {
    match name {
        "smile" => "🙂",
        "sad" => "🙁",
        "cheeky" => "😛",
        "laugh" => "😀",
        "wink" => "😉",
        "thumbs-up" => "👍",
        "thumbs-down" => "👎",
        "information" => "ℹ️",
        "tick" => "✅",
        "cross" => "❌",
        "warning" => "⚠️",
        "plus" => "➕",
        "minus" => "➖",
        "question" => "❓",
        "light-on" => "💡",
        "light-off" => "🌑",
        "yellow-star" | "red-star" | "green-star" | "blue-star" => "⭐",
        "heart" => "❤️",
        "broken-heart" => "💔",
        _ => "",
    }
}

/// Escapes what would otherwise turn into Markdown syntax.
fn escape_markdown(text: &str, out: &mut String) {
    let mut previous: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '|' => {
                out.push('\\');
                out.push(c);
            }
            // Intraword underscores are not emphasis in CommonMark.
            '_' => {
                let inner = previous.is_some_and(char::is_alphanumeric)
                    && chars.peek().is_some_and(|n| n.is_alphanumeric());
                if !inner {
                    out.push('\\');
                }
                out.push('_');
            }
            _ => out.push(c),
        }
        previous = Some(c);
    }
}

/// Text into `out` in one pass: whitespace runs collapsed to one space (NBSP
/// included), none at the start of a line or after a space, and Markdown
/// syntax escaped when `markdown`.
fn push_text(text: &str, out: &mut String, markdown: bool) {
    out.reserve(text.len());
    let mut space = out.is_empty() || out.ends_with(' ') || out.ends_with('\n');
    let bytes = text.as_bytes();
    let special = |b: u8| {
        b.is_ascii_whitespace()
            || b >= 0x80
            || (markdown && matches!(b, b'\\' | b'`' | b'*' | b'[' | b']' | b'<' | b'|' | b'_'))
    };
    let mut pos = 0;
    while pos < bytes.len() {
        // A run of plain ASCII goes in at once.
        let run_start = pos;
        while pos < bytes.len() && !special(bytes[pos]) {
            pos += 1;
        }
        if pos > run_start {
            out.push_str(&text[run_start..pos]);
            space = false;
        }
        if pos >= bytes.len() {
            break;
        }
        let c = text[pos..].chars().next().unwrap_or(' ');
        let width = c.len_utf8();
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            if markdown {
                match c {
                    '\\' | '`' | '*' | '[' | ']' | '<' | '|' => out.push('\\'),
                    // Intraword underscores are not emphasis in CommonMark.
                    '_' => {
                        let before = text[..pos]
                            .chars()
                            .next_back()
                            .or_else(|| out.chars().next_back());
                        let after = text[pos + 1..].chars().next();
                        let inner = before.is_some_and(char::is_alphanumeric)
                            && after.is_some_and(char::is_alphanumeric);
                        if !inner {
                            out.push('\\');
                        }
                    }
                    _ => {}
                }
            }
            out.push(c);
            space = false;
        }
        pos += width;
    }
}

/// A URL as a Markdown link destination: parentheses encoded so that they
/// cannot end it.
fn markdown_url(url: &str) -> String {
    url.replace(')', "%29").replace('(', "%28")
}

/// Collapses whitespace runs to one space, as HTML does.
fn collapse(text: &str, out: &mut String) {
    let mut space = out.ends_with(' ');
    for c in text.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            out.push(c);
            space = false;
        }
    }
}

fn fence_for(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

impl<'a> Renderer<'a> {
    pub fn new(doc: &'a Document<'a>, resolver: &'a dyn Resolver, mode: Mode) -> Self {
        Renderer {
            doc,
            resolver,
            mode,
            warnings: Vec::new(),
            depth: 0,
            in_cell: 0,
            pool: Vec::new(),
        }
    }

    fn md(&self) -> bool {
        self.mode == Mode::Markdown
    }

    pub fn render(&mut self) -> String {
        let blocks = self.blocks(ROOT);
        let mut out = blocks.join("\n\n");
        if !out.is_empty() {
            out.push('\n');
        }
        out
    }

    /// The children of `id` as blocks: runs of inline content become
    /// paragraphs; block elements render as themselves.
    fn blocks(&mut self, id: NodeId) -> Vec<String> {
        let mut out = Vec::new();
        if self.depth > MAX_DEPTH {
            let text = self.doc.text(id);
            let mut collapsed = String::new();
            collapse(&text, &mut collapsed);
            let trimmed = collapsed.trim();
            if !trimmed.is_empty() {
                out.push(trimmed.to_string());
            }
            if self.warnings.len() < 100 {
                self.warnings.push(Warning {
                    offset: 0,
                    message: format!("nesting deeper than {MAX_DEPTH}: flattened to text"),
                });
            }
            return out;
        }
        self.depth += 1;
        let mut paragraph = String::new();
        let doc = self.doc;
        for child in doc.children(id) {
            let block_name = match doc.name(child) {
                Some(name) if is_block(name) => Some(name),
                Some(name)
                    if name == "ac:structured-macro"
                        && !is_inline_macro(&self.macro_name(child)) =>
                {
                    Some(name)
                }
                _ => None,
            };
            match block_name {
                Some(name) => {
                    self.flush(&mut paragraph, &mut out);
                    self.block(child, name, &mut out);
                }
                None => self.inline_node(child, &mut paragraph),
            }
        }
        self.flush(&mut paragraph, &mut out);
        self.depth -= 1;
        out
    }

    fn flush(&self, paragraph: &mut String, out: &mut Vec<String>) {
        let trimmed = paragraph.trim();
        if !trimmed.is_empty() {
            out.push(trimmed.to_string());
        }
        paragraph.clear();
    }

    fn macro_name(&self, id: NodeId) -> std::borrow::Cow<'a, str> {
        let doc: &'a Document<'a> = self.doc;
        let name = doc.attr(id, "ac:name").unwrap_or("");
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }

    fn block(&mut self, id: NodeId, name: &str, out: &mut Vec<String>) {
        match name {
            "p" | "summary" => {
                let text = self.inline(id);
                let text = self.trimmed(text);
                if text.is_empty() {
                    self.give(text);
                } else {
                    out.push(text);
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let text = self.inline(id);
                let text = text.trim();
                if !text.is_empty() {
                    let level = name.as_bytes()[1] - b'0';
                    if self.md() && self.in_cell == 0 {
                        out.push(format!("{} {}", "#".repeat(level as usize), text));
                    } else {
                        out.push(text.to_string());
                    }
                }
            }
            "ul" | "ol" => {
                let list = self.list(id, name == "ol");
                if !list.is_empty() {
                    out.push(list);
                }
            }
            "ac:task-list" => {
                let list = self.task_list(id);
                if !list.is_empty() {
                    out.push(list);
                }
            }
            "table" => {
                let table = self.table(id);
                if !table.is_empty() {
                    out.push(table);
                }
            }
            "pre" => {
                let body = self.doc.text(id);
                out.push(self.code_block(body.trim_end_matches('\n'), ""));
            }
            "blockquote" => {
                let inner = self.blocks(id).join("\n\n");
                if !inner.is_empty() {
                    out.push(self.quote(&inner));
                }
            }
            "hr" => {
                if self.md() {
                    out.push("---".into());
                }
            }
            "ac:structured-macro" => self.block_macro(id, out),
            _ => out.extend(self.blocks(id)),
        }
    }

    /// One element rendered as blocks, through `blocks` so that its depth
    /// counts against the limit.
    fn blocks_of_one(&mut self, id: NodeId) -> String {
        if self.depth > MAX_DEPTH {
            let mut out = String::new();
            collapse(&self.doc.text(id), &mut out);
            return out.trim().to_string();
        }
        self.depth += 1;
        let name = self.doc.name(id).unwrap_or("").to_string();
        let mut out = Vec::new();
        self.block(id, &name, &mut out);
        self.depth -= 1;
        out.join("\n\n")
    }

    fn quote(&self, inner: &str) -> String {
        if !self.md() {
            return inner.to_string();
        }
        let mut out = String::with_capacity(inner.len() + inner.len() / 16 + 2);
        for (i, line) in inner.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('>');
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
        }
        out
    }

    fn code_block(&self, body: &str, language: &str) -> String {
        if !self.md() {
            return body.to_string();
        }
        let fence = fence_for(body);
        format!("{fence}{language}\n{body}\n{fence}")
    }

    fn list(&mut self, id: NodeId, ordered: bool) -> String {
        let mut lines = String::new();
        let mut number = self
            .doc
            .attr(id, "start")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(1);
        let doc = self.doc;
        for item in doc.children(id) {
            match self.doc.name(item) {
                Some("li") => {}
                // Text between items, or a list nested without an <li>.
                Some("ul") | Some("ol") => {
                    let nested = self.blocks_of_one(item);
                    for line in nested.lines() {
                        if !lines.is_empty() {
                            lines.push('\n');
                        }
                        lines.push_str("   ");
                        lines.push_str(line);
                    }
                    continue;
                }
                _ => continue,
            }
            let marker = if ordered {
                let m = format!("{number}. ");
                number += 1;
                m
            } else {
                "- ".to_string()
            };
            let body = self.item_body(item);
            self.push_item(&mut lines, &marker, &body);
        }
        lines
    }

    /// An item's blocks: a nested list follows its line directly, so that
    /// the list stays tight; other blocks are separated by a blank line.
    fn item_body(&mut self, item: NodeId) -> String {
        let blocks = self.blocks(item);
        let mut body = String::new();
        for (i, block) in blocks.iter().enumerate() {
            if i > 0 {
                let nested_list = block.starts_with("- ")
                    || block
                        .split_once(". ")
                        .is_some_and(|(n, _)| n.parse::<u64>().is_ok());
                body.push_str(if nested_list { "\n" } else { "\n\n" });
            }
            body.push_str(block);
        }
        body
    }

    /// Appends a list item: the marker before its first line, the rest
    /// indented under it; lines separated by newlines.
    fn push_item(&self, lines: &mut String, marker: &str, body: &str) {
        let mut first = true;
        for line in body.lines() {
            if !lines.is_empty() {
                lines.push('\n');
            }
            if first {
                lines.push_str(marker);
                first = false;
            } else if !line.is_empty() {
                lines.extend(std::iter::repeat_n(' ', marker.len()));
            }
            lines.push_str(line);
        }
        if first {
            if !lines.is_empty() {
                lines.push('\n');
            }
            lines.push_str(marker.trim_end());
        }
    }

    fn task_list(&mut self, id: NodeId) -> String {
        let mut lines = String::new();
        let doc = self.doc;
        for task in doc.children(id) {
            if self.doc.name(task) != Some("ac:task") {
                continue;
            }
            let done = self
                .doc
                .child(task, "ac:task-status")
                .map(|s| self.doc.text(s).trim() == "complete")
                .unwrap_or(false);
            let body = match self.doc.child(task, "ac:task-body") {
                Some(body) => self.blocks(body).join("\n"),
                None => String::new(),
            };
            let marker = if done { "- [x] " } else { "- [ ] " };
            self.push_item(&mut lines, marker, &body);
        }
        lines
    }

    fn rows(&self, id: NodeId, rows: &mut Vec<NodeId>) {
        for child in self.doc.children(id) {
            match self.doc.name(child) {
                Some("tr") => rows.push(child),
                Some("thead") | Some("tbody") | Some("tfoot") => self.rows(child, rows),
                _ => {}
            }
        }
    }

    fn table(&mut self, id: NodeId) -> String {
        let mut row_ids = Vec::new();
        self.rows(id, &mut row_ids);
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header_cells = false;
        for (index, row) in row_ids.iter().enumerate() {
            let mut cells = Vec::new();
            let doc = self.doc;
            for cell in doc.children(*row) {
                let name = self.doc.name(cell);
                if name != Some("td") && name != Some("th") {
                    continue;
                }
                if index == 0 && name == Some("th") {
                    header_cells = true;
                }
                self.in_cell += 1;
                let blocks = self.blocks(cell);
                self.in_cell -= 1;
                let separator = if self.md() { "<br>" } else { " " };
                let text = blocks
                    .iter()
                    .flat_map(|b| b.lines())
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(separator);
                let span = self
                    .doc
                    .attr(cell, "colspan")
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(1)
                    .clamp(1, 64);
                cells.push(text);
                // A merged cell spans empty columns, so columns still line up.
                cells.extend(std::iter::repeat_n(String::new(), span - 1));
            }
            rows.push(cells);
        }
        rows.retain(|r| !r.is_empty());
        if rows.is_empty() {
            // Not a table in fact (no cells): keep what it holds.
            return self.blocks(id).join("\n\n");
        }
        let columns = rows.iter().map(Vec::len).max().unwrap_or(1).min(256);
        if !self.md() {
            return rows
                .iter()
                .map(|r| r.join(" | ").trim().to_string())
                .collect::<Vec<_>>()
                .join("\n");
        }
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for i in 0..columns {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let _ = write!(out, " {cell} |");
            }
            out
        };
        let mut out = Vec::new();
        // GFM needs a header row: the first row is it (it usually is one).
        let _ = header_cells;
        out.push(line(&rows[0]));
        out.push(format!("|{}", " --- |".repeat(columns)));
        for row in &rows[1..] {
            out.push(line(row));
        }
        out.join("\n")
    }

    fn block_macro(&mut self, id: NodeId, out: &mut Vec<String>) {
        let name = self.macro_name(id);
        let title = self
            .doc
            .parameter(id, "title")
            .map(|t| t.trim().to_string());
        match name.as_ref() {
            "code" | "noformat" => {
                let body = self
                    .doc
                    .child(id, "ac:plain-text-body")
                    .map(|b| self.doc.text(b))
                    .unwrap_or_default();
                let language = self
                    .doc
                    .parameter(id, "language")
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let language: String = language
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-' | '_'))
                    .collect();
                if let Some(title) = title.filter(|t| !t.is_empty()) {
                    out.push(self.emphasis(&title, "**"));
                }
                out.push(self.code_block(body.trim_matches('\n'), &language));
            }
            "info" | "note" | "warning" | "tip" | "panel" | "success" | "error" => {
                let alert = match name.as_ref() {
                    "info" => Some("NOTE"),
                    "tip" | "success" => Some("TIP"),
                    "note" => Some("WARNING"),
                    "warning" | "error" => Some("CAUTION"),
                    _ => None,
                };
                let mut inner = Vec::new();
                if let Some(title) = title.filter(|t| !t.is_empty()) {
                    inner.push(self.emphasis(&title, "**"));
                }
                if let Some(body) = self.doc.child(id, "ac:rich-text-body") {
                    inner.extend(self.blocks(body));
                }
                if inner.is_empty() {
                    return;
                }
                let inner = inner.join("\n\n");
                match (self.md() && self.in_cell == 0, alert) {
                    (true, Some(alert)) => out.push(self.quote(&format!("[!{alert}]\n{inner}"))),
                    (true, None) => out.push(self.quote(&inner)),
                    (false, _) => out.push(inner),
                }
            }
            "expand" => {
                let title = title
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "Click here to expand...".into());
                out.push(self.emphasis(&title, "**"));
                if let Some(body) = self.doc.child(id, "ac:rich-text-body") {
                    out.extend(self.blocks(body));
                }
            }
            "toc" => out.push(self.marker("Table of contents")),
            "children" => out.push(self.marker("Child pages")),
            "excerpt-include" | "include" => {
                let target = self
                    .descendant(id, "ri:page")
                    .and_then(|page| self.doc.attr(page, "ri:content-title"))
                    .map(str::to_string)
                    .unwrap_or_default();
                let label = if name == "include" {
                    "Included from"
                } else {
                    "Excerpt from"
                };
                let text = if target.trim().is_empty() {
                    label.to_string()
                } else {
                    format!("{label}: {}", target.trim())
                };
                out.push(self.marker(&text));
            }
            _ => {
                // Unknown macros keep their text: rich bodies as blocks,
                // plain bodies as code; parameters are configuration.
                if let Some(body) = self.doc.child(id, "ac:rich-text-body") {
                    if let Some(title) = title.filter(|t| !t.is_empty()) {
                        out.push(self.emphasis(&title, "**"));
                    }
                    out.extend(self.blocks(body));
                } else if let Some(body) = self.doc.child(id, "ac:plain-text-body") {
                    let text = self.doc.text(body);
                    if !text.trim().is_empty() {
                        out.push(self.code_block(text.trim_matches('\n'), ""));
                    }
                } else if let Some(body) = self.doc.parameter(id, "body") {
                    // Macros such as math keep their content in a parameter.
                    let language = if name.contains("math") { "math" } else { "" };
                    if !body.trim().is_empty() {
                        out.push(self.code_block(body.trim(), language));
                    }
                } else {
                    // Content outside any body (broken or unusual markup):
                    // its text, parameters left out.
                    out.extend(self.blocks(id));
                }
            }
        }
    }

    /// The first element with this name below `id` (breadth first, bounded).
    fn descendant(&self, id: NodeId, name: &str) -> Option<NodeId> {
        let mut queue = std::collections::VecDeque::from([id]);
        let mut visited = 0;
        while let Some(current) = queue.pop_front() {
            visited += 1;
            if visited > 10_000 {
                return None;
            }
            for child in self.doc.children(current) {
                if self.doc.name(child) == Some(name) {
                    return Some(child);
                }
                queue.push_back(child);
            }
        }
        None
    }

    fn marker(&self, text: &str) -> String {
        if self.md() {
            format!("*[{text}]*")
        } else {
            format!("[{text}]")
        }
    }

    fn emphasis(&self, text: &str, mark: &str) -> String {
        if self.md() && !text.trim().is_empty() {
            let mut escaped = String::new();
            escape_markdown(text.trim(), &mut escaped);
            format!("{mark}{escaped}{mark}")
        } else {
            text.trim().to_string()
        }
    }

    fn inline(&mut self, id: NodeId) -> String {
        let mut out = self.pool.pop().unwrap_or_default();
        self.inline_into(id, &mut out);
        out
    }

    fn inline_into(&mut self, id: NodeId, out: &mut String) {
        if self.depth > MAX_DEPTH {
            collapse(&self.doc.text(id), out);
            return;
        }
        self.depth += 1;
        let doc = self.doc;
        for child in doc.children(id) {
            self.inline_node(child, out);
        }
        self.depth -= 1;
    }

    fn give(&mut self, mut spent: String) {
        if self.pool.len() < 64 {
            spent.clear();
            self.pool.push(spent);
        }
    }

    /// `text` trimmed, reusing its allocation when it needs no trimming.
    fn trimmed(&mut self, text: String) -> String {
        if text.trim().len() == text.len() {
            return text;
        }
        let trimmed = text.trim().to_string();
        self.give(text);
        trimmed
    }

    fn wrap(&mut self, id: NodeId, mark: &str, out: &mut String) {
        let inner = self.inline(id);
        let trimmed = inner.trim();
        if trimmed.is_empty() {
            out.push_str(&inner);
            self.give(inner);
            return;
        }
        if inner.starts_with(' ') && !out.ends_with(' ') {
            out.push(' ');
        }
        if self.md() {
            out.push_str(mark);
            out.push_str(trimmed);
            out.push_str(mark);
        } else {
            out.push_str(trimmed);
        }
        if inner.ends_with(' ') {
            out.push(' ');
        }
        self.give(inner);
    }

    fn inline_node(&mut self, id: NodeId, out: &mut String) {
        let doc = self.doc;
        let name = match &doc.node(id).kind {
            Kind::Text(text) => {
                push_text(text, out, self.md());
                return;
            }
            Kind::Element { name, .. } => name.as_ref(),
        };
        if self.depth > MAX_DEPTH {
            collapse(&self.doc.text(id), out);
            return;
        }
        match name {
            "strong" | "b" => self.wrap(id, "**", out),
            "em" | "i" | "cite" => self.wrap(id, "*", out),
            "s" | "del" | "strike" => self.wrap(id, "~~", out),
            "code" | "tt" | "kbd" | "samp" => {
                let text = self.doc.text(id).replace('\n', " ");
                if self.md() && !text.trim().is_empty() {
                    let fence = if text.contains('`') { "``" } else { "`" };
                    let _ = write!(out, "{fence}{}{fence}", text.trim());
                } else {
                    out.push_str(text.trim());
                }
            }
            "br" => {
                if self.in_cell > 0 {
                    out.push_str(if self.md() { "<br>" } else { " " });
                } else if self.md() {
                    out.push_str("\\\n");
                } else {
                    out.push('\n');
                }
            }
            "a" => {
                let text = self.inline(id);
                let href = self.doc.attr(id, "href").unwrap_or("").trim().to_string();
                self.link(text.trim(), &href, out);
            }
            "img" => {
                let alt = self.doc.attr(id, "alt").unwrap_or("").to_string();
                let src = self.doc.attr(id, "src").unwrap_or("").to_string();
                self.image(&alt, &src, out);
            }
            "time" => {
                let text = self.inline(id);
                if text.trim().is_empty() {
                    out.push_str(self.doc.attr(id, "datetime").unwrap_or(""));
                } else {
                    out.push_str(&text);
                }
            }
            "ac:link" => self.ac_link(id, out),
            "ac:image" => self.ac_image(id, out),
            "ac:emoticon" => {
                let fallback = self
                    .doc
                    .attr(id, "ac:emoji-fallback")
                    .filter(|f| !f.is_empty())
                    .map(str::to_string);
                let name = self.doc.attr(id, "ac:name").unwrap_or("");
                let glyph = fallback.unwrap_or_else(|| emoji(name).to_string());
                out.push_str(&glyph);
            }
            "ac:structured-macro" => self.inline_macro(id, out),
            "ac:parameter" | "ac:placeholder" | "ac:task-id" | "ac:task-uuid"
            | "ac:task-status" | "script" | "style" | "colgroup" | "col" => {}
            n if n.starts_with("ri:") => {}
            // A block element met inline (inside a heading or a link):
            // its text, on the same line.
            n if is_block(n) => {
                let text = self.inline(id);
                if !out.ends_with(' ') && !out.is_empty() && !text.starts_with(' ') {
                    out.push(' ');
                }
                out.push_str(text.trim());
                out.push(' ');
            }
            _ => self.inline_into(id, out),
        }
    }

    fn inline_macro(&mut self, id: NodeId, out: &mut String) {
        match self.macro_name(id).as_ref() {
            "status" => {
                let title = self.doc.parameter(id, "title").unwrap_or_default();
                if !title.trim().is_empty() {
                    let _ = write!(out, "[{}]", title.trim());
                }
            }
            "jira" => {
                let key = self
                    .doc
                    .parameter(id, "key")
                    .or_else(|| self.doc.parameter(id, "jqlQuery"))
                    .unwrap_or_default();
                out.push_str(key.trim());
            }
            "anchor" => {}
            _ => {
                if let Some(body) = self.doc.child(id, "ac:rich-text-body") {
                    let text = self.inline(body);
                    out.push_str(&text);
                } else if let Some(body) = self
                    .doc
                    .child(id, "ac:plain-text-body")
                    .map(|b| self.doc.text(b))
                    .or_else(|| self.doc.parameter(id, "body"))
                {
                    let body = body.trim().replace('\n', " ");
                    if !body.is_empty() {
                        if self.md() {
                            let fence = if body.contains('`') { "``" } else { "`" };
                            let _ = write!(out, "{fence}{body}{fence}");
                        } else {
                            out.push_str(&body);
                        }
                    }
                }
            }
        }
    }

    fn link(&mut self, text: &str, url: &str, out: &mut String) {
        let safe = !url.is_empty()
            && !url
                .to_ascii_lowercase()
                .trim_start()
                .starts_with("javascript:")
            && !url.contains(char::is_whitespace);
        let label = if text.is_empty() { url } else { text };
        if self.md() && safe {
            let _ = write!(out, "[{label}]({})", markdown_url(url));
        } else {
            out.push_str(label);
        }
    }

    fn image(&mut self, alt: &str, src: &str, out: &mut String) {
        if self.md() && !src.is_empty() && !src.contains(char::is_whitespace) {
            let mut escaped = String::new();
            escape_markdown(alt, &mut escaped);
            let _ = write!(out, "![{escaped}]({})", markdown_url(src));
        } else {
            out.push_str(alt);
        }
    }

    fn ac_link(&mut self, id: NodeId, out: &mut String) {
        let doc = self.doc;
        let anchor = doc.attr(id, "ac:anchor").map(str::to_string);
        let body_text = if let Some(body) = doc.child(id, "ac:link-body") {
            Some(self.inline(body).trim().to_string())
        } else {
            doc.child(id, "ac:plain-text-link-body").map(|b| {
                let mut escaped = String::new();
                let text = doc.text(b);
                if self.md() {
                    escape_markdown(text.trim(), &mut escaped);
                } else {
                    escaped.push_str(text.trim());
                }
                escaped
            })
        }
        .filter(|t| !t.is_empty());
        let target = doc
            .children(id)
            .find(|&c| doc.name(c).is_some_and(|n| n.starts_with("ri:")));
        let (default_text, url) = match target.and_then(|t| doc.name(t).map(|n| (t, n))) {
            Some((t, "ri:page" | "ri:blog-post")) => {
                let title = doc.attr(t, "ri:content-title").unwrap_or("").to_string();
                let space = doc.attr(t, "ri:space-key");
                let url = self.resolver.page_url(space, &title);
                (title, url)
            }
            Some((t, "ri:attachment")) => {
                let file = doc.attr(t, "ri:filename").unwrap_or("").to_string();
                let page = doc
                    .child(t, "ri:page")
                    .and_then(|p| doc.attr(p, "ri:content-title"));
                let url = self.resolver.attachment_url(page, &file);
                (file, url)
            }
            Some((t, "ri:user")) => {
                let account = doc
                    .attr(t, "ri:account-id")
                    .or_else(|| doc.attr(t, "ri:userkey"))
                    .or_else(|| doc.attr(t, "ri:username"))
                    .unwrap_or("");
                let name = self
                    .resolver
                    .user_name(account)
                    .unwrap_or_else(|| "user".to_string());
                let text = body_text.unwrap_or(name);
                // A name is the site's text like any other: escaped, so
                // that no display name makes a link or emphasis.
                out.push('@');
                push_text(text.trim_start_matches('@'), out, self.md());
                return;
            }
            Some((t, "ri:space")) => {
                let key = doc.attr(t, "ri:space-key").unwrap_or("").to_string();
                let url = self.resolver.space_url(&key);
                (key, url)
            }
            Some((t, "ri:url")) => {
                let value = doc.attr(t, "ri:value").unwrap_or("").to_string();
                (value.clone(), Some(value))
            }
            Some((t, "ri:shortcut")) => {
                let parameter = doc.attr(t, "ri:parameter").unwrap_or("").to_string();
                (parameter, None)
            }
            _ => (anchor.clone().unwrap_or_default(), None),
        };
        let url = match (url, &anchor) {
            (Some(url), Some(anchor)) => Some(format!("{url}#{anchor}")),
            (None, Some(anchor)) if target.is_none() => Some(format!("#{anchor}")),
            (url, _) => url,
        };
        let text = body_text.unwrap_or_else(|| {
            let mut escaped = String::new();
            if self.md() {
                escape_markdown(&default_text, &mut escaped);
            } else {
                escaped.push_str(&default_text);
            }
            escaped
        });
        match url {
            Some(url) => self.link(&text, &url, out),
            None => out.push_str(&text),
        }
    }

    fn ac_image(&mut self, id: NodeId, out: &mut String) {
        let doc = self.doc;
        let alt = doc
            .attr(id, "ac:alt")
            .or_else(|| doc.attr(id, "ac:title"))
            .unwrap_or("")
            .to_string();
        let (name, url) = if let Some(a) = doc.child(id, "ri:attachment") {
            let file = doc.attr(a, "ri:filename").unwrap_or("").to_string();
            let page = doc
                .child(a, "ri:page")
                .and_then(|p| doc.attr(p, "ri:content-title"));
            let url = self
                .resolver
                .attachment_url(page, &file)
                .unwrap_or_else(|| file.clone());
            (file, url)
        } else if let Some(u) = doc.child(id, "ri:url") {
            let value = doc.attr(u, "ri:value").unwrap_or("").to_string();
            (value.clone(), value)
        } else {
            (String::new(), String::new())
        };
        let alt = if alt.is_empty() { name } else { alt };
        self.image(&alt, &url.replace(' ', "%20"), out);
        if let Some(caption) = doc.child(id, "ac:caption") {
            let text = self.inline(caption);
            if !text.trim().is_empty() {
                out.push(' ');
                if self.md() {
                    let _ = write!(out, "*{}*", text.trim());
                } else {
                    out.push_str(text.trim());
                }
            }
        }
    }
}
