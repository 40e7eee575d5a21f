//! Storage-format bodies, generated from (seed, id, version), and the
//! `view` rendering that v1 and v2 serve beside them.
//!
//! A generated body uses the elements that real pages carry: headings,
//! text effects, nested lists, tables with header rows and merged cells,
//! code and panel macros, links to pages and attachments, user mentions,
//! task lists, layouts, emoticons, status lozenges, Jira and unknown
//! macros, CDATA and the HTML entities that XML does not define.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write;

use crate::model::User;
use crate::text::{self, rng_for};

/// What a body may refer to; every field is a pure function of the seed, so
/// a body never changes unless its version does.
pub struct BodyContext<'a> {
    pub seed: u64,
    pub id: u64,
    pub version: u32,
    pub space_key: &'a str,
    /// Ids of the content generated in the same space, for page links.
    pub sibling_ids: (u64, u64),
    /// The site's users, whom bodies mention by account id.
    pub users: &'a [User],
    /// File names of the attachments the content was created with.
    pub attachment_names: &'a [String],
}

const LANGUAGES: &[&str] = &[
    "python", "rust", "java", "sql", "bash", "yaml", "json", "go",
];
const PANELS: &[&str] = &["info", "note", "warning", "tip", "panel", "expand"];
const EMOTICONS: &[&str] = &[
    "smile",
    "thumbs-up",
    "warning",
    "tick",
    "cross",
    "information",
];
const STATUS: &[(&str, &str)] = &[
    ("Green", "DONE"),
    ("Yellow", "IN PROGRESS"),
    ("Red", "BLOCKED"),
    ("Blue", "IN REVIEW"),
    ("Grey", "NOT STARTED"),
];

pub fn storage_body(ctx: &BodyContext) -> String {
    let mut rng = rng_for(ctx.seed, &[ctx.id, ctx.version as u64, 0xb0d7]);
    let mut out = String::with_capacity(4096);
    let layout = rng.gen_bool(0.15);
    if layout {
        out.push_str("<ac:layout><ac:layout-section ac:type=\"two_equal\"><ac:layout-cell>");
    }
    let _ = write!(
        out,
        "<p>{} <strong>{}</strong> {}&nbsp;<em>{}</em></p>",
        text::sentence(&mut rng),
        text::words(&mut rng, 2),
        text::sentence(&mut rng),
        text::words(&mut rng, 3)
    );
    let n_sections = rng.gen_range(2..6);
    for section in 0..n_sections {
        if layout && section == n_sections / 2 {
            out.push_str("</ac:layout-cell><ac:layout-cell>");
        }
        let level = if section == 0 { 1 } else { rng.gen_range(2..4) };
        let _ = write!(out, "<h{level}>{}</h{level}>", {
            let n = rng.gen_range(2..5);
            text::capitalize(&text::words(&mut rng, n))
        });
        let n_blocks = rng.gen_range(2..5);
        for _ in 0..n_blocks {
            block(&mut rng, ctx, &mut out);
        }
    }
    if layout {
        out.push_str("</ac:layout-cell></ac:layout-section></ac:layout>");
    }
    out
}

fn block(rng: &mut ChaCha8Rng, ctx: &BodyContext, out: &mut String) {
    match rng.gen_range(0..16) {
        0..=3 => paragraph(rng, ctx, out),
        4 => list(rng, out, 0),
        5 => table(rng, out),
        6 => {
            let language = LANGUAGES[rng.gen_range(0..LANGUAGES.len())];
            let _ = write!(
                out,
                "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\" ac:macro-id=\"{}\">\
                 <ac:parameter ac:name=\"language\">{language}</ac:parameter>\
                 <ac:plain-text-body><![CDATA[{}]]></ac:plain-text-body></ac:structured-macro>",
                text::uuid(rng),
                code_text(rng, language)
            );
        }
        7 => {
            let panel = PANELS[rng.gen_range(0..PANELS.len())];
            let _ = write!(
                out,
                "<ac:structured-macro ac:name=\"{panel}\" ac:schema-version=\"1\" ac:macro-id=\"{}\">\
                 <ac:parameter ac:name=\"title\">{}</ac:parameter><ac:rich-text-body><p>{}</p>\
                 </ac:rich-text-body></ac:structured-macro>",
                text::uuid(rng),
                text::capitalize(&text::words(rng, 3)),
                text::sentences(rng, 2)
            );
        }
        8 => {
            let _ = write!(out, "<ac:task-list>");
            for task in 1..=rng.gen_range(2..5) {
                let state = if rng.gen_bool(0.4) {
                    "complete"
                } else {
                    "incomplete"
                };
                let _ = write!(
                    out,
                    "<ac:task><ac:task-id>{task}</ac:task-id><ac:task-status>{state}</ac:task-status>\
                     <ac:task-body>{}</ac:task-body></ac:task>",
                    text::capitalize(&text::words(rng, 5))
                );
            }
            out.push_str("</ac:task-list>");
        }
        9 => {
            let (colour, title) = STATUS[rng.gen_range(0..STATUS.len())];
            let _ = write!(
                out,
                "<p>Status: <ac:structured-macro ac:name=\"status\" ac:schema-version=\"1\" ac:macro-id=\"{}\">\
                 <ac:parameter ac:name=\"colour\">{colour}</ac:parameter>\
                 <ac:parameter ac:name=\"title\">{title}</ac:parameter></ac:structured-macro> \
                 tracked in <ac:structured-macro ac:name=\"jira\" ac:schema-version=\"1\" ac:macro-id=\"{}\">\
                 <ac:parameter ac:name=\"server\">System JIRA</ac:parameter>\
                 <ac:parameter ac:name=\"key\">OPS-{}</ac:parameter></ac:structured-macro></p>",
                text::uuid(rng),
                text::uuid(rng),
                rng.gen_range(1..9999)
            );
        }
        10 => {
            let _ = write!(
                out,
                "<ac:structured-macro ac:name=\"roadmap-planner\" ac:schema-version=\"1\" ac:macro-id=\"{}\">\
                 <ac:parameter ac:name=\"source\">%7B%22lanes%22%3A%5B%5D%7D</ac:parameter>\
                 <ac:rich-text-body><p>{}</p></ac:rich-text-body></ac:structured-macro>",
                text::uuid(rng),
                text::sentence(rng)
            );
        }
        11 => {
            if let Some(name) = pick(rng, ctx.attachment_names) {
                if name.ends_with(".png") {
                    let _ = write!(
                        out,
                        "<p><ac:image ac:alt=\"{}\" ac:width=\"600\"><ri:attachment ri:filename=\"{}\" /></ac:image></p>",
                        text::words(rng, 3),
                        escape(name)
                    );
                } else {
                    let _ = write!(
                        out,
                        "<p>See <ac:link><ri:attachment ri:filename=\"{}\" /><ac:plain-text-link-body><![CDATA[{}]]></ac:plain-text-link-body></ac:link> for details.</p>",
                        escape(name),
                        text::words(rng, 2)
                    );
                }
            } else {
                paragraph(rng, ctx, out);
            }
        }
        12 => {
            let _ = write!(
                out,
                "<ac:structured-macro ac:name=\"toc\" ac:schema-version=\"1\" ac:macro-id=\"{}\">\
                 <ac:parameter ac:name=\"maxLevel\">3</ac:parameter></ac:structured-macro>",
                text::uuid(rng)
            );
        }
        13 => {
            let _ = write!(
                out,
                "<blockquote><p>{}</p></blockquote><hr />",
                text::sentence(rng)
            );
        }
        _ => paragraph(rng, ctx, out),
    }
}

fn paragraph(rng: &mut ChaCha8Rng, ctx: &BodyContext, out: &mut String) {
    out.push_str("<p>");
    let n = rng.gen_range(1..3);
    out.push_str(&text::sentences(rng, n));
    match rng.gen_range(0..9) {
        0 => {
            let (lo, hi) = ctx.sibling_ids;
            if hi > lo {
                let target = rng.gen_range(lo..hi);
                let _ = write!(
                    out,
                    " Related: <ac:link><ri:page ri:space-key=\"{}\" ri:content-title=\"{}\" /></ac:link>.",
                    escape(ctx.space_key),
                    escape(&text::generated_title(ctx.seed, target))
                );
            }
        }
        1 => {
            if let Some(user) = pick(rng, ctx.users) {
                let account = &user.account_id;
                let _ = write!(
                    out,
                    " Owner: <ac:link><ri:user ri:account-id=\"{account}\" /></ac:link>."
                );
            }
        }
        2 => {
            let _ = write!(
                out,
                " Read the <a href=\"https://example.com/docs/{}?a=1&amp;b=2\">{} guide</a>.",
                text::word(rng),
                text::word(rng)
            );
        }
        3 => {
            let name = EMOTICONS[rng.gen_range(0..EMOTICONS.len())];
            let _ = write!(out, " <ac:emoticon ac:name=\"{name}\" />");
        }
        4 => {
            let _ = write!(
                out,
                " <code>{}_{}</code> &mdash; R&amp;D &ldquo;{}&rdquo;&hellip;",
                text::word(rng),
                text::word(rng),
                text::word(rng)
            );
        }
        5 => {
            let _ = write!(
                out,
                " <u>{}</u> <s>{}</s> <sub>2</sub><sup>n</sup>",
                text::word(rng),
                text::word(rng)
            );
        }
        _ => {}
    }
    out.push_str("</p>");
}

fn list(rng: &mut ChaCha8Rng, out: &mut String, depth: usize) {
    let tag = if rng.gen_bool(0.5) { "ul" } else { "ol" };
    let _ = write!(out, "<{tag}>");
    for _ in 0..rng.gen_range(2..5) {
        let _ = write!(out, "<li>{}", text::capitalize(&text::words(rng, 6)));
        if depth < 2 && rng.gen_bool(0.25) {
            list(rng, out, depth + 1);
        }
        out.push_str("</li>");
    }
    let _ = write!(out, "</{tag}>");
}

fn table(rng: &mut ChaCha8Rng, out: &mut String) {
    let columns = rng.gen_range(2..5);
    let rows = rng.gen_range(2..7);
    out.push_str("<table data-layout=\"default\"><colgroup>");
    for _ in 0..columns {
        out.push_str("<col style=\"width: 200.0px;\" />");
    }
    out.push_str("</colgroup><tbody><tr>");
    for _ in 0..columns {
        let _ = write!(
            out,
            "<th><p><strong>{}</strong></p></th>",
            text::capitalize(text::word(rng))
        );
    }
    out.push_str("</tr>");
    for row in 0..rows {
        out.push_str("<tr>");
        let mut column = 0;
        while column < columns {
            if row == 0 && column + 1 < columns && rng.gen_bool(0.2) {
                let _ = write!(out, "<td colspan=\"2\"><p>{}</p></td>", text::words(rng, 3));
                column += 2;
            } else {
                let _ = write!(out, "<td><p>{}</p></td>", text::words(rng, 2));
                column += 1;
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn code_text(rng: &mut ChaCha8Rng, language: &str) -> String {
    let name = text::word(rng);
    let other = text::word(rng);
    match language {
        "python" => format!("def {name}({other}):\n    if {other} < 10 and {other} > 0:\n        return {other} * 2\n    return None\n"),
        "rust" => format!("fn {name}({other}: u32) -> Option<u32> {{\n    ({other} < 10).then(|| {other} * 2)\n}}\n"),
        "sql" => format!("SELECT {name}, count(*) FROM {other}\nWHERE {name} <> '' AND created > now() - interval '1 day'\nGROUP BY {name};\n"),
        "bash" => format!("#!/usr/bin/env bash\nset -euo pipefail\n{name} --{other} \"$1\" && echo ok\n"),
        "json" => format!("{{\"{name}\": [1, 2, 3], \"{other}\": {{\"enabled\": true}}}}\n"),
        _ => format!("{name}:\n  {other}: true\n  retries: 3\n"),
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        Some(&items[rng.gen_range(0..items.len())])
    }
}

/// A comment's body: a short paragraph, sometimes with a mention.
pub fn comment_body(seed: u64, id: u64, version: u32, users: &[User]) -> String {
    let mut rng = rng_for(seed, &[id, version as u64, 0xc0c0]);
    let n = rng.gen_range(1..4);
    let mut out = format!("<p>{}", text::sentences(&mut rng, n));
    if let Some(User {
        account_id: account,
        ..
    }) = pick(&mut rng, users)
    {
        if rng.gen_bool(0.3) {
            let _ = write!(
                out,
                " <ac:link><ri:user ri:account-id=\"{account}\" /></ac:link>"
            );
        }
    }
    out.push_str("</p>");
    out
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The `view` representation: the storage body with Confluence's own
/// elements rendered as a reader sees them: code macros in `<pre>`, other
/// macros and layouts in `<div>`s (so that no two words run together where
/// an element was), links as `<a>` with their body or the target's title,
/// mentions as the person's display name, macro parameters and task ids
/// dropped, CDATA escaped. It is not a faithful renderer (no macro
/// output), which is all a connector needs from it.
pub fn view_from_storage(storage: &str, users: &[User]) -> String {
    let mut out = String::with_capacity(storage.len() + storage.len() / 8);
    let mut rest = storage;
    let mut skip_depth = 0usize;
    // What each open `ac:structured-macro` closes with.
    let mut macros: Vec<&'static str> = Vec::new();
    while let Some(start) = rest.find('<') {
        if skip_depth == 0 {
            out.push_str(&rest[..start]);
        }
        rest = &rest[start..];
        if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            if skip_depth == 0 {
                out.push_str(&escape(&cdata[..end]));
            }
            rest = cdata.get(end + 3..).unwrap_or("");
            continue;
        }
        let Some(end) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[..=end];
        rest = &rest[end + 1..];
        let name_start = if tag.starts_with("</") { 2 } else { 1 };
        let name: String = tag[name_start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        let closing = tag.starts_with("</");
        let self_closing = tag.ends_with("/>");
        if matches!(
            name.as_str(),
            "ac:parameter" | "ac:task-id" | "ac:task-status"
        ) {
            if closing {
                skip_depth = skip_depth.saturating_sub(1);
            } else if !self_closing {
                skip_depth += 1;
            }
            continue;
        }
        if !(name.starts_with("ac:") || name.starts_with("ri:")) {
            if skip_depth == 0 {
                out.push_str(tag);
            }
            continue;
        }
        if skip_depth > 0 {
            continue;
        }
        match (name.as_str(), closing) {
            ("ac:structured-macro", false) => {
                let code = attribute(tag, "ac:name").as_deref() == Some("code");
                out.push_str(if code {
                    "<div class=\"code panel\"><pre class=\"syntaxhighlighter-pre\">"
                } else {
                    "<div class=\"confluence-macro\">"
                });
                if self_closing {
                    out.push_str(if code { "</pre></div>" } else { "</div>" });
                } else {
                    macros.push(if code { "</pre></div>" } else { "</div>" });
                }
            }
            ("ac:structured-macro", true) => out.push_str(macros.pop().unwrap_or("</div>")),
            ("ac:layout" | "ac:layout-section" | "ac:layout-cell", _) => {
                out.push_str(if closing { "</div>" } else { "<div>" })
            }
            ("ac:task-list", _) => out.push_str(if closing { "</ul>" } else { "<ul>" }),
            ("ac:task", _) => out.push_str(if closing { "</li>" } else { "<li>" }),
            ("ac:link", false) if !self_closing => out.push_str("<a>"),
            ("ac:link", true) => out.push_str("</a>"),
            ("ac:image", false) => {
                out.push_str("<span class=\"confluence-embedded-file-wrapper\">")
            }
            ("ac:image", true) => out.push_str("</span>"),
            ("ac:emoticon", _) => {
                let emoticon = attribute(tag, "ac:name").unwrap_or_default();
                let _ = write!(
                    out,
                    "<img class=\"emoticon\" alt=\"({})\"/>",
                    escape(&emoticon)
                );
            }
            // A link's own body is its text; without one, the target's name.
            ("ri:page", _) if !link_has_body(rest) => {
                if let Some(title) = attribute(tag, "ri:content-title") {
                    out.push_str(&title);
                }
            }
            ("ri:attachment", _) if !link_has_body(rest) => {
                if let Some(file) = attribute(tag, "ri:filename") {
                    out.push_str(&file);
                }
            }
            ("ri:user", _) => {
                let id = attribute(tag, "ri:account-id").unwrap_or_default();
                let name = users
                    .iter()
                    .find(|u| u.account_id == id)
                    .map_or("Unknown user", |u| u.display_name.as_str());
                out.push_str(&escape(name));
            }
            _ => {}
        }
    }
    if skip_depth == 0 {
        out.push_str(rest);
    }
    out
}

/// Whether a link body follows the link's target just read
/// (`ac:plain-text-link-body` or `ac:link-body`).
fn link_has_body(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.starts_with("<ac:plain-text-link-body") || rest.starts_with("<ac:link-body")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_string())
}

/// Plain text of a storage body, for CQL `text ~` and search excerpts.
pub fn plain_text(storage: &str, users: &[User]) -> String {
    let view = view_from_storage(storage, users);
    let mut out = String::with_capacity(view.len());
    let mut in_tag = false;
    for ch in view.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
