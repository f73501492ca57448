//! The vessel's Ed25519 key on disk: a PKCS#8 document, readable by the
//! agent's user only (mode 0600), never overwritten once it exists.

use anyhow::{Context, Result, bail};
use keelson_sync::signing::VesselKey;
use std::io::Write;
use std::path::Path;

/// Loads the key, refusing a file other users can read.
pub fn load(path: &Path) -> Result<VesselKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    VesselKey::from_pkcs8(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a vessel key: {e}", path.display()))
}

/// Creates a key at `path` unless one exists; returns the key and whether
/// it was created.
pub fn load_or_create(path: &Path) -> Result<(VesselKey, bool)> {
    if path.exists() {
        return Ok((load(path)?, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (key, pkcs8) =
        VesselKey::generate().map_err(|e| anyhow::anyhow!("generating the key: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    // create_new refuses to overwrite a key another process just wrote.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&pkcs8)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((key, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/vessel.key");
        let (k1, created) = load_or_create(&path).expect("create");
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, created) = load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(k1.public_key_b64(), k2.public_key_b64());
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vessel.key");
        load_or_create(&path).expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = load(&path).expect_err("must refuse");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }
}
