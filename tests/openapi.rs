//! The OpenAPI document matches the routes: every `/api/v1` route in the
//! edge agent's source is documented with its methods, every documented
//! operation is routed on a running agent, and the served document is the
//! one the table builds.

#![allow(clippy::unwrap_used)]

use keelson_edge::openapi::OPERATIONS;
use keelson_tests::{Api, start_records_edge};
use std::collections::BTreeSet;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// The HTTP methods axum's routing functions stand for.
const METHODS: [&str; 5] = ["get", "post", "patch", "put", "delete"];

/// Every `(method, path)` that a `.route("/api/v1…", …)` call in `source`
/// registers. The method router is read up to the call's closing
/// parenthesis, so chained methods (`get(a).post(b)`) are all found.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.trim_start();
        let Some(literal) = open.strip_prefix('"') else {
            continue;
        };
        let path = &literal[..literal.find('"').unwrap()];
        // The extent of the call: up to the parenthesis that closes it.
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let call = &rest[..end];
        if !path.starts_with("/api/v1") {
            continue;
        }
        let bytes = call.as_bytes();
        for m in METHODS {
            let mut from = 0;
            while let Some(i) = call[from..].find(m) {
                let i = from + i;
                from = i + m.len();
                let before_ok =
                    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
                let after = &call[i + m.len()..];
                if before_ok && (after.starts_with('(') || after.starts_with("::<")) {
                    found.push((m.to_owned(), path.to_owned()));
                }
            }
        }
    }
    found
}

fn source_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("edge-agent/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    // The login routes are shared with the shore and live in the web crate.
    files.push(root.join("crates/keelson-web/src/session.rs"));
    let mut all = BTreeSet::new();
    for f in files {
        all.extend(routes_in(&std::fs::read_to_string(&f).unwrap()));
    }
    all
}

#[test]
fn the_document_lists_exactly_the_routes_in_the_source() {
    let routed = source_routes();
    assert!(routed.len() > 30, "the source scan found only {routed:?}");
    let documented: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|o| (o.method.to_owned(), o.path.to_owned()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented operations with no route in the source: {unrouted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_the_document_is_served() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;

    let doc = Api::anonymous(&edge.url).get("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, keelson_edge::openapi::document());
    let ops: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(ops, OPERATIONS.len());

    // Each operation, asked with a made-up id and an empty body, reaches a
    // handler: it may refuse the request, but the router neither says the
    // path is unknown nor that the method is not allowed.
    let chief = Api::login(&edge.url, "chief", "chief").await;
    for o in OPERATIONS {
        let path = o
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "no-such-item"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method: reqwest::Method = o.method.to_uppercase().parse().unwrap();
        let body = o.body.map(|_| serde_json::json!({}));
        // Logging out would end the session the other requests use.
        let who = if o.path == "/api/v1/session" {
            Api::anonymous(&edge.url)
        } else {
            chief.clone()
        };
        let (status, answer) = who.send(method, &path, body).await;
        assert_ne!(
            status, 405,
            "{} {path} is not routed for its method",
            o.method
        );
        assert!(
            !(status == 404 && answer["detail"] == "no such page or endpoint"),
            "{} {path} is not routed",
            o.method
        );
    }
    cancel.cancel();
}
