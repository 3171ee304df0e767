//! The build script of the crates that embed a shipped folder, chosen by
//! the crate being built: the store rebuilds when the migrations change
//! (they are embedded); the analysis crate embeds `rules/` and the drafting
//! crate `templates/`, which the binary falls back on when the configured
//! folder is the default and does not exist (a binary run outside the
//! repository still analyses and drafts); the application embeds the
//! invented example threads `casebot serve --demo` drops into the Maildir,
//! and records the commit it is built from (`casebot_build_info`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    // Every crate that uses this script lies two folders below the
    // repository's root, where the shipped folders are.
    let root = Path::new("../..");
    match std::env::var("CARGO_PKG_NAME").as_deref() {
        Ok("casebot-store") => {
            println!("cargo:rerun-if-changed=../../migrations");
        }
        Ok("casebot-analysis") => embed(
            &root.join("rules"),
            "toml",
            "EMBEDDED_RULES",
            &out_dir.join("embedded_rules.rs"),
        ),
        Ok("casebot-drafting") => embed(
            &root.join("templates"),
            "hbs",
            "EMBEDDED_TEMPLATES",
            &out_dir.join("embedded_templates.rs"),
        ),
        Ok("casebot-app") => {
            embed(
                &root.join("examples/threads"),
                "eml",
                "EXAMPLE_THREADS",
                &out_dir.join("example_threads.rs"),
            );
            record_commit(root);
        }
        _ => {}
    }
}

/// `CASEBOT_COMMIT` for the binary: the checkout's commit; a build outside
/// a git checkout (a source tarball) says `unknown` unless the environment
/// variable of that name is set.
fn record_commit(root: &Path) {
    println!("cargo:rerun-if-env-changed=CASEBOT_COMMIT");
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        let path = root.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = std::env::var("CASEBOT_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|c| !c.is_empty())
    });
    println!(
        "cargo:rustc-env=CASEBOT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}

/// Writes `const NAME: &[(path inside folder, contents)]` for every `.ext`
/// file: text as `&str`, mail (raw bytes, any charset) as `&[u8]`.
fn embed(folder: &Path, ext: &str, name: &str, dest: &Path) {
    let (kind, include) = if ext == "eml" {
        ("&[u8]", "include_bytes")
    } else {
        ("&str", "include_str")
    };
    println!("cargo:rerun-if-changed={}", folder.display());
    let mut files = Vec::new();
    collect(folder, ext, &mut files);
    files.sort();
    let mut out = format!(
        "/// The shipped {} folder: (path inside it, contents).\npub const {name}: &[(&str, {kind})] = &[\n",
        folder.display()
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
