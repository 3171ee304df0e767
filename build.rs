//! Build script: rebuild when the migrations change (they are embedded), and
//! embed copies of the shipped `rules/` and `templates/` folders, which the
//! binary falls back on when the configured folder is the default and does
//! not exist (a binary run outside the repository still analyses and drafts),
//! and the invented example threads `casebot serve --demo` drops into the
//! Maildir.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    embed(
        "rules",
        "toml",
        "EMBEDDED_RULES",
        &out_dir.join("embedded_rules.rs"),
    );
    embed(
        "templates",
        "hbs",
        "EMBEDDED_TEMPLATES",
        &out_dir.join("embedded_templates.rs"),
    );
    embed(
        "examples/threads",
        "eml",
        "EXAMPLE_THREADS",
        &out_dir.join("example_threads.rs"),
    );
}

/// Writes `const NAME: &[(path inside folder, contents)]` for every `.ext`
/// file: text as `&str`, mail (raw bytes, any charset) as `&[u8]`.
fn embed(folder: &str, ext: &str, name: &str, dest: &Path) {
    let (kind, include) = if ext == "eml" {
        ("&[u8]", "include_bytes")
    } else {
        ("&str", "include_str")
    };
    println!("cargo:rerun-if-changed={folder}");
    let mut files = Vec::new();
    collect(Path::new(folder), ext, &mut files);
    files.sort();
    let mut out = format!(
        "/// The shipped {folder} folder: (path inside it, contents).\npub const {name}: &[(&str, {kind})] = &[\n"
    );
    for file in &files {
        let rel = file.strip_prefix(folder).unwrap_or(file);
        let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        let _ = writeln!(
            out,
            "    ({:?}, {include}!({:?})),",
            rel.display().to_string(),
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

fn collect(dir: &Path, ext: &str, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, ext, files);
        } else if path.extension().is_some_and(|e| e == ext) {
            files.push(path);
        }
    }
}
