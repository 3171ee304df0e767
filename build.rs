//! Build script: rebuild when the migrations change (they are embedded), and
//! embed a copy of the shipped `rules/` folder, which the binary falls back on
//! when the configured folder is the default and does not exist (a binary run
//! outside the repository still analyses).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=rules");
    let mut files = Vec::new();
    collect(Path::new("rules"), &mut files);
    files.sort();
    let mut out = String::from(
        "/// The shipped rules folder: (path inside it, contents).\npub const EMBEDDED_RULES: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        let rel = file.strip_prefix("rules").unwrap_or(file);
        let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        let _ = writeln!(
            out,
            "    ({:?}, include_str!({:?})),",
            rel.display().to_string(),
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("embedded_rules.rs");
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("cannot write embedded_rules.rs: {e}"));
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
}
