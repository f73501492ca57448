//! The one error type of the sync layer.
//!
//! Every variant but [`SyncError::Internal`] and [`SyncError::BadKey`]
//! describes something wrong with what a peer sent, so an HTTP layer can
//! answer with a 4xx and change nothing. [`SyncError::http_status`] gives the
//! suggested status code, so the mapping lives next to the variants and does
//! not drift.

use keelson_model::ValidationError;

/// Everything that can go wrong while encoding, decoding, signing or merging
/// sync data.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Bytes that do not decode as what they claim to be: a change, a
    /// document, a chunk, a header or a JSON message.
    #[error("malformed {0}")]
    Malformed(String),

    /// Local input (a new fault, a patch, a comment) that fails the model's
    /// validation rules.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),

    /// Changes that decode but cannot be applied to the record: they clash
    /// with its history or would leave it in a state that is not a valid
    /// record. Nothing was applied.
    #[error("changes rejected: {0}")]
    Rejected(String),

    /// Changes whose causal dependencies the record does not hold yet.
    /// Nothing was applied; the hashes (hex) say what is missing.
    #[error("changes depend on {} change(s) the record does not hold", .0.len())]
    MissingDependencies(Vec<String>),

    /// A payload over one of the hard size limits.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes (or the limit plus one when reading stopped early).
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// Data for, or from, a vessel other than the one authenticated.
    #[error("wrong vessel: expected {expected}, got {got}")]
    WrongVessel {
        /// The vessel the caller is authenticated as or asked for.
        expected: String,
        /// The vessel named in the data.
        got: String,
    },

    /// A required request header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),

    /// A key that does not parse: a PKCS#8 document or a registered public
    /// key. This is a problem with stored key material, not with a request.
    #[error("unusable key: {0}")]
    BadKey(String),

    /// A request signature that does not verify against the vessel's key.
    #[error("bad signature")]
    BadSignature,

    /// A request timestamp too far from the receiver's clock.
    #[error("timestamp {timestamp} is more than {max_skew_secs}s away from now ({now})")]
    StaleTimestamp {
        /// The timestamp the request carried, in unix seconds.
        timestamp: i64,
        /// The receiver's clock, in unix seconds.
        now: i64,
        /// The largest accepted difference, in seconds.
        max_skew_secs: i64,
    },

    /// A request nonce that is not 32 hex characters.
    #[error("malformed nonce: must be 32 hex characters")]
    BadNonce,

    /// A failure of this process rather than of the input (no randomness, a
    /// codec that refuses to encode its own data). Never the peer's fault.
    #[error("internal sync error: {0}")]
    Internal(String),
}

impl SyncError {
    /// Whether the error is the fault of what the peer or the user sent, as
    /// opposed to a failure on this side.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, SyncError::Internal(_) | SyncError::BadKey(_))
    }

    /// The HTTP status a server should answer with. Kept free of any HTTP
    /// crate so the sync layer stays independent of the web layer.
    pub fn http_status(&self) -> u16 {
        match self {
            SyncError::Malformed(_)
            | SyncError::Invalid(_)
            | SyncError::MissingHeader(_)
            | SyncError::BadNonce => 400,
            SyncError::BadSignature | SyncError::StaleTimestamp { .. } => 401,
            SyncError::WrongVessel { .. } => 403,
            SyncError::Rejected(_) | SyncError::MissingDependencies(_) => 409,
            SyncError::TooLarge { .. } => 413,
            SyncError::BadKey(_) | SyncError::Internal(_) => 500,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        SyncError::Malformed(what.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_4xx() {
        let errors = [
            SyncError::malformed("chunk"),
            SyncError::Invalid(ValidationError::new("title", "must not be empty")),
            SyncError::Rejected("x".into()),
            SyncError::MissingDependencies(vec!["00".into()]),
            SyncError::TooLarge {
                what: "chunk",
                size: 2,
                limit: 1,
            },
            SyncError::WrongVessel {
                expected: "a".into(),
                got: "b".into(),
            },
            SyncError::MissingHeader("x-keelson-nonce"),
            SyncError::BadSignature,
            SyncError::StaleTimestamp {
                timestamp: 0,
                now: 1000,
                max_skew_secs: 300,
            },
            SyncError::BadNonce,
        ];
        for e in errors {
            assert!(e.is_client_error(), "{e}");
            assert!((400..500).contains(&e.http_status()), "{e}");
        }
        assert!(!SyncError::Internal("rng".into()).is_client_error());
        assert_eq!(SyncError::BadKey("x".into()).http_status(), 500);
    }
}
