//! Confluence storage format (XHTML with `ac:` and `ri:` elements) to
//! Markdown, to plain text, and to structure-aware chunks.
//!
//! It never fails: every input gives an output and a list of warnings (what
//! was repaired or dropped). It does no I/O: links to pages and attachments
//! and user mentions resolve through the `Resolver` the caller passes in.
//! Parsing builds an arena without recursion and rendering bounds its
//! depth, so no input exhausts the stack; every pass is linear in the input.

#![forbid(unsafe_code)]

mod chunk;
mod entities;
mod parse;
mod render;

pub use chunk::{chunk, Chunk, ChunkOptions};

use serde::Serialize;

/// Something the converter repaired or dropped, with the byte offset in the
/// input where it happened (0 when it is not about one place).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub offset: usize,
    pub message: String,
}

/// Resolves what a page links to. Every method may answer `None`: the link
/// then keeps its text and loses its target.
pub trait Resolver {
    /// A page or blog post by its title, in a space (the page's own when
    /// `None`).
    fn page_url(&self, _space_key: Option<&str>, _title: &str) -> Option<String> {
        None
    }
    /// An attachment of a page (this page when `page_title` is `None`).
    fn attachment_url(&self, _page_title: Option<&str>, _filename: &str) -> Option<String> {
        None
    }
    fn user_name(&self, _account_id: &str) -> Option<String> {
        None
    }
    fn space_url(&self, _space_key: &str) -> Option<String> {
        None
    }
}

/// Resolves nothing.
pub struct NoResolver;

impl Resolver for NoResolver {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Converted {
    pub output: String,
    pub warnings: Vec<Warning>,
}

fn convert(storage: &str, resolver: &dyn Resolver, mode: render::Mode) -> Converted {
    let mut warnings = Vec::new();
    let document = parse::parse(storage, &mut warnings);
    let mut renderer = render::Renderer::new(&document, resolver, mode);
    let output = renderer.render();
    warnings.extend(renderer.warnings);
    Converted { output, warnings }
}

/// Storage format to Markdown (CommonMark with GFM tables, task lists and
/// alerts).
pub fn to_markdown(storage: &str, resolver: &dyn Resolver) -> Converted {
    convert(storage, resolver, render::Mode::Markdown)
}

/// Storage format to plain text: the words, in reading order, with blocks
/// on lines of their own.
pub fn to_text(storage: &str, resolver: &dyn Resolver) -> Converted {
    convert(storage, resolver, render::Mode::Text)
}
