//! The local Maildir the daemon watches (the embedded default mailbox).
//!
//! A mail delivered into `new/` is filed, then moved to `cur/` as Maildir
//! readers do. The move happens only after the store committed, so a crash
//! in between leaves the file in `new/` and the next scan files it again,
//! which the store recognises as a duplicate: nothing is lost or counted twice.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A Maildir folder: `new/`, `cur/`, `tmp/`.
#[derive(Debug, Clone)]
pub struct Maildir {
    pub name: String,
    pub root: PathBuf,
}

impl Maildir {
    /// Opens the Maildir, creating its three folders if missing.
    pub fn open(name: &str, root: &Path) -> Result<Self> {
        for sub in ["new", "cur", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("Cannot create {}", dir.display()))?;
        }
        Ok(Self {
            name: name.to_string(),
            root: root.to_path_buf(),
        })
    }

    /// Files waiting in `new/`, oldest name first.
    pub fn pending(&self) -> Result<Vec<PathBuf>> {
        let dir = self.root.join("new");
        let mut files = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("Cannot list {}", dir.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_file() && !entry.file_name().to_string_lossy().starts_with('.')
            {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Moves a handled file from `new/` to `cur/` (flags left empty: casebot
    /// does not mark mail as read).
    pub fn mark_handled(&self, file: &Path) -> Result<()> {
        let Some(name) = file.file_name() else {
            return Ok(());
        };
        let mut target = name.to_string_lossy().into_owned();
        if !target.contains(":2,") {
            target.push_str(":2,");
        }
        let to = self.root.join("cur").join(target);
        std::fs::rename(file, &to)
            .with_context(|| format!("Cannot move {} to {}", file.display(), to.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_handled() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open("local", &dir.path().join("mail")).unwrap();
        std::fs::write(md.root.join("new/2.x"), "b").unwrap();
        std::fs::write(md.root.join("new/1.x"), "a").unwrap();
        let pending = md.pending().unwrap();
        assert_eq!(pending.len(), 2);
        assert!(pending[0].ends_with("1.x"));
        md.mark_handled(&pending[0]).unwrap();
        assert_eq!(md.pending().unwrap().len(), 1);
        assert!(md.root.join("cur/1.x:2,").exists());
    }
}
