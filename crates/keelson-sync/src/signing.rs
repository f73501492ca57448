//! Ed25519 request signatures: how the shore knows a sync request comes from
//! the vessel it names and was not altered or replayed late.
//!
//! Each vessel holds an Ed25519 key ([`VesselKey`], stored as PKCS#8); the
//! shore holds its public key, registered as standard base64 of the raw 32
//! bytes. Every request carries four headers ([`HEADER_VESSEL`],
//! [`HEADER_TIMESTAMP`], [`HEADER_NONCE`], [`HEADER_SIGNATURE`]) and the
//! signature covers this canonical message, lines joined by `\n`:
//!
//! ```text
//! KEELSON-SYNC-1
//! {METHOD}            upper case
//! {path}              as sent, including any query string
//! {vessel_id}
//! {timestamp}         unix seconds, decimal
//! {nonce}             32 lower-case hex characters (16 random bytes)
//! {hex(sha256(body))} lower case
//! ```
//!
//! No field may contain a line break (vessel ids, methods, paths and nonces
//! are all checked), so the message is unambiguous.
//!
//! [`verify_request`] checks the nonce's form, the timestamp's distance from
//! the receiver's clock and the signature. It cannot tell a replay inside the
//! skew window: remembering the nonces seen for a vessel during the last
//! `2 × max_skew_secs` needs persistence, and that is the caller's job.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use keelson_model::validate_vessel_id;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::SyncError;

/// Header naming the vessel that signs the request.
pub const HEADER_VESSEL: &str = "x-keelson-vessel";
/// Header with the signing time in unix seconds.
pub const HEADER_TIMESTAMP: &str = "x-keelson-timestamp";
/// Header with 16 random bytes as 32 hex characters.
pub const HEADER_NONCE: &str = "x-keelson-nonce";
/// Header with the Ed25519 signature in standard base64.
pub const HEADER_SIGNATURE: &str = "x-keelson-signature";
/// First line of every signed message; bumped if the format ever changes.
pub const SIGNATURE_SCHEME: &str = "KEELSON-SYNC-1";
/// A reasonable `max_skew_secs` for [`verify_request`]: vessel clocks follow
/// GPS, but requests can sit in a retry queue on a flaky link.
pub const DEFAULT_MAX_SKEW_SECS: i64 = 300;
/// Length of a nonce in bytes.
pub const NONCE_BYTES: usize = 16;

const ED25519_PUBLIC_KEY_LEN: usize = 32;
const ED25519_SIGNATURE_LEN: usize = 64;
/// Longest signature header worth decoding; base64 of 64 bytes is 88.
const MAX_SIGNATURE_B64_LEN: usize = 128;

/// A vessel's Ed25519 signing key.
pub struct VesselKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for VesselKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the public half is printed, so a key in a log line or a panic
        // message never leaks the private half.
        f.debug_struct("VesselKey")
            .field("public_key", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl VesselKey {
    /// Generates a new key and returns it with its PKCS#8 (v2) document, which
    /// the caller stores (mode 0600) to load the key again.
    pub fn generate() -> Result<(VesselKey, Vec<u8>), SyncError> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SyncError::Internal("generating an Ed25519 key failed".into()))?;
        let pkcs8 = document.as_ref().to_vec();
        let key = VesselKey::from_pkcs8(&pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Loads a key from a PKCS#8 document. Both v2 (what [`generate`] and
    /// ring write) and v1 (what `openssl genpkey -algorithm ed25519` writes)
    /// are accepted; a v2 document's public key must match its private key.
    ///
    /// [`generate`]: VesselKey::generate
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<VesselKey, SyncError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| SyncError::BadKey(format!("PKCS#8 Ed25519 key: {e}")))?;
        Ok(VesselKey {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The PKCS#8 document the key was made from.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 32-byte public key in standard base64, as registered at the shore.
    pub fn public_key_b64(&self) -> String {
        BASE64.encode(self.pair.public_key().as_ref())
    }

    /// Signs `msg`; the result is the 64-byte Ed25519 signature.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }
}

/// The signature headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// The vessel that signed.
    pub vessel_id: String,
    /// When it signed, in unix seconds.
    pub timestamp: i64,
    /// 32 hex characters, unique per request.
    pub nonce: String,
    /// The signature in standard base64.
    pub signature_b64: String,
}

impl RequestSignature {
    /// The four headers to add to the request.
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            (HEADER_VESSEL, self.vessel_id.clone()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature_b64.clone()),
        ]
    }

    /// Reads the four headers through `lookup` (a header name in, its value
    /// out), so any header map works without this crate depending on an HTTP
    /// crate. Checks the vessel id's and timestamp's form; the nonce and the
    /// signature are checked by [`verify_request`].
    pub fn from_header_lookup<'h, F>(lookup: F) -> Result<RequestSignature, SyncError>
    where
        F: Fn(&str) -> Option<&'h str>,
    {
        let get = |name: &'static str| lookup(name).ok_or(SyncError::MissingHeader(name));
        let vessel_id = get(HEADER_VESSEL)?;
        validate_vessel_id(vessel_id)
            .map_err(|e| SyncError::malformed(format!("header {HEADER_VESSEL}: {e}")))?;
        let timestamp = get(HEADER_TIMESTAMP)?
            .parse::<i64>()
            .map_err(|e| SyncError::malformed(format!("header {HEADER_TIMESTAMP}: {e}")))?;
        Ok(RequestSignature {
            vessel_id: vessel_id.to_owned(),
            timestamp,
            nonce: get(HEADER_NONCE)?.to_owned(),
            signature_b64: get(HEADER_SIGNATURE)?.to_owned(),
        })
    }
}

/// The canonical message a request signature covers (see the module docs).
/// Fails when a field could break the message's line structure.
pub fn canonical_message(
    method: &str,
    path: &str,
    vessel_id: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Result<String, SyncError> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(SyncError::malformed(format!("HTTP method {method:?}")));
    }
    if !path.starts_with('/') || path.chars().any(char::is_control) {
        return Err(SyncError::malformed(format!("request path {path:?}")));
    }
    validate_vessel_id(vessel_id)
        .map_err(|e| SyncError::malformed(format!("signed vessel id: {e}")))?;
    check_nonce(nonce)?;
    let body_hash = hex::encode(digest(&SHA256, body));
    Ok(format!(
        "{SIGNATURE_SCHEME}\n{}\n{path}\n{vessel_id}\n{timestamp}\n{nonce}\n{body_hash}",
        method.to_ascii_uppercase()
    ))
}

/// Signs a request with a fresh random nonce.
pub fn sign_request(
    key: &VesselKey,
    vessel_id: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<RequestSignature, SyncError> {
    let mut nonce = [0u8; NONCE_BYTES];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SyncError::Internal("no randomness for a nonce".into()))?;
    let nonce = hex::encode(nonce);
    let message = canonical_message(method, path, vessel_id, now_unix, &nonce, body)?;
    Ok(RequestSignature {
        vessel_id: vessel_id.to_owned(),
        timestamp: now_unix,
        nonce,
        signature_b64: BASE64.encode(key.sign(message.as_bytes())),
    })
}

/// Verifies a request against the vessel's registered public key (standard
/// base64 of 32 bytes). Cheap checks come first, so a flood of junk costs no
/// signature verification: the nonce's form ([`SyncError::BadNonce`]), the
/// timestamp within `max_skew_secs` of `now_unix` either way
/// ([`SyncError::StaleTimestamp`]), the key ([`SyncError::BadKey`]), then the
/// signature ([`SyncError::BadSignature`]). Replayed nonces are not detected
/// here; see the module docs.
pub fn verify_request(
    public_key_b64: &str,
    sig: &RequestSignature,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
    max_skew_secs: i64,
) -> Result<(), SyncError> {
    check_nonce(&sig.nonce)?;
    let max_skew = u64::try_from(max_skew_secs).unwrap_or(0);
    if now_unix.abs_diff(sig.timestamp) > max_skew {
        return Err(SyncError::StaleTimestamp {
            timestamp: sig.timestamp,
            now: now_unix,
            max_skew_secs,
        });
    }
    let public_key = check_public_key(public_key_b64)?;
    if sig.signature_b64.len() > MAX_SIGNATURE_B64_LEN {
        return Err(SyncError::BadSignature);
    }
    let signature = BASE64
        .decode(&sig.signature_b64)
        .map_err(|_| SyncError::BadSignature)?;
    if signature.len() != ED25519_SIGNATURE_LEN {
        return Err(SyncError::BadSignature);
    }
    let message = canonical_message(
        method,
        path,
        &sig.vessel_id,
        sig.timestamp,
        &sig.nonce,
        body,
    )?;
    UnparsedPublicKey::new(&ED25519, &public_key)
        .verify(message.as_bytes(), &signature)
        .map_err(|_| SyncError::BadSignature)
}

/// Decodes a base64 Ed25519 public key, checking its length; used when a
/// vessel is registered, so a mistyped key is refused then rather than at
/// its first sync.
pub fn check_public_key(public_key_b64: &str) -> Result<Vec<u8>, SyncError> {
    let public_key = BASE64
        .decode(public_key_b64.trim())
        .map_err(|e| SyncError::BadKey(format!("public key base64: {e}")))?;
    if public_key.len() != ED25519_PUBLIC_KEY_LEN {
        return Err(SyncError::BadKey(format!(
            "public key is {} bytes, expected {ED25519_PUBLIC_KEY_LEN}",
            public_key.len()
        )));
    }
    Ok(public_key)
}

fn check_nonce(nonce: &str) -> Result<(), SyncError> {
    let ok = nonce.len() == NONCE_BYTES * 2
        && nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(SyncError::BadNonce) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NOW: i64 = 1_750_000_000;
    const VESSEL: &str = "imo9321483";
    const PATH: &str = "/sync/v1/records/chunks";

    fn signed(body: &[u8]) -> (VesselKey, RequestSignature) {
        let (key, _) = VesselKey::generate().unwrap();
        let sig = sign_request(&key, VESSEL, "post", PATH, body, NOW).unwrap();
        (key, sig)
    }

    fn verify(
        key: &VesselKey,
        sig: &RequestSignature,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), SyncError> {
        verify_request(
            &key.public_key_b64(),
            sig,
            method,
            path,
            body,
            NOW + 10,
            DEFAULT_MAX_SKEW_SECS,
        )
    }

    #[test]
    fn sign_and_verify() {
        let (key, sig) = signed(b"chunk bytes");
        assert_eq!(sig.nonce.len(), 32);
        verify(&key, &sig, "POST", PATH, b"chunk bytes").unwrap();

        // Through the headers and back.
        let headers: HashMap<&str, String> = sig.to_headers().into_iter().collect();
        let parsed =
            RequestSignature::from_header_lookup(|name| headers.get(name).map(String::as_str))
                .unwrap();
        assert_eq!(parsed, sig);
        verify(&key, &parsed, "POST", PATH, b"chunk bytes").unwrap();

        // Nonces differ from request to request.
        let again = sign_request(&key, VESSEL, "POST", PATH, b"chunk bytes", NOW).unwrap();
        assert_ne!(again.nonce, sig.nonce);
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let (key, sig) = signed(b"body");
        let bad = |r: Result<(), SyncError>| matches!(r, Err(SyncError::BadSignature));
        assert!(bad(verify(&key, &sig, "POST", PATH, b"body!")));
        assert!(bad(verify(&key, &sig, "POST", "/sync/v1/session", b"body")));
        assert!(bad(verify(&key, &sig, "PUT", PATH, b"body")));
        let other_vessel = RequestSignature {
            vessel_id: "imo0000001".into(),
            ..sig.clone()
        };
        assert!(bad(verify(&key, &other_vessel, "POST", PATH, b"body")));
        let other_time = RequestSignature {
            timestamp: sig.timestamp + 1,
            ..sig.clone()
        };
        assert!(bad(verify(&key, &other_time, "POST", PATH, b"body")));
        let other_nonce = RequestSignature {
            nonce: "0".repeat(32),
            ..sig.clone()
        };
        assert!(bad(verify(&key, &other_nonce, "POST", PATH, b"body")));
        let junk_sig = RequestSignature {
            signature_b64: "not base64!".into(),
            ..sig.clone()
        };
        assert!(bad(verify(&key, &junk_sig, "POST", PATH, b"body")));
        let short_sig = RequestSignature {
            signature_b64: BASE64.encode([0u8; 10]),
            ..sig.clone()
        };
        assert!(bad(verify(&key, &short_sig, "POST", PATH, b"body")));
    }

    #[test]
    fn timestamps_outside_the_window_fail() {
        let (key, _) = VesselKey::generate().unwrap();
        for ts in [NOW - 301, NOW + 301, i64::MIN, i64::MAX] {
            let sig = sign_request(&key, VESSEL, "POST", PATH, b"", ts).unwrap();
            assert!(matches!(
                verify_request(&key.public_key_b64(), &sig, "POST", PATH, b"", NOW, 300),
                Err(SyncError::StaleTimestamp { .. })
            ));
        }
        let sig = sign_request(&key, VESSEL, "POST", PATH, b"", NOW - 300).unwrap();
        verify_request(&key.public_key_b64(), &sig, "POST", PATH, b"", NOW, 300).unwrap();
    }

    #[test]
    fn wrong_or_bad_key_fails() {
        let (_, sig) = signed(b"body");
        let (other, _) = VesselKey::generate().unwrap();
        assert!(matches!(
            verify(&other, &sig, "POST", PATH, b"body"),
            Err(SyncError::BadSignature)
        ));
        for key in ["", "!!!", &BASE64.encode([1u8; 31])] {
            assert!(matches!(
                verify_request(key, &sig, "POST", PATH, b"body", NOW, 300),
                Err(SyncError::BadKey(_))
            ));
        }
        assert!(matches!(
            VesselKey::from_pkcs8(b"not a key"),
            Err(SyncError::BadKey(_))
        ));
    }

    #[test]
    fn nonce_form_is_checked() {
        let (key, sig) = signed(b"");
        for nonce in ["", "abc", &"g".repeat(32), &"A".repeat(32), &"0".repeat(33)] {
            let s = RequestSignature {
                nonce: nonce.to_owned(),
                ..sig.clone()
            };
            assert!(matches!(
                verify(&key, &s, "POST", PATH, b""),
                Err(SyncError::BadNonce)
            ));
        }
    }

    #[test]
    fn pkcs8_round_trip_and_sign() {
        let (key, pkcs8) = VesselKey::generate().unwrap();
        let again = VesselKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(again.public_key_b64(), key.public_key_b64());
        assert_eq!(again.pkcs8(), pkcs8.as_slice());
        assert_eq!(BASE64.decode(key.public_key_b64()).unwrap().len(), 32);
        // Ed25519 is deterministic, so both copies sign alike.
        assert_eq!(key.sign(b"m"), again.sign(b"m"));
        assert_eq!(key.sign(b"m").len(), 64);
        assert!(!format!("{key:?}").contains(&hex::encode(&pkcs8)));
    }

    #[test]
    fn headers_are_required_and_checked() {
        let (_, sig) = signed(b"");
        let headers: HashMap<&str, String> = sig.to_headers().into_iter().collect();
        for missing in [
            HEADER_VESSEL,
            HEADER_TIMESTAMP,
            HEADER_NONCE,
            HEADER_SIGNATURE,
        ] {
            let r = RequestSignature::from_header_lookup(|name| {
                (name != missing)
                    .then(|| headers.get(name).map(String::as_str))
                    .flatten()
            });
            assert!(matches!(r, Err(SyncError::MissingHeader(h)) if h == missing));
        }
        let r = RequestSignature::from_header_lookup(|name| match name {
            HEADER_TIMESTAMP => Some("yesterday"),
            other => headers.get(other).map(String::as_str),
        });
        assert!(matches!(r, Err(SyncError::Malformed(_))));
        let r = RequestSignature::from_header_lookup(|name| match name {
            HEADER_VESSEL => Some("evil\nvessel"),
            other => headers.get(other).map(String::as_str),
        });
        assert!(matches!(r, Err(SyncError::Malformed(_))));
    }

    #[test]
    fn canonical_message_refuses_line_breaks() {
        let nonce = "0".repeat(32);
        assert!(canonical_message("POST", "/a\nb", VESSEL, NOW, &nonce, b"").is_err());
        assert!(canonical_message("PO ST", "/a", VESSEL, NOW, &nonce, b"").is_err());
        assert!(canonical_message("POST", "a", VESSEL, NOW, &nonce, b"").is_err());
        let m = canonical_message("post", "/a?b=1", VESSEL, NOW, &nonce, b"").unwrap();
        assert_eq!(
            m,
            format!(
                "KEELSON-SYNC-1\nPOST\n/a?b=1\n{VESSEL}\n{NOW}\n{nonce}\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
        );
    }
}
