//! Compacts `shaders/*.wgsl` into `OUT_DIR` for `include_str!`: comments and indentation
//! removed, every line kept (so a compiler message's line number is the file's). The
//! comments are a third of the WGSL text, and it ships inside every WebAssembly module
//! (3.4 KB of gzip measured). WGSL has no string literals, so `//` always starts a comment.
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(&dir).expect("the shaders/ directory");
    for entry in entries {
        let path = entry.expect("a shaders/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).expect("a WGSL file");
        assert!(
            !text.contains("/*"),
            "{}: block comments are not compacted; use //",
            path.display()
        );
        let compact: Vec<&str> = text
            .lines()
            .map(|line| line.split("//").next().unwrap_or("").trim())
            .collect();
        let name = path.file_name().expect("a file name");
        std::fs::write(Path::new(&out).join(name), compact.join("\n") + "\n")
            .expect("writing OUT_DIR");
    }
}
