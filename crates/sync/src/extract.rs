//! Text from the attachments that carry it: plain text, Markdown, CSV,
//! HTML, DOCX and PDF. Untrusted input: every failure is a `None` or an error
//! value, never a panic, and output is bounded.

use std::io::Read;

/// At most this much text is kept from one file.
const MAX_TEXT: usize = 5 * 1024 * 1024;
/// A DOCX's document part is not read beyond this (zip bombs).
const MAX_DOCX_XML: u64 = 64 * 1024 * 1024;
/// Pages of a PDF read for text.
const MAX_PDF_PAGES: usize = 500;
const PDF: &str = "application/pdf";

/// Whether a file of this media type (or name) is downloaded for its text.
pub fn carries_text(media_type: &str, title: &str) -> bool {
    let lower = title.to_ascii_lowercase();
    media_type.starts_with("text/")
        || media_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        || lower.ends_with(".md")
        || lower.ends_with(".txt")
        || lower.ends_with(".csv")
        || lower.ends_with(".docx")
        || media_type == PDF
        || lower.ends_with(".pdf")
}

/// The text of a file, or why it has none.
pub fn text_of(media_type: &str, title: &str, bytes: &[u8]) -> Result<String, String> {
    let lower = title.to_ascii_lowercase();
    let text = if media_type
        == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        || lower.ends_with(".docx")
    {
        docx_text(bytes)?
    } else if media_type == PDF || lower.ends_with(".pdf") {
        pdf_text(bytes)?
    } else if media_type == "text/html" || lower.ends_with(".html") || lower.ends_with(".htm") {
        html_text(&String::from_utf8_lossy(bytes))
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    };
    Ok(truncate(text))
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Tags dropped, script and style skipped, entities for the common cases.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].to_ascii_lowercase();
        rest = &rest[start + end + 1..];
        out.push(' ');
        // Script and style content is not text, and may hold '<'.
        for element in ["script", "style"] {
            if tag == element || tag.starts_with(&format!("{element} ")) {
                let close = format!("</{element}");
                rest = match rest.to_ascii_lowercase().find(&close) {
                    Some(at) => rest[at..].find('>').map_or("", |gt| &rest[at + gt + 1..]),
                    None => "",
                };
            }
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of a PDF's pages. The parser is a library's; a panic inside it
/// on hostile input is caught and reported as this file's error.
fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let document = lopdf::Document::load_mem(bytes).map_err(|e| format!("not a PDF: {e}"))?;
        let pages: Vec<u32> = document
            .get_pages()
            .keys()
            .copied()
            .take(MAX_PDF_PAGES)
            .collect();
        document
            .extract_text(&pages)
            .map_err(|e| format!("PDF text: {e}"))
    }));
    match parsed {
        Ok(result) => result.map(|text| text.trim().to_string()),
        Err(_) => Err("PDF parser failed on this file".into()),
    }
}

/// The paragraphs of a DOCX's main document, a line each.
fn docx_text(bytes: &[u8]) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a DOCX (zip): {e}"))?;
    let part = archive
        .by_name("word/document.xml")
        .map_err(|e| format!("DOCX without word/document.xml: {e}"))?;
    let mut xml = String::new();
    part.take(MAX_DOCX_XML)
        .read_to_string(&mut xml)
        .map_err(|e| format!("DOCX document part unreadable: {e}"))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) if e.local_name().as_ref() == b"t" => {
                in_text = true
            }
            Ok(quick_xml::events::Event::End(e)) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => out.push('\n'),
                _ => {}
            },
            Ok(quick_xml::events::Event::Text(t)) if in_text => {
                out.push_str(&t.unescape().map_err(|e| format!("DOCX text: {e}"))?);
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Err(e) => return Err(format!("DOCX XML: {e}")),
            _ => {}
        }
        if out.len() > MAX_TEXT {
            break;
        }
    }
    Ok(out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_tags_and_scripts() {
        let text = html_text("<html><head><style>p{}</style><script>x<1</script></head><body><h1>A &amp; B</h1><p>c&nbsp;d</p></body></html>");
        assert_eq!(text, "A & B c d");
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        assert!(docx_text(b"not a zip").is_err());
        assert!(pdf_text(b"%PDF-1.4 garbage").is_err());
        assert!(pdf_text(b"").is_err());
        assert!(text_of(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "x.docx",
            &[0xff; 10]
        )
        .is_err());
        assert_eq!(
            text_of("text/plain", "a.txt", &[0xff, b'a']).unwrap(),
            "\u{fffd}a"
        );
        assert_eq!(html_text("<p>unclosed <b"), "unclosed");
    }
}
