//! An OPC-UA server for tests, built on async-opcua's server.
//!
//! It listens on 127.0.0.1 (port 0 picks a free port) and offers three
//! endpoints on `/`: security None, and Basic256Sha256 with Sign and with
//! SignAndEncrypt. Each accepts an anonymous session and the user
//! [`USERNAME`] with [`PASSWORD`]. The server's own certificate and key are
//! made on first start in a temporary PKI directory that lives as long as
//! the [`OpcuaTestServer`], so a restart keeps the same certificate, as a
//! real device would. Client certificates are trusted as they come.
//!
//! The variables live in the namespace [`NAMESPACE`] under string node ids,
//! and all but the last two change every [`TICK`]: at tick `n`,
//!
//! | node | type | value |
//! | --- | --- | --- |
//! | `Double` | Double | `n × 0.5` |
//! | `Float` | Float | `n × 0.25` |
//! | `Int32` | Int32 | `−n` |
//! | `UInt16` | UInt16 | `n mod 65536` |
//! | `Boolean` | Boolean | `n` is odd |
//! | `String` | String | `n` as decimal text |
//! | `Text` | String | `"running"`, text that is not a number |
//! | `Bad` | Double | status `BadSensorFailure` (with a value 0 to ignore) |

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use ::opcua::{
    crypto::{CertificateStore, SecurityPolicy},
    server::{
        ANONYMOUS_USER_TOKEN_ID, ServerBuilder, ServerHandle, ServerUserToken,
        address_space::Variable,
        diagnostics::NamespaceMetadata,
        node_manager::memory::{SimpleNodeManager, simple_node_manager},
    },
    types::{DataValue, DateTime, MessageSecurityMode, NodeId, StatusCode, Variant},
};
use tokio::task::JoinHandle;

use crate::modbus::bind_reusable;

/// The namespace URI of the test variables.
pub const NAMESPACE: &str = "urn:keelson:testkit:variables";

/// The user name the server accepts besides anonymous sessions.
pub const USERNAME: &str = "operator";

/// The password of [`USERNAME`].
pub const PASSWORD: &str = "ship-shape";

/// How often the changing variables change.
pub const TICK: Duration = Duration::from_millis(100);

/// The variables whose values change every tick.
pub const CHANGING: [&str; 6] = ["Double", "Float", "Int32", "UInt16", "Boolean", "String"];

/// The server's application URI, also written into its certificate.
const APPLICATION_URI: &str = "urn:keelson:testkit:opcua-server";

/// How long a restart may wait for the old listener's port to come free.
const REBIND_WITHIN: Duration = Duration::from_secs(5);

/// How long `stop` waits for sessions to close before it drops them.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A running (or stopped) OPC-UA test server.
pub struct OpcuaTestServer {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    running: Option<Running>,
}

struct Running {
    handle: ServerHandle,
    server: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl std::fmt::Debug for OpcuaTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpcuaTestServer")
            .field("addr", &self.addr)
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl OpcuaTestServer {
    /// Starts a server on 127.0.0.1 with a free port. The listener is bound
    /// before this returns, so clients may connect at once.
    pub async fn start() -> io::Result<OpcuaTestServer> {
        let dir = tempfile::tempdir()?;
        let listener = bind_reusable(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let mut server = OpcuaTestServer {
            dir,
            addr,
            running: None,
        };
        server.running = Some(server.launch(listener)?);
        Ok(server)
    }

    /// The endpoint URL clients connect to, `opc.tcp://127.0.0.1:PORT/`.
    pub fn endpoint_url(&self) -> String {
        format!("opc.tcp://{}/", self.addr)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node id, in text form, of the variable `name` (see the module
    /// documentation). The namespace of the test variables is the first one
    /// after the two standard ones, so its index is 2.
    pub fn node_id(&self, name: &str) -> String {
        format!("ns=2;s={name}")
    }

    /// The server's own certificate (DER), as clients receive it.
    pub fn certificate_path(&self) -> PathBuf {
        self.pki_dir().join("own/cert.der")
    }

    /// Trusts this server in the client PKI directory `client_pki`: copies
    /// its certificate into `trusted/` under the name the client looks for,
    /// which is what fleet IT does by moving a file out of `rejected/`.
    pub fn trust_in(&self, client_pki: &Path) -> io::Result<PathBuf> {
        let cert =
            CertificateStore::read_cert(&self.certificate_path()).map_err(io::Error::other)?;
        let trusted = client_pki.join("trusted");
        std::fs::create_dir_all(&trusted)?;
        let path = trusted.join(CertificateStore::cert_file_name(&cert));
        std::fs::copy(self.certificate_path(), &path)?;
        Ok(path)
    }

    /// Whether the server is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops the server: closes every session and connection and the
    /// listener. The port stays reserved for [`OpcuaTestServer::restart`].
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.ticker.abort();
        let _ = running.ticker.await;
        running.handle.cancel();
        let mut server = running.server;
        if tokio::time::timeout(STOP_WITHIN, &mut server)
            .await
            .is_err()
        {
            server.abort();
            let _ = server.await;
        }
    }

    /// Starts the server again on the same port with the same certificate,
    /// as a device does after a power cycle. Clients find none of their old
    /// sessions or subscriptions. Stops it first if it is running.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await;
        let deadline = tokio::time::Instant::now() + REBIND_WITHIN;
        // The old listener is closed, but the kernel may take a moment to
        // let the port go; another process may also have grabbed it, in
        // which case retrying until the deadline is all that can be done.
        let listener = loop {
            match bind_reusable(self.addr) {
                Ok(listener) => break listener,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.running = Some(self.launch(listener)?);
        Ok(())
    }

    fn pki_dir(&self) -> PathBuf {
        self.dir.path().join("server-pki")
    }

    /// Builds the server, fills its address space and runs it on `listener`.
    fn launch(&self, listener: tokio::net::TcpListener) -> io::Result<Running> {
        let users: &[&str] = &[ANONYMOUS_USER_TOKEN_ID, USERNAME];
        let url = self.endpoint_url();
        let builder = ServerBuilder::new()
            .application_name("Keelson test OPC-UA server")
            .application_uri(APPLICATION_URI)
            .product_uri("urn:keelson:testkit")
            .host("127.0.0.1")
            .port(self.addr.port())
            .discovery_urls(vec![url])
            .pki_dir(self.pki_dir())
            .create_sample_keypair(true)
            .trust_client_certs(true)
            .add_user_token(USERNAME, ServerUserToken::user_pass(USERNAME, PASSWORD))
            .add_endpoint(
                "none",
                ("/", SecurityPolicy::None, MessageSecurityMode::None, users),
            )
            .add_endpoint(
                "basic256sha256_sign",
                (
                    "/",
                    SecurityPolicy::Basic256Sha256,
                    MessageSecurityMode::Sign,
                    users,
                ),
            )
            .add_endpoint(
                "basic256sha256_sign_encrypt",
                (
                    "/",
                    SecurityPolicy::Basic256Sha256,
                    MessageSecurityMode::SignAndEncrypt,
                    users,
                ),
            )
            .with_node_manager(simple_node_manager(
                NamespaceMetadata {
                    namespace_uri: NAMESPACE.to_owned(),
                    ..Default::default()
                },
                "keelson-testkit",
            ));
        let (server, handle) = builder.build().map_err(io::Error::other)?;
        let manager = handle
            .node_managers()
            .get_of_type::<SimpleNodeManager>()
            .ok_or_else(|| io::Error::other("the server has no simple node manager"))?;
        let ns = handle
            .get_namespace_index(NAMESPACE)
            .ok_or_else(|| io::Error::other("the test namespace is missing"))?;
        if ns != 2 {
            return Err(io::Error::other(format!(
                "the test namespace has index {ns}, not 2"
            )));
        }
        add_variables(&manager, ns);
        set_values(&manager, &handle, ns, 0)?;
        let server = tokio::spawn(async move {
            if let Err(e) = server.run_with(listener).await {
                tracing::warn!(error = %e, "test opc-ua server stopped with an error");
            }
        });
        let ticker = tokio::spawn(tick(manager, handle.clone(), ns));
        Ok(Running {
            handle,
            server,
            ticker,
        })
    }
}

impl Drop for OpcuaTestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.ticker.abort();
            running.handle.cancel();
            running.server.abort();
        }
    }
}

fn add_variables(manager: &SimpleNodeManager, ns: u16) {
    let folder = NodeId::new(ns, "Keelson");
    let mut space = manager.address_space().write();
    space.add_folder(&folder, "Keelson", "Keelson", &NodeId::objects_folder_id());
    let variable =
        |name: &str, value: Variant| Variable::new(&NodeId::new(ns, name), name, name, value);
    let _ = space.add_variables(
        vec![
            variable("Double", Variant::Double(0.0)),
            variable("Float", Variant::Float(0.0)),
            variable("Int32", Variant::Int32(0)),
            variable("UInt16", Variant::UInt16(0)),
            variable("Boolean", Variant::Boolean(false)),
            variable("String", Variant::from("0")),
            variable("Text", Variant::from("running")),
            variable("Bad", Variant::Double(0.0)),
        ],
        &folder,
    );
}

/// Sets every variable to its value at tick `n` and notifies subscriptions.
fn set_values(
    manager: &Arc<SimpleNodeManager>,
    handle: &ServerHandle,
    ns: u16,
    n: u64,
) -> io::Result<()> {
    let now = DateTime::now();
    let good = |value: Variant| DataValue::new_at(value, now);
    let values = [
        ("Double", good(Variant::Double(n as f64 * 0.5))),
        ("Float", good(Variant::Float(n as f32 * 0.25))),
        ("Int32", good(Variant::Int32(-(n as i32)))),
        ("UInt16", good(Variant::UInt16((n % 65_536) as u16))),
        ("Boolean", good(Variant::Boolean(n % 2 == 1))),
        ("String", good(Variant::from(n.to_string()))),
    ];
    let ids: Vec<NodeId> = values
        .iter()
        .map(|(name, _)| NodeId::new(ns, *name))
        .collect();
    let mut updates: Vec<(&NodeId, Option<&::opcua::types::NumericRange>, DataValue)> = ids
        .iter()
        .zip(values)
        .map(|(id, (_, value))| (id, None, value))
        .collect();
    let bad_id = NodeId::new(ns, "Bad");
    if n == 0 {
        updates.push((
            &bad_id,
            None,
            // The server reports a status only with a value, so the bad
            // node keeps a value no client should use.
            DataValue::new_at_status(Variant::Double(0.0), now, StatusCode::BadSensorFailure),
        ));
    }
    manager
        .set_values(handle.subscriptions(), updates.into_iter())
        .map_err(|status| io::Error::other(format!("setting test values: {status}")))
}

/// Changes the changing variables every [`TICK`] until aborted.
async fn tick(manager: Arc<SimpleNodeManager>, handle: ServerHandle, ns: u16) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    loop {
        ticker.tick().await;
        n += 1;
        if let Err(e) = set_values(&manager, &handle, ns, n) {
            tracing::warn!(error = %e, "test opc-ua server cannot change its values");
        }
    }
}
