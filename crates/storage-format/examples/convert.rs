//! Prints the Markdown of a storage-format file: `cargo run -p storage-format --example convert FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("a file");
    let input = std::fs::read_to_string(path).expect("readable");
    let converted = storage_format::to_markdown(&input, &storage_format::NoResolver);
    print!("{}", converted.output);
    for w in converted.warnings {
        eprintln!("warning at {}: {}", w.offset, w.message);
    }
}
