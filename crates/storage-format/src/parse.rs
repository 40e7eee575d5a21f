//! A forgiving parser for storage format: XHTML with `ac:` and `ri:`
//! elements, as Confluence stores it and as people break it (unclosed tags,
//! stray `&` and `<`, attributes without quotes, HTML entities XML does not
//! define). It builds a tree in an arena without recursion, so neither
//! depth nor size can exhaust the stack, and it never fails: what it cannot
//! read becomes text, and what it repaired is reported as a warning.

use std::borrow::Cow;

use crate::entities;
use crate::Warning;

pub type NodeId = u32;

const NONE: NodeId = NodeId::MAX;

/// Names, attributes and text borrow from the input unless they had to
/// change (lowercased, entities decoded, merged): a page parses with few
/// allocations.
#[derive(Debug, Clone)]
pub enum Kind<'a> {
    Element {
        name: Cow<'a, str>,
        /// This element's attributes in the document's shared list.
        attrs: std::ops::Range<u32>,
    },
    Text(Cow<'a, str>),
}

/// Children are linked through siblings rather than held in a vector each.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub kind: Kind<'a>,
    first_child: NodeId,
    last_child: NodeId,
    next_sibling: NodeId,
}

#[derive(Debug)]
pub struct Document<'a> {
    nodes: Vec<Node<'a>>,
    /// Every element's attributes, in one list (one allocation, not one
    /// an element).
    attrs: Attributes<'a>,
}

pub const ROOT: NodeId = 0;
const MAX_WARNINGS: usize = 100;

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "br" | "hr"
            | "img"
            | "col"
            | "input"
            | "meta"
            | "link"
            | "area"
            | "base"
            | "wbr"
            | "source"
            | "param"
    )
}

pub struct Children<'d, 'a> {
    doc: &'d Document<'a>,
    next: NodeId,
}

impl Iterator for Children<'_, '_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let current = self.next;
        self.next = self.doc.nodes[current as usize].next_sibling;
        Some(current)
    }
}

impl<'a> Document<'a> {
    pub fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id as usize]
    }

    pub fn children(&self, id: NodeId) -> Children<'_, 'a> {
        Children {
            doc: self,
            next: self.nodes[id as usize].first_child,
        }
    }

    pub fn name(&self, id: NodeId) -> Option<&str> {
        match &self.node(id).kind {
            Kind::Element { name, .. } => Some(name),
            Kind::Text(_) => None,
        }
    }

    pub fn attr(&self, id: NodeId, key: &str) -> Option<&str> {
        match &self.node(id).kind {
            Kind::Element { attrs, .. } => self.attrs[attrs.start as usize..attrs.end as usize]
                .iter()
                .find(|(k, _)| k.as_ref() == key)
                .map(|(_, v)| v.as_ref()),
            Kind::Text(_) => None,
        }
    }

    /// The first child element with this name.
    pub fn child(&self, id: NodeId, name: &str) -> Option<NodeId> {
        self.children(id).find(|c| self.name(*c) == Some(name))
    }

    /// The value of an `ac:parameter` child with this `ac:name`.
    pub fn parameter(&self, id: NodeId, key: &str) -> Option<String> {
        self.children(id)
            .find(|&c| self.name(c) == Some("ac:parameter") && self.attr(c, "ac:name") == Some(key))
            .map(|c| self.text(c))
    }

    /// All the text below a node, without any markup; iterative.
    pub fn text(&self, id: NodeId) -> String {
        let mut out = String::new();
        let mut stack = vec![id];
        while let Some(current) = stack.pop() {
            match &self.node(current).kind {
                Kind::Text(text) => out.push_str(text),
                Kind::Element { .. } => {
                    let mark = stack.len();
                    stack.extend(self.children(current));
                    stack[mark..].reverse();
                }
            }
        }
        out
    }
}

struct Builder<'a> {
    nodes: Vec<Node<'a>>,
    stack: Vec<NodeId>,
}

impl<'a> Builder<'a> {
    fn current(&self) -> NodeId {
        *self.stack.last().unwrap_or(&ROOT)
    }

    fn push_node(&mut self, kind: Kind<'a>) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            kind,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
        });
        let parent = self.current() as usize;
        match self.nodes[parent].last_child {
            NONE => self.nodes[parent].first_child = id,
            last => self.nodes[last as usize].next_sibling = id,
        }
        self.nodes[parent].last_child = id;
        id
    }

    /// Appends text; returns how many stray `&` it held.
    fn text(&mut self, text: &'a str, decode: bool) -> usize {
        if text.is_empty() {
            return 0;
        }
        let parent = self.current() as usize;
        // Merge with a preceding text sibling.
        let last = self.nodes[parent].last_child;
        if last != NONE {
            if let Kind::Text(existing) = &mut self.nodes[last as usize].kind {
                let owned = existing.to_mut();
                if decode {
                    return entities::decode_into(text, owned);
                }
                owned.push_str(text);
                return 0;
            }
        }
        let (value, stray) = if decode && text.contains('&') {
            let mut owned = String::with_capacity(text.len());
            let stray = entities::decode_into(text, &mut owned);
            (Cow::Owned(owned), stray)
        } else {
            (Cow::Borrowed(text), 0)
        };
        self.push_node(Kind::Text(value));
        stray
    }

    fn text_at(&mut self, text: &'a str, offset: usize, warnings: &mut Vec<Warning>) {
        if self.text(text, true) > 0 {
            warn(
                warnings,
                offset,
                "'&' that starts no reference kept as text".into(),
            );
        }
    }
}

fn warn(warnings: &mut Vec<Warning>, offset: usize, message: String) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(Warning { offset, message });
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.')
}

pub fn parse<'a>(input: &'a str, warnings: &mut Vec<Warning>) -> Document<'a> {
    let bytes = input.as_bytes();
    // About one node for every twenty bytes of a typical page.
    let mut nodes = Vec::with_capacity(input.len() / 20 + 16);
    nodes.push(Node {
        kind: Kind::Element {
            name: Cow::Borrowed("#root"),
            attrs: 0..0,
        },
        first_child: NONE,
        last_child: NONE,
        next_sibling: NONE,
    });
    let mut builder = Builder {
        nodes,
        stack: vec![ROOT],
    };
    let mut attrs: Attributes<'a> = Vec::with_capacity(input.len() / 40 + 8);
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(lt) = input[pos..].find('<').map(|i| i + pos) else {
            builder.text_at(&input[pos..], pos, warnings);
            break;
        };
        builder.text_at(&input[pos..lt], pos, warnings);
        pos = lt;
        let rest = &input[pos..];
        if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or_else(|| {
                warn(warnings, pos, "unterminated CDATA section".into());
                body.len()
            });
            builder.text(&body[..end], false);
            pos += 9 + end + 3.min(body.len() - end);
            continue;
        }
        if rest.starts_with("<!--") {
            pos += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            pos += rest.find('>').map_or(rest.len(), |e| e + 1);
            continue;
        }
        let closing = rest.as_bytes().get(1) == Some(&b'/');
        let name_start = pos + 1 + usize::from(closing);
        if name_start >= bytes.len() || !is_name_start(bytes[name_start]) {
            // A `<` that starts no tag is text.
            warn(warnings, pos, "stray '<' kept as text".into());
            builder.text("<", false);
            pos += 1;
            continue;
        }
        let mut name_end = name_start;
        while name_end < bytes.len() && is_name_char(bytes[name_end]) {
            name_end += 1;
        }
        let raw_name = &input[name_start..name_end];
        let name: Cow<'a, str> = if raw_name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(raw_name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(raw_name)
        };
        if closing {
            let end = input[name_end..]
                .find('>')
                .map_or(bytes.len(), |e| name_end + e + 1);
            close(&mut builder, &name, pos, warnings);
            pos = end;
            continue;
        }
        let first = attrs.len() as u32;
        let (self_closing, end) = attributes(input, name_end, &mut attrs, warnings);
        let range = first..attrs.len() as u32;
        pos = end;
        let void = is_void(&name);
        let id = builder.push_node(Kind::Element { name, attrs: range });
        if !self_closing && !void {
            builder.stack.push(id);
        }
    }
    for &open in builder.stack.iter().skip(1) {
        let name = match &builder.nodes[open as usize].kind {
            Kind::Element { name, .. } => name.to_string(),
            Kind::Text(_) => String::new(),
        };
        warn(
            warnings,
            bytes.len(),
            format!("unclosed <{name}> closed at the end"),
        );
    }
    Document {
        nodes: builder.nodes,
        attrs,
    }
}

fn close(builder: &mut Builder, name: &str, pos: usize, warnings: &mut Vec<Warning>) {
    let found = builder.stack.iter().rposition(|&id| {
        id != ROOT
            && matches!(&builder.nodes[id as usize].kind, Kind::Element { name: n, .. } if n.as_ref() == name)
    });
    match found {
        Some(index) => {
            if index + 1 < builder.stack.len() {
                warn(
                    warnings,
                    pos,
                    format!(
                        "</{name}> closes {} unclosed element(s)",
                        builder.stack.len() - index - 1
                    ),
                );
            }
            builder.stack.truncate(index);
        }
        None => warn(warnings, pos, format!("stray </{name}> ignored")),
    }
}

/// A slice as is, or decoded when it holds a reference.
fn decoded(text: &str) -> Cow<'_, str> {
    if text.contains('&') {
        let mut owned = String::with_capacity(text.len());
        entities::decode_into(text, &mut owned);
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(text)
    }
}

type Attributes<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Attributes from `start` to the end of the tag, quoted, unquoted or bare,
/// appended to `attrs`. Returns whether the tag closes itself and the
/// position after it.
fn attributes<'a>(
    input: &'a str,
    start: usize,
    attrs: &mut Attributes<'a>,
    warnings: &mut Vec<Warning>,
) -> (bool, usize) {
    let bytes = input.as_bytes();
    let mut pos = start;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            warn(warnings, start, "tag not closed before the end".into());
            return (true, bytes.len());
        }
        match bytes[pos] {
            b'>' => return (false, pos + 1),
            b'/' if bytes.get(pos + 1) == Some(&b'>') => return (true, pos + 2),
            b'<' => {
                warn(warnings, pos, "tag not closed before the next one".into());
                return (false, pos);
            }
            _ => {}
        }
        let key_start = pos;
        let ends_key = |pos: usize| {
            pos >= bytes.len()
                || bytes[pos].is_ascii_whitespace()
                || matches!(bytes[pos], b'=' | b'>' | b'<')
                || (bytes[pos] == b'/' && bytes.get(pos + 1) == Some(&b'>'))
        };
        while !ends_key(pos) {
            pos += 1;
        }
        if pos == key_start {
            // A lone '=' or similar: skip it.
            pos += 1;
            continue;
        }
        let raw_key = &input[key_start..pos];
        let key: Cow<'a, str> = if raw_key.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(raw_key.to_ascii_lowercase())
        } else {
            Cow::Borrowed(raw_key)
        };
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let mut value = Cow::Borrowed("");
        if pos < bytes.len() && bytes[pos] == b'=' {
            pos += 1;
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < bytes.len() && (bytes[pos] == b'"' || bytes[pos] == b'\'') {
                let quote = bytes[pos] as char;
                let value_start = pos + 1;
                let end = input[value_start..]
                    .find(quote)
                    .map_or(bytes.len(), |e| value_start + e);
                value = decoded(&input[value_start..end]);
                pos = (end + 1).min(bytes.len());
            } else {
                let value_start = pos;
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                    pos += 1;
                }
                value = decoded(&input[value_start..pos]);
                warn(
                    warnings,
                    value_start,
                    format!("attribute {key} without quotes"),
                );
            }
        }
        attrs.push((key, value));
    }
}
