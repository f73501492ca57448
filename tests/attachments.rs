//! Photos and files on faults and work orders, end to end: attached on
//! board through the API and the pages, checked for size and type, served
//! back byte for byte, and carried ashore by sync, the metadata with the
//! records first and the bytes after, in runs the shore acknowledges and
//! the vessel resumes from across sessions.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_tests::{
    Api, edge_config, post_head_only, start_edge, start_shore, sync_and_wait, wait_for,
};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const MAX_BYTES: u64 = 256 * 1024;

/// A 1×1 PNG followed by `extra` bytes of noise, which image viewers
/// ignore: a real picture large enough to cross the link in several runs.
fn png(extra: usize) -> Vec<u8> {
    let mut bytes = vec![
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
        0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let mut x: u32 = 0x9e37_79b9;
    bytes.extend((0..extra).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    bytes
}

/// Posts a multipart form with `file` (name, declared type, bytes) and a
/// caption; returns the status and the JSON body.
async fn upload(api: &Api, path: &str, file: (&str, &str, Vec<u8>), caption: &str) -> (u16, Value) {
    let (name, mime, bytes) = file;
    let form = Form::new()
        .part(
            "file",
            Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str(mime)
                .unwrap(),
        )
        .text("caption", caption.to_owned());
    api.send_form(reqwest::Method::POST, path, form).await
}

/// The complete files in an attachment folder (not the temporary or
/// partial ones).
fn stored_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap())
                .filter(|e| e.file_type().unwrap().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn get_bytes(api: &Api, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = api
        .request(reqwest::Method::GET, path)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_are_checked_stored_served_and_carried_ashore_after_their_records() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = edge_config(dir.path(), shore.addr, shore.addr);
    config.ingest.modbus.clear();
    config.alarms = Default::default();
    config.attachments.max_bytes = MAX_BYTES;
    // A session may move about 32 kB, so the photo below needs several
    // sessions, each resuming where the shore's acknowledgement left it.
    // Every write on board also starts a session; they are few enough that
    // the photo is still on its way after the first one asked for here.
    config.sync.session_cap_bytes = 32 * 1024;
    keelson_tests::register_vessel(&shore, &config);
    let files_dir = config.storage.data_dir.join("attachments");
    let edge = start_edge(dir, config, &cancel).await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let office = Api::login(&shore.url, "office", "office").await;

    let fault = crew
        .post(
            "/api/v1/faults",
            json!({"title": "Leak at the LO cooler", "severity": "high"}),
            201,
        )
        .await;
    let fault_id = fault["id"].as_str().unwrap();
    let attach_path = format!("/api/v1/faults/{fault_id}/attachments");

    // Anonymous uploads are refused before anything is read.
    let anon = Api::anonymous(&edge.url);
    let (status, body) = upload(&anon, &attach_path, ("a.png", "image/png", png(10)), "").await;
    assert_eq!(status, 401, "{body}");

    // Too large: one byte over the limit, and a body announced far over it.
    let (status, body) = upload(
        &crew,
        &attach_path,
        (
            "big.png",
            "image/png",
            png(MAX_BYTES as usize + 1 - png(0).len()),
        ),
        "",
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("262144 bytes"),
        "the answer names the limit: {body}"
    );
    let (status, body) = post_head_only(
        &edge.url,
        &attach_path,
        &[
            ("Authorization", format!("Bearer {}", crew.token().unwrap())),
            ("Content-Type", "multipart/form-data; boundary=x".to_owned()),
        ],
        10 * 1024 * 1024,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large", "{body}");

    // A file sent as a PNG that is not one, and a type not allowed at all.
    let (status, body) = upload(
        &crew,
        &attach_path,
        (
            "pump.png",
            "image/png",
            b"#!/bin/sh\necho not a picture\n".to_vec(),
        ),
        "",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"], "unsupported_media_type", "{body}");
    let (status, body) = upload(
        &crew,
        &attach_path,
        (
            "tool.bin",
            "application/octet-stream",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
        ),
        "",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(
        stored_files(&files_dir).is_empty(),
        "refused uploads store nothing"
    );
    assert!(
        stored_files(&files_dir.join("tmp")).is_empty(),
        "nor leave temporary files"
    );
    let f = crew.get(&format!("/api/v1/faults/{fault_id}")).await;
    assert_eq!(f["attachments"], json!([]), "{f}");

    // A real photo: stored once under its hash, read back byte for byte.
    let photo = png(230 * 1024);
    let (status, a) = upload(
        &crew,
        &attach_path,
        ("C:\\Users\\crew\\leak.png", "image/png", photo.clone()),
        "Drip under the cooler",
    )
    .await;
    assert_eq!(status, 201, "{a}");
    let sha = a["sha256"].as_str().unwrap().to_owned();
    assert_eq!(a["file_name"], "leak.png");
    assert_eq!(a["content_type"], "image/png");
    assert_eq!(a["size"], photo.len());
    assert_eq!(a["caption"], "Drip under the cooler");
    assert_eq!(a["author"], "crew");
    let (status, again) = upload(
        &crew,
        &attach_path,
        ("same.png", "image/png", photo.clone()),
        "",
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["sha256"], a["sha256"]);
    assert_eq!(
        stored_files(&files_dir),
        [sha.as_str()],
        "the same photo is stored once"
    );
    let f = crew.get(&format!("/api/v1/faults/{fault_id}")).await;
    assert_eq!(f["attachments"].as_array().unwrap().len(), 2, "{f}");
    assert_eq!(f["attachments"][0]["sha256"], sha.as_str());

    let file_path = format!("/api/v1/attachments/{sha}");
    let (status, headers, bytes) = get_bytes(&crew, &file_path).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, photo, "byte for byte");
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline"),
        "{headers:?}"
    );
    let (status, _, _) = get_bytes(&anon, &file_path).await;
    assert_eq!(status, 401);

    // The fault's page shows the thumbnail and the upload form.
    let (_, _, page) = get_bytes(&crew, &format!("/faults/{fault_id}")).await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("<img src=\"{file_path}\"")),
        "{page}"
    );
    assert!(page.contains("enctype=\"multipart/form-data\""));

    // Logging a fault with a photo in one form, as the new-fault page does.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let text_note = b"Gauge reads 2.1 bar at 80 rpm.\n".to_vec();
    let resp = no_redirects
        .post(format!("{}/faults", edge.url))
        .bearer_auth(crew.token().unwrap())
        .multipart(
            Form::new()
                .text("title", "Low LO pressure")
                .text("equipment", "ME")
                .text("severity", "medium")
                .text("description", "")
                .part(
                    "file",
                    Part::bytes(png(100))
                        .file_name("gauge.png")
                        .mime_str("image/png")
                        .unwrap(),
                )
                .text("caption", "Gauge"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let logged_id = location.trim_start_matches("/faults/").to_owned();
    let logged = crew.get(&format!("/api/v1/faults/{logged_id}")).await;
    assert_eq!(logged["title"], "Low LO pressure");
    assert_eq!(logged["attachments"][0]["caption"], "Gauge", "{logged}");
    // A refused photo gives the form back with the message and nothing logged.
    let resp = no_redirects
        .post(format!("{}/faults", edge.url))
        .bearer_auth(crew.token().unwrap())
        .multipart(
            Form::new()
                .text("title", "Not logged")
                .text("severity", "low")
                .part(
                    "file",
                    Part::bytes(text_note.clone())
                        .file_name("x.png")
                        .mime_str("image/png")
                        .unwrap(),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let html = resp.text().await.unwrap();
    assert!(html.contains("its content is text/plain"), "{html}");
    assert!(
        html.contains("value=\"Not logged\""),
        "the form keeps what was typed"
    );
    let all = crew.get("/api/v1/faults").await;
    assert!(
        !all.to_string().contains("Not logged"),
        "no fault without its photo: {all}"
    );

    // The fault page's own form: a note attached, and a file over the
    // limit answered with a page that says the limit.
    let page_form = |bytes: Vec<u8>, name: &str| {
        Form::new().part(
            "file",
            Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str("text/plain")
                .unwrap(),
        )
    };
    let resp = no_redirects
        .post(format!("{}/faults/{fault_id}/attachments", edge.url))
        .bearer_auth(crew.token().unwrap())
        .multipart(page_form(text_note.clone(), "reading.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], format!("/faults/{fault_id}"));
    let resp = no_redirects
        .post(format!("{}/faults/{fault_id}/attachments", edge.url))
        .bearer_auth(crew.token().unwrap())
        .multipart(page_form(vec![b'a'; MAX_BYTES as usize + 1], "log.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let html = resp.text().await.unwrap();
    assert!(html.contains("262144 bytes"), "{html}");
    let f = crew.get(&format!("/api/v1/faults/{fault_id}")).await;
    let kinds: Vec<&str> = f["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["image/png", "image/png", "text/plain"]);

    // Ashore: the first session carries the records, with the metadata, and
    // as much of the photo as its cap leaves room for.
    let st = sync_and_wait(&chief, WAIT).await;
    assert!(st["last_error"].is_null(), "{st}");
    let shore_fault = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/faults/{fault_id}"))
        .await;
    assert_eq!(
        shore_fault["attachments"][0]["sha256"],
        sha.as_str(),
        "{shore_fault}"
    );
    assert_eq!(
        shore_fault["attachments"][0]["caption"],
        "Drip under the cooler"
    );
    let shore_file = format!("/api/v1/vessels/{DEMO_VESSEL}/attachments/{sha}");
    let (status, _, _) = get_bytes(&office, &shore_file).await;
    assert_eq!(status, 404, "the bytes come after the metadata");
    let pending = st["files"]["pending_bytes"].as_u64().unwrap();
    assert!(
        st["files"]["pending_files"].as_u64().unwrap() >= 1
            && pending > 0
            && pending < photo.len() as u64,
        "part of the photo went ashore and the rest waits: {st}"
    );

    // Later sessions resume from the shore's acknowledgement until done.
    wait_for("every file ashore", WAIT, || async {
        let st = sync_and_wait(&chief, WAIT).await;
        assert!(st["last_error"].is_null(), "{st}");
        (st["files"]["pending_files"] == 0).then_some(())
    })
    .await;
    let (status, headers, bytes) = get_bytes(&office, &shore_file).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, photo, "byte for byte ashore");
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let shore_dir = shore
        .state
        .config
        .storage
        .data_dir
        .join("attachments")
        .join(DEMO_VESSEL);
    assert!(
        stored_files(&shore_dir.join("parts")).is_empty(),
        "no partial file is left"
    );
    let (_, _, page) = get_bytes(
        &office,
        &format!("/vessels/{DEMO_VESSEL}/faults/{fault_id}"),
    )
    .await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("<img src=\"{shore_file}\"")),
        "{page}"
    );

    // A user of another organization cannot tell the file exists.
    keelson_shore::add_org(&shore.state.db, "other", "Other Shipping").unwrap();
    keelson_shore::add_user(
        &shore.state.db,
        "stranger",
        keelson_model::ShoreRole::Superintendent,
        "stranger",
        "other",
    )
    .unwrap();
    let stranger = Api::login(&shore.url, "stranger", "stranger").await;
    let (status, _, _) = get_bytes(&stranger, &shore_file).await;
    assert_eq!(status, 404);
    cancel.cancel();
}
