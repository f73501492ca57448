//! OPC-UA ingest (async-opcua client).
//!
//! An [`OpcuaServerConfig`] names a server endpoint, the security to use and
//! the tags read from it, each by node id. One source task per server keeps
//! a session open:
//!
//! - in subscription mode (the default) each tag is a monitored item with
//!   its own sampling interval and optional deadband; whatever the server
//!   will not monitor is polled instead;
//! - in poll mode every tag is read each poll interval;
//! - security is `None` or `Basic256Sha256` with `Sign` or `SignAndEncrypt`,
//!   with the agent's own certificate (created on first start) and a trust
//!   store for server certificates in the PKI directory;
//! - the session is anonymous or logs in with a user name and password;
//! - when the connection drops, the session reconnects with back-off, and
//!   after a server restart the subscription is re-created;
//! - a value's status code becomes its quality (good, uncertain, bad).

mod config;
pub mod decode;
pub(crate) mod source;

pub use config::{
    DeadbandType, OpcuaServerConfig, OpcuaTagConfig, ReadMode, SecurityMode, SecurityPolicy,
};
pub use source::{APPLICATION_URI, PkiError, ensure_own_certificate};
