//! Reading a catalog database that a reader must not touch: a private copy.
//!
//! A read-only open must leave the catalog folder byte- and file-identical.
//! SQLite cannot promise that for a database in WAL mode (a reader creates
//! the `-shm` index beside it) or one a crashed writer left a `-wal` or hot
//! `-journal` beside (recovering means writing). Such a database is copied —
//! with its side files, so the copy recovers to the last commit — into a
//! folder of our own and read there; the copy is refreshed whenever the
//! original changes, so a long-lived reader (the console) sees new commits.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Side files SQLite may keep next to a database.
const SIDE_FILES: [&str; 2] = ["-wal", "-journal"];

/// True when reading `db` in place could write next to it: the database is
/// in WAL mode (file format bytes 18–19 are 2), or a `-wal` or `-journal`
/// is lying beside it.
pub fn needs_private_copy(db: &Path) -> bool {
    let wal_mode = std::fs::read(db)
        .ok()
        .is_some_and(|b| b.len() > 19 && (b[18] == 2 || b[19] == 2));
    wal_mode || SIDE_FILES.iter().any(|s| side(db, s).exists())
}

fn side(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What identifies a version of the original: size and mtime of the
/// database and its side files.
type Stamp = Vec<Option<(u64, SystemTime)>>;

fn stamp(db: &Path) -> Stamp {
    std::iter::once(db.to_path_buf())
        .chain(SIDE_FILES.iter().map(|s| side(db, s)))
        .map(|p| {
            std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}

/// A private copy of a database, in a folder removed when it is dropped.
#[derive(Debug)]
pub struct PrivateCopy {
    source: PathBuf,
    dir: PathBuf,
    stamp: Stamp,
}

impl PrivateCopy {
    /// Copies `source` (and its side files) into a new private folder.
    pub fn new(source: &Path) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "ecops-db-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut copy = Self {
            source: source.to_path_buf(),
            dir,
            stamp: Vec::new(),
        };
        copy.refresh()?;
        Ok(copy)
    }

    /// The copy's database file.
    pub fn path(&self) -> PathBuf {
        self.dir.join("catalog.db")
    }

    /// True when the original changed since the copy was made.
    pub fn is_stale(&self) -> bool {
        stamp(&self.source) != self.stamp
    }

    /// Copies the original again: side files first, then the database, and
    /// again if the original changed meanwhile (a commit landed mid-copy).
    pub fn refresh(&mut self) -> std::io::Result<()> {
        for _ in 0..5 {
            let before = stamp(&self.source);
            let target = self.path();
            for suffix in SIDE_FILES.iter().chain(["-shm"].iter()) {
                let _ = std::fs::remove_file(side(&target, suffix));
            }
            for suffix in SIDE_FILES {
                let from = side(&self.source, suffix);
                if from.exists() {
                    std::fs::copy(&from, side(&target, suffix))?;
                }
            }
            std::fs::copy(&self.source, &target)?;
            if stamp(&self.source) == before {
                self.stamp = before;
                return Ok(());
            }
        }
        Err(std::io::Error::other(format!(
            "{} kept changing while it was copied",
            self.source.display()
        )))
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_follows_its_original_and_leaves_no_folder_behind() {
        let dir = std::env::temp_dir().join(format!("ecops-copy-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        std::fs::write(&db, b"one").unwrap();
        assert!(!needs_private_copy(&db));
        std::fs::write(side(&db, "-journal"), b"j").unwrap();
        assert!(needs_private_copy(&db));
        let mut copy = PrivateCopy::new(&db).unwrap();
        assert_eq!(std::fs::read(copy.path()).unwrap(), b"one");
        assert!(side(&copy.path(), "-journal").exists());
        assert!(!copy.is_stale());
        std::fs::write(&db, b"two!").unwrap();
        assert!(copy.is_stale());
        copy.refresh().unwrap();
        assert_eq!(std::fs::read(copy.path()).unwrap(), b"two!");
        let private = copy.dir.clone();
        drop(copy);
        assert!(!private.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
