//! Any bytes, as storage format: conversion to Markdown, text and chunks
//! must return (no panic, no stack overflow) and chunks must stay inside
//! the Markdown. Run: `cargo +nightly fuzz run convert` in crates/storage-format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_format::{chunk, to_markdown, to_text, ChunkOptions, NoResolver};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let markdown = to_markdown(&input, &NoResolver);
    let _ = to_text(&input, &NoResolver);
    for c in chunk(&markdown.output, &ChunkOptions { chunk_size: 32, overlap: 4 }) {
        assert!(c.start <= c.end && c.end <= markdown.output.len());
        assert!(markdown.output.is_char_boundary(c.start) && markdown.output.is_char_boundary(c.end));
    }
});
