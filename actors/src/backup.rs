//! Backups of the embedded journal: a consistent copy taken while the engine runs (SQLite's
//! online backup API reads one snapshot of the file, whatever is committed meanwhile), checked
//! before anything relies on it, and restored only into a journal no engine holds.
//!
//! A running engine holds an exclusive lock on `<journal>.lock` for as long as it runs
//! (`JournalLock`, taken by the server before it opens the journal): a second engine cannot
//! open the same file, and a restore cannot overwrite it.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::journal::row_to_event;

/// What a journal file holds: per branch, its last position and its number of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub branches: Vec<BranchContents>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchContents {
    pub branch: String,
    pub head: u64,
    pub events: u64,
}

impl Contents {
    pub fn events(&self) -> u64 {
        self.branches.iter().map(|b| b.events).sum()
    }
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events", self.events())?;
        for b in &self.branches {
            write!(
                f,
                "; branch {} at position {} ({} events)",
                b.branch, b.head, b.events
            )?;
        }
        Ok(())
    }
}

/// Why a backup or restore did nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already: name a new file (nothing was written)")]
    TargetExists(PathBuf),
    #[error("the journal {0} is held by a running engine: stop that engine first")]
    InUse(PathBuf),
    #[error("{path} is not a usable journal copy: {reason}")]
    Unusable { path: PathBuf, reason: String },
    #[error("{0}")]
    Io(String),
}

fn io(e: impl std::fmt::Display) -> BackupError {
    BackupError::Io(e.to_string())
}

/// An engine's hold on its journal file: exclusive while it lives, released when dropped (or
/// when the process ends, however it ends).
#[derive(Debug)]
pub struct JournalLock {
    _file: File,
}

impl JournalLock {
    /// Takes the lock of the journal at `journal`, or says that an engine holds it.
    pub fn take(journal: &Path) -> Result<Self, BackupError> {
        if let Some(dir) = journal.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(journal))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(BackupError::InUse(journal.to_owned())),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

fn lock_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Copies the journal at `journal` (in use or not) to the new file `to`, checks the copy, and
/// says what it holds. The copy is written beside `to` and renamed into place once whole.
pub fn backup(journal: &Path, to: &Path) -> Result<Contents, BackupError> {
    if to.exists() {
        return Err(BackupError::TargetExists(to.to_owned()));
    }
    if !journal.exists() {
        return Err(BackupError::Unusable {
            path: journal.to_owned(),
            reason: "no such file".into(),
        });
    }
    let source =
        Connection::open_with_flags(journal, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(io)?;
    source
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(io)?;
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    copy(&source, &partial)?;
    let contents = match check(&partial) {
        Ok(contents) => contents,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, to).map_err(io)?;
    Ok(contents)
}

/// Replaces the journal at `journal` with the copy `from`, once the copy checks out and no
/// engine holds the journal.
pub fn restore(from: &Path, journal: &Path) -> Result<Contents, BackupError> {
    let contents = check(from)?;
    let _lock = JournalLock::take(journal)?;
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(io)?;
    copy(&source, journal)?;
    let restored = check(journal)?;
    if restored != contents {
        return Err(BackupError::Io(format!(
            "the restored journal holds {restored}, the copy {contents}"
        )));
    }
    Ok(restored)
}

/// Copies every page of `source` into the database at `to` (created when missing), as one
/// consistent snapshot of `source`.
fn copy(source: &Connection, to: &Path) -> Result<(), BackupError> {
    let mut target = Connection::open(to).map_err(io)?;
    let backup = rusqlite::backup::Backup::new(source, &mut target).map_err(io)?;
    backup
        .run_to_completion(1024, std::time::Duration::ZERO, None)
        .map_err(io)?;
    drop(backup);
    // The copy stands on its own: nothing of it left in a write-ahead log.
    target
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(io)?;
    Ok(())
}

/// Checks that the file at `path` is a whole journal: SQLite finds it intact, it has the
/// journal's tables, and every event in it reads as a known event of a known format.
pub fn check(path: &Path) -> Result<Contents, BackupError> {
    let unusable = |reason: String| BackupError::Unusable {
        path: path.to_owned(),
        reason,
    };
    if !path.is_file() {
        return Err(unusable("no such file".into()));
    }
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| unusable(e.to_string()))?;
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| unusable(e.to_string()))?;
    if integrity != "ok" {
        return Err(unusable(format!(
            "SQLite's integrity check says: {integrity}"
        )));
    }
    for table in ["events", "streams", "idempotency_keys", "snapshots"] {
        let found: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| unusable(e.to_string()))?;
        if found != 1 {
            return Err(unusable(format!("it has no {table} table")));
        }
    }
    let mut query = db
        .prepare(
            "SELECT e.stream, e.seq, e.branch, e.position, e.kind, e.body, e.at \
             FROM events e ORDER BY e.branch, e.position",
        )
        .map_err(|e| unusable(e.to_string()))?;
    let mut rows = query.query([]).map_err(|e| unusable(e.to_string()))?;
    let mut branches: Vec<BranchContents> = Vec::new();
    while let Some(row) = rows.next().map_err(|e| unusable(e.to_string()))? {
        let event = row_to_event(row).map_err(|e| unusable(e.to_string()))?;
        crate::stored::decode(&event).map_err(|e| {
            unusable(format!(
                "event {} of branch {} does not read: {e}",
                event.position, event.branch
            ))
        })?;
        match branches.last_mut() {
            Some(b) if b.branch == event.branch => {
                b.head = event.position;
                b.events += 1;
            }
            _ => branches.push(BranchContents {
                branch: event.branch.clone(),
                head: event.position,
                events: 1,
            }),
        }
    }
    Ok(Contents { branches })
}
