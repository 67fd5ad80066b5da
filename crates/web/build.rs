//! Embeds every message catalogue (`i18n/*.txt`) and every asset (`assets/**`) by listing
//! the folders, so that a new area adds its files without editing a shared list.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let mut code = String::new();

    let i18n = root.join("i18n");
    println!("cargo:rerun-if-changed={}", i18n.display());
    let mut list = Vec::new();
    files(&i18n, &mut list);
    code.push_str("/// (file name, text) of every message catalogue.\npub static CATALOGUES: &[(&str, &str)] = &[\n");
    for p in list.iter().filter(|p| p.extension().is_some_and(|e| e == "txt")) {
        let name = p.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
        writeln!(code, "    ({name:?}, include_str!({:?})),", p.display().to_string()).expect("write");
    }
    code.push_str("];\n");

    let assets = root.join("assets");
    println!("cargo:rerun-if-changed={}", assets.display());
    let mut list = Vec::new();
    files(&assets, &mut list);
    code.push_str("/// (path under assets/, bytes) of every asset.\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for p in &list {
        let rel = p.strip_prefix(&assets).expect("under assets").to_str().expect("utf-8 path").replace('\\', "/");
        writeln!(code, "    ({rel:?}, include_bytes!({:?})),", p.display().to_string()).expect("write");
    }
    code.push_str("];\n");

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}
