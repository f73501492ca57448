//! Certificates and private keys that configuration keys name, read from
//! PEM files. Every error names the file, so a message can tell a person
//! which file to fix; the caller adds the key.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// A PEM file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file cannot be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{file} is not valid PEM: {detail}")]
    Malformed {
        /// The file.
        file: String,
        /// What the PEM reader found.
        detail: String,
    },
    /// The file holds no certificate.
    #[error("{file} holds no PEM certificate (a \"BEGIN CERTIFICATE\" block)")]
    NoCertificate {
        /// The file.
        file: String,
    },
    /// The file holds no private key.
    #[error("{file} holds no PEM private key (PKCS#8, RSA or EC)")]
    NoKey {
        /// The file.
        file: String,
    },
}

/// Every certificate in a PEM file, in the file's order; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let (file, bytes) = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(&file, e))?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate { file });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let (file, bytes) = read(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(PemError::NoKey { file }),
        Err(e) => Err(malformed(&file, e)),
    }
}

fn read(path: &Path) -> Result<(String, Vec<u8>), PemError> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((file, bytes)),
        Err(source) => Err(PemError::Read { file, source }),
    }
}

fn malformed(file: &str, e: pem::Error) -> PemError {
    PemError::Malformed {
        file: file.to_owned(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing.pem");
        let e = certificates(&missing).expect_err("no file");
        assert!(matches!(e, PemError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a certificate\n").expect("write");
        let e = certificates(&text).expect_err("no certificate");
        assert!(matches!(e, PemError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("notes.txt"), "{e}");
        let e = private_key(&text).expect_err("no key");
        assert!(matches!(e, PemError::NoKey { .. }), "{e}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").expect("write");
        let e = certificates(&broken).expect_err("no end marker");
        assert!(matches!(e, PemError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("broken.pem"), "{e}");
    }
}
