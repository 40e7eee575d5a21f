//! Attachment files with real content, generated from (seed, id, version):
//! plain text, Markdown, CSV, HTML, PDF, DOCX and PNG. The PDF and DOCX are
//! well-formed documents that real extractors can read.

use rand::Rng;
use std::fmt::Write as _;
use std::io::Write as _;

use crate::text::{self, rng_for};

/// Media types the generator uses, with their file extensions.
pub const MEDIA_TYPES: &[(&str, &str)] = &[
    ("text/plain", "txt"),
    ("text/markdown", "md"),
    ("text/csv", "csv"),
    ("text/html", "html"),
    ("application/pdf", "pdf"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("image/png", "png"),
];

pub fn media_type_description(media_type: &str) -> &'static str {
    match media_type {
        "text/plain" => "Text File",
        "text/markdown" => "Markdown File",
        "text/csv" => "CSV File",
        "text/html" => "HTML Document",
        "application/pdf" => "PDF Document",
        "image/png" => "PNG Image",
        _ => "Word Document",
    }
}

/// The lines of prose a file carries; the same for every format, so a test
/// can check that text extraction found them.
pub fn file_lines(seed: u64, id: u64, version: u32) -> Vec<String> {
    let mut rng = rng_for(seed, &[id, version as u64, 0xf11e]);
    let n_lines = rng.gen_range(3..9);
    (0..n_lines).map(|_| text::sentence(&mut rng)).collect()
}

pub fn render(seed: u64, id: u64, version: u32, media_type: &str, title: &str) -> Vec<u8> {
    let lines = file_lines(seed, id, version);
    match media_type {
        "text/plain" => lines.join("\n").into_bytes(),
        "text/markdown" => {
            let mut out = format!("# {title}\n\n");
            for line in &lines {
                let _ = writeln!(out, "- {line}");
            }
            out.into_bytes()
        }
        "text/csv" => {
            let mut out = String::from("row,text,words\n");
            for (row, line) in lines.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{},\"{}\",{}",
                    row + 1,
                    line.replace('"', "\"\""),
                    line.split(' ').count()
                );
            }
            out.into_bytes()
        }
        "text/html" => {
            let mut out = format!(
                "<!DOCTYPE html><html><head><title>{0}</title></head><body><h1>{0}</h1>",
                crate::body::escape(title)
            );
            for line in &lines {
                let _ = write!(out, "<p>{}</p>", crate::body::escape(line));
            }
            out.push_str("</body></html>");
            out.into_bytes()
        }
        "application/pdf" => pdf(&lines),
        "image/png" => PNG_1X1.to_vec(),
        _ => docx(&lines),
    }
}

/// A one-page PDF 1.4 with the lines in Helvetica, uncompressed, with a
/// correct cross-reference table.
fn pdf(lines: &[String]) -> Vec<u8> {
    let mut stream = String::from("BT /F1 11 Tf 72 720 Td 14 TL\n");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        let _ = writeln!(stream, "({escaped}) Tj T*");
    }
    stream.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{}\nendstream",
            stream.len(),
            stream
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{}\nendobj\n", index + 1, object);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        let _ = writeln!(out, "{offset:010} 00000 n ");
    }
    let _ = write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out
}

/// A minimal Office Open XML document: content types, package relations
/// and the main part, one paragraph a line. Timestamps are fixed so the
/// same inputs give the same bytes.
fn docx(lines: &[String]) -> Vec<u8> {
    let mut document = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>",
    );
    for line in lines {
        let _ = write!(
            document,
            "<w:p><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
            crate::body::escape(line)
        );
    }
    document.push_str("<w:sectPr/></w:body></w:document>");
    let parts: [(&str, &str); 3] = [
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
             </Types>",
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
             </Relationships>",
        ),
        ("word/document.xml", &document),
    ];
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default());
        for (name, content) in parts {
            // Writing to an in-memory buffer cannot fail for I/O reasons.
            if zip.start_file(name, options).is_ok() {
                let _ = zip.write_all(content.as_bytes());
            }
        }
        let _ = zip.finish();
    }
    buffer.into_inner()
}

/// A valid 1x1 transparent PNG: images carry no text, which is the point.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
];
