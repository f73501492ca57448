//! MQTT ingest (rumqttc).
//!
//! An [`MqttBrokerConfig`] names a broker and the tags fed from it. Each tag
//! names a topic filter (wildcards allowed) and how to decode the payload:
//! a plain number or boolean, a JSON document with a JSON pointer per tag, or
//! a Sparkplug B `NDATA`/`DDATA` message and a metric name.
//!
//! The session is persistent (`clean_session = false`, a fixed client id) and
//! QoS 1 messages are acknowledged only after their samples were handed to the
//! pipeline, so a broker restart or an agent crash loses none of them: the
//! broker keeps and re-sends what was not acknowledged.

mod config;
pub mod decode;
pub(crate) mod source;
pub mod sparkplug;

pub use config::{MqttBrokerConfig, MqttTagConfig, PayloadFormat, Qos};
pub use source::{OptionsError, tls_config};
