//! How the vessel trusts the shore's HTTPS certificate.
//!
//! - `[sync] shore_ca_file`: only the certificates in that PEM file are
//!   trusted (a private CA, or the shore's own self-signed certificate),
//!   never the public web roots; the name in `shore_url` must match.
//! - `[sync] shore_cert_sha256`: the shore's own certificate must have this
//!   SHA-256 fingerprint, whatever signed it and whatever names it holds.
//!   With a CA file as well, both must hold.
//! - Neither: the public web roots, as any HTTPS client.
//!
//! rustls with the ring provider does the handshake either way; the pin is
//! checked by a certificate verifier that still has rustls verify the
//! handshake's signatures with the certificate's key, so a copy of the
//! shore's certificate without its key gets nowhere.

use crate::config::SyncConfig;
use keelson_config::pem::{self, PemError};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::sync::Arc;

/// The SHA-256 fingerprint of a certificate's DER encoding: 64 hexadecimal
/// digits, or as `openssl x509 -noout -fingerprint -sha256` prints it.
#[derive(Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct CertFingerprint([u8; 32]);

impl CertFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> CertFingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        CertFingerprint(bytes)
    }
}

impl std::str::FromStr for CertFingerprint {
    type Err = String;

    fn from_str(s: &str) -> Result<CertFingerprint, String> {
        // openssl prints `sha256 Fingerprint=AB:CD:…`; the whole line may
        // be pasted.
        let value = s.rsplit('=').next().unwrap_or(s);
        let digits: String = value.trim().chars().filter(|c| *c != ':').collect();
        let wanted = "must be the SHA-256 fingerprint of the shore's certificate: 64 \
                      hexadecimal digits, colons allowed";
        let count = digits.chars().count();
        if count != 64 {
            return Err(format!("{wanted}; this has {count} characters"));
        }
        let mut bytes = [0; 32];
        match hex::decode_to_slice(&digits, &mut bytes) {
            Ok(()) => Ok(CertFingerprint(bytes)),
            Err(_) => Err(format!("{wanted}; this has other characters")),
        }
    }
}

impl TryFrom<String> for CertFingerprint {
    type Error = String;

    fn try_from(s: String) -> Result<CertFingerprint, String> {
        s.parse()
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

/// Why the configured trust cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file cannot be used.
    #[error("{0}")]
    CaFile(PemError),
    /// A certificate of the CA file cannot be a trust anchor.
    #[error("{file} holds a certificate that cannot be trusted as a CA: {detail}")]
    BadCa {
        /// The CA file.
        file: String,
        /// rustls's reason.
        detail: String,
    },
    /// rustls cannot be set up with the ring provider (a build fault).
    #[error("TLS cannot be set up: {0}")]
    Setup(String),
}

/// The TLS client configuration for the shore, or `None` to keep the HTTP
/// client's own: the public web roots.
pub fn client_config(sync: &SyncConfig) -> Result<Option<rustls::ClientConfig>, TrustError> {
    if sync.shore_ca_file.is_none() && sync.shore_cert_sha256.is_none() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match &sync.shore_ca_file {
        Some(path) => {
            let file = path.display().to_string();
            let mut roots = rustls::RootCertStore::empty();
            for cert in pem::certificates(path).map_err(TrustError::CaFile)? {
                roots.add(cert).map_err(|e| TrustError::BadCa {
                    file: file.clone(),
                    detail: e.to_string(),
                })?;
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TrustError::BadCa {
                        file,
                        detail: e.to_string(),
                    })?;
            Some(verifier)
        }
        None => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TrustError::Setup(e.to_string()))?;
    let builder = match (sync.shore_cert_sha256, chain) {
        (None, Some(chain)) => builder.with_webpki_verifier(chain),
        (Some(pin), chain) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pin,
                chain,
                algorithms: provider.signature_verification_algorithms,
            })),
        (None, None) => return Ok(None),
    };
    Ok(Some(builder.with_no_client_auth()))
}

/// The shore's certificate is not the pinned one.
#[derive(Debug)]
struct PinMismatch {
    presented: CertFingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the shore's certificate does not match the pinned fingerprint \
             (sync.shore_cert_sha256): it presented a certificate with SHA-256 {}; if the \
             shore's certificate was replaced, pin the new one, otherwise the vessel may be \
             talking to something other than the shore",
            self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Accepts the shore's certificate only when its SHA-256 is the pinned one
/// (and, with a CA file, when that CA's verifier accepts it too).
#[derive(Debug)]
struct PinnedVerifier {
    pin: CertFingerprint,
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = CertFingerprint::of(end_entity.as_ref());
        // The digests are public values, so comparing them in variable
        // time reveals nothing.
        if presented != self.pin {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch { presented })),
            )));
        }
        if let Some(chain) = &self.chain {
            chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Words for fleet IT when `error` (from the HTTP client) is the shore's
/// certificate being refused; `None` for any other failure.
pub fn refusal(error: &(dyn std::error::Error + 'static), sync: &SyncConfig) -> Option<String> {
    let rustls::Error::InvalidCertificate(refused) = find_rustls_error(error)? else {
        return None;
    };
    let ca = sync.shore_ca_file.as_ref().map(|p| p.display().to_string());
    Some(match refused {
        CertificateError::Other(other) => {
            let cause = other.0.as_ref();
            if let Some(mismatch) = cause.downcast_ref::<PinMismatch>() {
                mismatch.to_string()
            } else if let Some(webpki::Error::CaUsedAsEndEntity) =
                cause.downcast_ref::<webpki::Error>()
            {
                // openssl's `req -x509` makes such a certificate unless told
                // otherwise.
                "the shore's certificate is a CA certificate (basic constraints CA:TRUE), \
                 which cannot be a server's own certificate; make it with CA:FALSE, or pin \
                 it with sync.shore_cert_sha256 instead of trusting it as a CA"
                    .to_owned()
            } else {
                format!("the shore's certificate is not acceptable: {other}")
            }
        }
        // A certificate whose issuer's name is among the trusted ones but
        // not signed by its key is as unknown as one whose issuer is not.
        CertificateError::UnknownIssuer | CertificateError::BadSignature => match ca {
            Some(file) => format!(
                "the shore's certificate is not signed by a certificate in \
                 sync.shore_ca_file ({file})"
            ),
            None => "the shore's certificate is not signed by a publicly trusted authority; \
                     for a shore with its own or a private CA's certificate, set \
                     sync.shore_ca_file or sync.shore_cert_sha256"
                .to_owned(),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the shore's certificate is not valid for the host in sync.shore_url \
                 ({refused})"
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
            "the shore's certificate has expired, or this computer's clock is wrong ({refused})"
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "the shore's certificate is not valid yet, or this computer's clock is wrong \
             ({refused})"
        ),
        other => format!("the shore's certificate is not acceptable: {other}"),
    })
}

/// The rustls error behind an HTTP client error, if any. It sits in the
/// chain of sources, wrapped in I/O errors whose own `source` skips what
/// they wrap, so those are opened by hand.
fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_as_openssl_prints_them() {
        let hex64 = "3a".repeat(32);
        let plain: CertFingerprint = hex64.parse().expect("plain hex");
        let colons = vec!["3A"; 32].join(":");
        assert_eq!(
            colons.parse::<CertFingerprint>().expect("openssl's form"),
            plain
        );
        let line = format!("sha256 Fingerprint={colons}");
        assert_eq!(
            line.parse::<CertFingerprint>().expect("openssl's line"),
            plain
        );
        assert_eq!(plain.to_string(), hex64);
        assert!("3a".repeat(31).parse::<CertFingerprint>().is_err());
        assert!(
            format!("{}zz", "3a".repeat(31))
                .parse::<CertFingerprint>()
                .is_err()
        );
        assert_eq!(
            CertFingerprint::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
