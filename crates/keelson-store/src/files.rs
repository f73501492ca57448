//! Attachment files on disk: photos and documents attached to faults and
//! work orders, beside the database.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/<sha256>          a complete file, named by the SHA-256 of its bytes
//!                         (64 lowercase hex digits), never changed again
//! <dir>/tmp/<uuid>.tmp    a file being written; removed or renamed
//! <dir>/parts/<sha256>    a file arriving in chunks (the shore's side of
//!                         the files lane), not yet verified
//! ```
//!
//! The edge agent keeps one such directory (`attachments/` in its data
//! directory); the shore keeps one per vessel (`attachments/<vessel id>/`).
//!
//! # Invariants
//!
//! - A file is only ever seen under its final name whole: it is written
//!   under a temporary name, flushed to disk (`fsync`), renamed, and the
//!   directory is flushed too, so a crash leaves either nothing or the
//!   whole file under the final name, never a half file. Temporary files
//!   left by a crash are removed when the agent starts.
//! - Files are content-addressed: the same bytes attached twice are stored
//!   once, and a name always matches its content. A file that already
//!   exists is never rewritten.
//! - A part file only grows by chunks appended at the offset its caller
//!   holds as durable (in the database); a longer tail left by a crash is
//!   cut off first. A part becomes a file only once the SHA-256 of all its
//!   bytes matches its name, through the same flush and rename.
//! - Every name comes from a checked SHA-256, so no input can reach outside
//!   the directory.
//!
//! A file is written before the record that names it, so a crash between
//! the two leaves an unreferenced file (harmless, at most one per crash),
//! never a record whose file is missing. Nothing deletes files yet: they
//! are few and small next to the sensor data, and the disk budget of the
//! sensor tiers does not count them. A database backup does not hold them
//! either; the folder is copied beside it.

use crate::StoreError;
use keelson_model::attachment::validate_sha256;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// A directory of content-addressed files.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// What [`FileStore::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The SHA-256 of the bytes, which is also the file's name.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the bytes were new (false when the same file was there).
    pub new: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn checked(sha256: &str) -> Result<&str, StoreError> {
    validate_sha256(sha256)
        .map_err(|e| StoreError::Conflict(format!("file name: {}", e.reason)))?;
    Ok(sha256)
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl FileStore {
    /// Opens (creating when missing) the store in `dir`.
    pub fn open(dir: &Path) -> Result<FileStore, StoreError> {
        let store = FileStore {
            dir: dir.to_owned(),
        };
        for sub in [store.tmp_dir(), store.parts_dir()] {
            std::fs::create_dir_all(&sub).map_err(io(&sub))?;
        }
        Ok(store)
    }

    /// Removes the temporary files a crash may have left. Only for start-up,
    /// before anything writes: a running [`FileStore::put`] would lose its
    /// file.
    pub fn remove_temporaries(&self) -> Result<(), StoreError> {
        let tmp = self.tmp_dir();
        for entry in std::fs::read_dir(&tmp).map_err(io(&tmp))? {
            let path = entry.map_err(io(&tmp))?.path();
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover temporary file");
            }
        }
        Ok(())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn parts_dir(&self) -> PathBuf {
        self.dir.join("parts")
    }

    /// Where the file with this SHA-256 is (or would be) stored.
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(checked(sha256)?))
    }

    /// Whether the complete file with this SHA-256 is stored.
    pub fn contains(&self, sha256: &str) -> bool {
        self.path_of(sha256).is_ok_and(|p| p.is_file())
    }

    /// Stores `bytes` under their SHA-256: written to a temporary file,
    /// flushed, renamed, and the directory flushed. Bytes already stored are
    /// not written again.
    pub fn put(&self, bytes: &[u8]) -> Result<StoredFile, StoreError> {
        let sha256 = sha256_hex(bytes);
        let size = bytes.len() as u64;
        let target = self.path_of(&sha256)?;
        if target.is_file() {
            return Ok(StoredFile {
                sha256,
                size,
                new: false,
            });
        }
        let tmp = self
            .tmp_dir()
            .join(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        self.publish(&tmp, &target)?;
        Ok(StoredFile {
            sha256,
            size,
            new: true,
        })
    }

    /// Renames a flushed file to its final name and flushes the directory.
    fn publish(&self, from: &Path, target: &Path) -> Result<(), StoreError> {
        if let Err(e) = std::fs::rename(from, target) {
            let _ = std::fs::remove_file(from);
            return Err(io(target)(e));
        }
        sync_dir(&self.dir)
    }

    /// The whole file with this SHA-256, or `None` when it is not stored.
    pub fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(sha256)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Up to `len` bytes of the stored file from `offset`; `None` when the
    /// file is not stored.
    pub fn read_range(
        &self,
        sha256: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(sha256)?;
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut out = Vec::with_capacity(len);
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.take(len as u64).read_to_end(&mut out))
            .map_err(io(&path))?;
        Ok(Some(out))
    }

    /// Appends `data` to the part file of `sha256` at `durable`, the length
    /// the caller holds as durable: any longer tail is cut first. The part
    /// is flushed before this returns, so the caller may then record
    /// `durable + data.len()`.
    pub fn append_part(&self, sha256: &str, durable: u64, data: &[u8]) -> Result<(), StoreError> {
        let path = self.parts_dir().join(checked(sha256)?);
        let fresh = !path.exists();
        let result = (|| {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&path)?;
            f.set_len(durable)?;
            f.seek(SeekFrom::Start(durable))?;
            f.write_all(data)?;
            f.sync_data()
        })();
        result.map_err(io(&path))?;
        if fresh {
            sync_dir(&self.parts_dir())?;
        }
        Ok(())
    }

    /// Checks the part file of `sha256` once all `size` bytes have arrived:
    /// when its bytes hash to its name and `accept` takes them, it is moved
    /// under its final name and `true` is returned; otherwise the part is
    /// removed and `false` is returned, so the sender starts over.
    pub fn finish_part(
        &self,
        sha256: &str,
        size: u64,
        accept: impl FnOnce(&[u8]) -> bool,
    ) -> Result<bool, StoreError> {
        let part = self.parts_dir().join(checked(sha256)?);
        let mut bytes = std::fs::read(&part).map_err(io(&part))?;
        bytes.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        if bytes.len() as u64 != size || sha256_hex(&bytes) != sha256 || !accept(&bytes) {
            self.drop_part(sha256)?;
            return Ok(false);
        }
        let target = self.path_of(sha256)?;
        if target.is_file() {
            self.drop_part(sha256)?;
            return Ok(true);
        }
        // The part may carry a torn tail past `size`; cut it before the
        // rename so the final name holds exactly the verified bytes.
        OpenOptions::new()
            .write(true)
            .open(&part)
            .and_then(|f| {
                f.set_len(size)?;
                f.sync_all()
            })
            .map_err(io(&part))?;
        self.publish(&part, &target)?;
        Ok(true)
    }

    /// Removes the part file of `sha256`, if any.
    pub fn drop_part(&self, sha256: &str) -> Result<(), StoreError> {
        let part = self.parts_dir().join(checked(sha256)?);
        match std::fs::remove_file(&part) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&part)(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn files_are_stored_once_under_their_hash_and_temporaries_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let a = store.put(b"a photo of a leaking flange").unwrap();
        assert!(a.new);
        assert_eq!(a.sha256, sha256_hex(b"a photo of a leaking flange"));
        assert_eq!(a.size, 27);
        let again = store.put(b"a photo of a leaking flange").unwrap();
        assert_eq!(again.sha256, a.sha256);
        assert!(!again.new, "the same bytes are stored once");
        assert_eq!(names(dir.path()), [a.sha256.as_str(), "parts", "tmp"]);
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert_eq!(
            store.read(&a.sha256).unwrap().as_deref(),
            Some(&b"a photo of a leaking flange"[..])
        );
        assert_eq!(
            store.read_range(&a.sha256, 2, 5).unwrap().as_deref(),
            Some(&b"photo"[..])
        );
        assert!(store.contains(&a.sha256));
        assert_eq!(store.read(&"0".repeat(64)).unwrap(), None);
        assert!(
            store.read("../keelson.db").is_err(),
            "names are hashes only"
        );
    }

    #[test]
    fn a_crash_leaves_no_half_file_under_a_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        // What a crash in the middle of `put` leaves: a temporary file.
        std::fs::write(dir.path().join("tmp/0123.tmp"), b"half a ph").unwrap();
        assert_eq!(names(dir.path()), ["parts", "tmp"]);
        store.remove_temporaries().unwrap();
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn parts_become_files_only_when_their_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let bytes = b"0123456789abcdefghij";
        let sha = sha256_hex(bytes);
        store.append_part(&sha, 0, &bytes[..8]).unwrap();
        // A torn tail after the last durable chunk is cut off.
        store.append_part(&sha, 8, b"garbage-tail").unwrap();
        store.append_part(&sha, 8, &bytes[8..]).unwrap();
        assert!(!store.contains(&sha));
        assert!(store.finish_part(&sha, 20, |b| b == bytes).unwrap());
        assert_eq!(store.read(&sha).unwrap().as_deref(), Some(&bytes[..]));
        assert!(names(&dir.path().join("parts")).is_empty());

        let wrong = sha256_hex(b"something else");
        store.append_part(&wrong, 0, bytes).unwrap();
        assert!(!store.finish_part(&wrong, 20, |_| true).unwrap());
        assert!(
            !store.contains(&wrong),
            "a mismatching part never becomes a file"
        );
        assert!(names(&dir.path().join("parts")).is_empty());

        // Whole and matching, but refused by the caller's own check.
        store.append_part(&sha256_hex(b"x"), 0, b"x").unwrap();
        assert!(!store.finish_part(&sha256_hex(b"x"), 1, |_| false).unwrap());
        assert!(!store.contains(&sha256_hex(b"x")));
    }
}
