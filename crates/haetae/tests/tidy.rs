//! Tidy checks that keep the code base honest: every module opens with a
//! `//!` doc, and ARCHITECTURE.md names exactly the crates that exist.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_has_a_doc_comment() {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).expect("crates dir").flatten() {
        rust_files(&krate.path().join("src"), &mut files);
    }
    let mut missing = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Unit-test files are part of their parent module.
        if name == "tests.rs" || f.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            missing.push(f.strip_prefix(root()).unwrap_or(&f).display().to_string());
        }
    }
    assert!(missing.is_empty(), "modules without a `//!` doc: {missing:#?}");
}

#[test]
fn architecture_names_every_crate() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut crates: Vec<String> = std::fs::read_dir(root().join("crates"))
        .expect("crates dir")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    crates.sort();
    for c in &crates {
        assert!(
            arch.contains(&format!("`crates/{c}`")),
            "ARCHITECTURE.md has no section for crates/{c}"
        );
    }
    for line in arch.lines().filter(|l| l.starts_with("### `crates/")) {
        let name = line.trim_start_matches("### `crates/").split('`').next().unwrap_or("");
        assert!(
            crates.iter().any(|c| c == name),
            "ARCHITECTURE.md describes crates/{name}, which does not exist"
        );
    }
}
