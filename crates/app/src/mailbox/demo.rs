//! `casebot serve --demo`: the invented example threads shipped in
//! `examples/threads/` (embedded in the binary), dropped into the watched
//! Maildir's `new/` so a fresh desk has cases, analyses and drafts to show.
//! Every person, company and case number in them is invented.

use std::path::Path;

use anyhow::{Context, Result};

use super::maildir::Maildir;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/example_threads.rs"));
}

/// The example mails: (a file name for the Maildir, the raw bytes), each
/// thread's mails in order.
pub fn example_mails() -> impl Iterator<Item = (String, &'static [u8])> {
    embedded::EXAMPLE_THREADS.iter().map(|(path, bytes)| {
        let name = path
            .trim_start_matches(['/', '\\'])
            .replace(['/', '\\'], "-");
        (format!("demo-{name}"), *bytes)
    })
}

/// Drops every example mail not dropped before into `new/` (written in
/// `tmp/`, then renamed, as a delivery agent does); returns how many. A mail
/// already in `new/` or `cur/` is left alone, so a second `--demo` start
/// adds nothing (and the store would recognise it anyway).
pub fn drop_examples(maildir: &Maildir) -> Result<usize> {
    // cur/ may hold thousands of mails: list it once. A handled mail keeps
    // its name with the Maildir flags (`:2,…`) appended.
    let cur = maildir.root.join("cur");
    let mut seen = std::collections::HashSet::new();
    for entry in
        std::fs::read_dir(&cur).with_context(|| format!("Cannot list {}", cur.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        seen.insert(name.split(':').next().unwrap_or_default().to_string());
    }
    let mut dropped = 0;
    for (name, bytes) in example_mails() {
        if seen.contains(&name) || maildir.root.join("new").join(&name).exists() {
            continue;
        }
        deliver(&maildir.root, &name, bytes)?;
        dropped += 1;
    }
    Ok(dropped)
}

fn deliver(root: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = root.join("tmp").join(name);
    let new = root.join("new").join(name);
    std::fs::write(&tmp, bytes).with_context(|| format!("Cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &new).with_context(|| format!("Cannot move {} to new/", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_each_example_once() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open("local", &dir.path().join("mail"), u64::MAX).unwrap();
        let total = example_mails().count();
        assert!(total >= 10, "the examples are embedded: {total}");
        assert_eq!(drop_examples(&maildir).unwrap(), total);
        // Filed and moved to cur/ by the daemon: not dropped again.
        for file in maildir.pending().unwrap().iter().take(3) {
            maildir.mark_handled(file).unwrap();
        }
        assert_eq!(drop_examples(&maildir).unwrap(), 0);
        assert_eq!(maildir.pending().unwrap().len(), total - 3);
    }
}
