//! MQTT ingest against a real Mosquitto broker that the test starts, stops
//! and restarts itself: plain, JSON and Sparkplug B payloads, wildcard topics,
//! bad payloads, username/password, and a broker restart with QoS 1 messages
//! in flight.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use common::{VecSink, errors, poll_until, value_of, wait_until};
use keelson_ingest::{
    IngestConfig, MqttBrokerConfig, MqttTagConfig, PayloadFormat, Qos,
    mqtt::sparkplug::{Metric, MetricValue, Payload},
    start,
};
use keelson_model::Quality;
use prost::Message as _;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A Mosquitto process on a port of our own, with persistence in a temp dir.
struct Broker {
    dir: PathBuf,
    port: u16,
    child: Child,
}

fn free_port() -> u16 {
    // Mosquitto cannot report the port it picked, so ask the kernel for a free
    // one and hand it over; nothing else on loopback races for it in practice.
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    /// A broker with a password file (`ingest` / `secret`) and persistence.
    async fn start(dir: &Path, port: u16) -> Broker {
        let passwords = dir.join("passwords");
        // The password file holds "ingest:secret" hashed by mosquitto_passwd.
        let status = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwords)
            .args(["ingest", "secret"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let body = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             persistence true\npersistence_location {}/\nautosave_interval 1\n\
             max_queued_messages 10000\n",
            passwords.display(),
            dir.display()
        );
        Broker::start_with(dir, port, &body).await
    }

    /// A broker with the given configuration body, listening on `port`.
    async fn start_with(dir: &Path, port: u16, body: &str) -> Broker {
        let conf = dir.join("mosquitto.conf");
        // Started as root, mosquitto drops to the `mosquitto` user unless told
        // otherwise, and could then not write its database into our temp dir.
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        let user = if String::from_utf8_lossy(&uid).trim() == "0" {
            "user root\n"
        } else {
            ""
        };
        std::fs::write(&conf, format!("{user}{body}")).unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (tests/run.sh installs it)");
        poll_until("mosquitto listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        Broker {
            dir: dir.to_owned(),
            port,
            child,
        }
    }

    /// Stops the broker with SIGTERM, so it saves its sessions, and waits.
    async fn stop(mut self) -> (PathBuf, u16) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        poll_until("mosquitto to exit", || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        })
        .await;
        (self.dir.clone(), self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn mqtt_tag(tag: &str, topic: &str, format: PayloadFormat) -> MqttTagConfig {
    MqttTagConfig {
        tag: tag.into(),
        topic: topic.into(),
        format,
        pointer: None,
        timestamp_pointer: None,
        metric: None,
        scale: 1.0,
        offset: 0.0,
        unit: String::new(),
    }
}

/// A publishing client with a persistent session, driven by its own task
/// that keeps reconnecting.
fn publisher(port: u16, cancel: CancellationToken) -> AsyncClient {
    let mut options = MqttOptions::new("test-publisher", "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_credentials("ingest", "secret")
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                event = eventloop.poll() => {
                    if event.is_err() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    });
    client
}

fn seq_values(sink: &VecSink) -> BTreeSet<u64> {
    sink.stored()
        .iter()
        .filter(|s| s.tag == "seq" && s.quality == Quality::Good)
        .filter_map(|s| s.value.map(|v| v as u64))
        .collect()
}

#[tokio::test]
async fn payload_formats_and_a_broker_restart_without_losing_qos1() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = Broker::start(dir.path(), port).await;

    let mut json = mqtt_tag("me.rpm", "ship/+/engine", PayloadFormat::Json);
    json.pointer = Some("/me/rpm".into());
    json.timestamp_pointer = Some("/ts".into());
    let mut spb = mqtt_tag(
        "gen.temp",
        "spBv1.0/ship/DDATA/node1/#",
        PayloadFormat::Sparkplug,
    );
    spb.metric = Some("winding/temp".into());
    let mut scaled = mqtt_tag("tank.level", "ship/tank", PayloadFormat::Plain);
    scaled.scale = 0.5;
    let config = IngestConfig {
        mqtt: vec![MqttBrokerConfig {
            name: "bus".into(),
            host: "127.0.0.1".into(),
            port,
            client_id: "keelson-test".into(),
            username: Some("ingest".into()),
            password: Some("secret".into()),
            tls: false,
            ca_file: None,
            keep_alive_s: 5,
            persistent_session: true,
            qos: Qos::AtLeastOnce,
            tags: vec![
                json,
                spb,
                scaled,
                mqtt_tag("seq", "ship/seq", PayloadFormat::Plain),
            ],
        }],
        ..IngestConfig::default()
    };
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config, sink.clone(), cancel.clone()).unwrap();

    let pub_cancel = CancellationToken::new();
    let client = publisher(port, pub_cancel.clone());
    // Publish until ingest has subscribed (the first message may precede the
    // subscription; the retained flag is not used on purpose).
    let payload = br#"{"me":{"rpm":97.5},"ts":1700000000123}"#;
    let mut changes = handle.latest.subscribe();
    loop {
        client
            .publish("ship/a/engine", QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .unwrap();
        if handle.latest.get("me.rpm").unwrap().value == Some(97.5) {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
    }
    let rpm = handle.latest.get("me.rpm").unwrap();
    assert_eq!(rpm.ts.unwrap().timestamp_millis(), 1_700_000_000_123);

    let spb_payload = Payload {
        timestamp: Some(1_700_000_000_000),
        seq: Some(0),
        metrics: vec![Metric {
            name: Some("winding/temp".into()),
            alias: None,
            timestamp: None,
            datatype: Some(10),
            is_null: None,
            value: Some(MetricValue::DoubleValue(88.25)),
        }],
    };
    client
        .publish(
            "spBv1.0/ship/DDATA/node1/gen1",
            QoS::AtLeastOnce,
            false,
            spb_payload.encode_to_vec(),
        )
        .await
        .unwrap();
    client
        .publish("ship/tank", QoS::AtMostOnce, false, "61")
        .await
        .unwrap();
    wait_until(&handle.latest, "sparkplug and plain values", |v| {
        value_of(v, "gen.temp").value == Some(88.25)
            && value_of(v, "tank.level").value == Some(30.5)
    })
    .await;

    // A bad payload marks the tag bad and does not stop the source.
    client
        .publish("ship/tank", QoS::AtLeastOnce, false, "sensor fault")
        .await
        .unwrap();
    wait_until(&handle.latest, "bad payload flagged", |v| {
        value_of(v, "tank.level").quality == Quality::Bad
    })
    .await;
    assert!(errors(&handle.metrics, "bus", "decode") >= 1);

    // QoS 1 across a broker restart.
    for n in 1..=20u64 {
        client
            .publish("ship/seq", QoS::AtLeastOnce, false, n.to_string())
            .await
            .unwrap();
    }
    poll_until("first QoS 1 batch stored", || seq_values(&sink).len() == 20).await;
    for n in 21..=40u64 {
        client
            .publish("ship/seq", QoS::AtLeastOnce, false, n.to_string())
            .await
            .unwrap();
    }
    // Stop the broker while those are on their way, and publish more while
    // it is down: the publisher holds them until it can deliver.
    let (dir_path, port) = broker.stop().await;
    for n in 41..=60u64 {
        client
            .publish("ship/seq", QoS::AtLeastOnce, false, n.to_string())
            .await
            .unwrap();
    }
    let broker = Broker::start(&dir_path, port).await;
    poll_until("every QoS 1 message after the restart", || {
        seq_values(&sink) == (1..=60).collect()
    })
    .await;
    assert!(errors(&handle.metrics, "bus", "connect") >= 1);

    cancel.cancel();
    handle.join().await;
    pub_cancel.cancel();
    drop(broker);
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TLS against a broker whose certificate comes from a private CA: trusted
/// with the CA file, refused without it.
#[tokio::test]
async fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=keelson test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(d, &ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(d, &csr);
    std::fs::write(d.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "server.crt",
        ],
    );
    let port = free_port();
    let body = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.crt\n\
         certfile {0}/server.crt\nkeyfile {0}/server.key\n",
        d.display()
    );
    let _broker = Broker::start_with(d, port, &body).await;

    let broker = |name: &str, ca_file: Option<PathBuf>, tag: &str| MqttBrokerConfig {
        name: name.into(),
        host: "localhost".into(),
        port,
        client_id: format!("keelson-{name}"),
        username: None,
        password: None,
        tls: true,
        ca_file,
        keep_alive_s: 5,
        persistent_session: true,
        qos: Qos::AtLeastOnce,
        tags: vec![mqtt_tag(tag, "ship/tls", PayloadFormat::Plain)],
    };
    let config = IngestConfig {
        mqtt: vec![
            broker("trusting", Some(d.join("ca.crt")), "tls.value"),
            // Without the CA the broker's certificate cannot be verified.
            broker("untrusting", None, "tls.refused"),
        ],
        ..IngestConfig::default()
    };
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config, sink, cancel.clone()).unwrap();

    // Publish over TLS with the same CA until the agent has subscribed.
    let mut options = MqttOptions::new("tls-publisher", "localhost", port);
    let pem = std::fs::read(d.join("ca.crt")).unwrap();
    options.set_transport(rumqttc::Transport::tls_with_config(
        keelson_ingest::mqtt::tls_config(Some(&pem)).unwrap(),
    ));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let pub_cancel = CancellationToken::new();
    let stop = pub_cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = eventloop.poll() => {
                    if event.is_err() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    });
    let mut changes = handle.latest.subscribe();
    loop {
        client
            .publish("ship/tls", QoS::AtLeastOnce, false, "7.5")
            .await
            .unwrap();
        if handle.latest.get("tls.value").unwrap().value == Some(7.5) {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
    }
    poll_until("the untrusting client to fail verification", || {
        errors(&handle.metrics, "untrusting", "connect") >= 1
    })
    .await;
    assert_eq!(handle.latest.get("tls.refused").unwrap().value, None);
    cancel.cancel();
    handle.join().await;
    pub_cancel.cancel();
}
