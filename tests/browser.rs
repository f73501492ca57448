//! The ship UI in a real browser: headless Chromium driven through
//! ChromeDriver (Debian's `chromium` and `chromium-driver`, which
//! `tests/run.sh` installs when missing), against a real edge agent on
//! loopback. Every flow here is done with the page's own forms and links,
//! as a crew member or the chief engineer would on a tablet.

#![allow(clippy::unwrap_used)]

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use keelson_ingest::alarms::{AlarmRule, AlarmsConfig};
use keelson_tests::{
    Api, TestEdge, standalone_edge_config, start_edge, start_records_edge, wait_for,
};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// A ChromeDriver process of our own on a free loopback port, stopped (by
/// its process id) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    // The port is chosen by binding port 0 and letting it go: ChromeDriver
    // takes a port number, not a socket.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (tests/run.sh installs Debian's chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver { child, url };
    // Ready when its status endpoint says so.
    let http = reqwest::Client::new();
    let status = format!("{}/status", driver.url);
    wait_for("chromedriver to be ready", WAIT, || {
        let (http, status) = (http.clone(), status.clone());
        async move {
            let answer = http.get(&status).send().await.ok()?;
            let v: Value = answer.json().await.ok()?;
            (v["value"]["ready"] == true).then_some(())
        }
    })
    .await;
    driver
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            // A 10-inch tablet's screen.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,800"],
        }),
    );
    // ChromeDriver listens on plain HTTP on loopback, so no TLS connector.
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// Logs in through the login page and lands on the dashboard.
async fn log_in(c: &Client, edge: &TestEdge, username: &str, password: &str) {
    c.goto(&format!("{}/login", edge.url)).await.unwrap();
    let form = c.form(Locator::Css("form[action='/login']")).await.unwrap();
    form.set_by_name("username", username)
        .await
        .unwrap()
        .set_by_name("password", password)
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
    let h1 = c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "MV Keelson Demo");
}

/// Types `text` into the field of `scope` that `css` selects.
async fn type_into(scope: &Element, css: &str, text: &str) {
    scope
        .find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Submits `form` and waits until the browser has replaced the page it was
/// on, so that what follows reads the page the post led to and not the
/// one before it (whose elements would still match for a moment).
async fn submit(form: &Element) {
    click_in(form, "button[type=submit]").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Once the page is replaced, the old form is a stale reference and
    // every command on it fails.
    while form.is_enabled().await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page did not change after submitting the form"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks what `css` selects inside `scope`.
async fn click_in(scope: &Element, css: &str) {
    scope
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Follows the link named `text` once it is on the page.
async fn follow(c: &Client, text: &str) {
    c.wait()
        .for_element(Locator::LinkText(text))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn page_text(c: &Client) -> String {
    c.find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crew_member_logs_in_and_a_wrong_password_is_refused() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;

    c.goto(&format!("{}/faults", edge.url)).await.unwrap();
    // Not logged in: the list sends the browser to the login page.
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    let form = c.form(Locator::Css("form[action='/login']")).await.unwrap();
    form.set_by_name("username", "crew")
        .await
        .unwrap()
        .set_by_name("password", "wrong")
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
    let alert = c
        .wait()
        .for_element(Locator::Css("[role=alert]"))
        .await
        .unwrap();
    assert!(!alert.text().await.unwrap().is_empty());

    log_in(&c, &edge, "crew", "crew").await;
    follow(&c, "Faults").await;
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/faults");
    c.close().await.unwrap();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crew_acknowledges_an_alarm_from_the_alarm_list() {
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = standalone_edge_config(dir.path());
    // No device feeds the tag, so its stale alarm is raised within a
    // second.
    config.alarms = AlarmsConfig {
        stale_after_secs: Some(1),
        rules: vec![AlarmRule {
            tag: "me.rpm".into(),
            high: None,
            high_high: None,
            low: None,
            low_low: None,
            deadband: 0.0,
            delay_secs: 0,
            stale_after_secs: None,
            bad_quality: false,
        }],
    };
    let edge = start_edge(dir, config, &cancel).await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    wait_for("the stale alarm", WAIT, || {
        let crew = crew.clone();
        async move {
            let list = crew.get("/api/v1/alarms").await;
            list.as_array().is_some_and(|a| !a.is_empty()).then_some(())
        }
    })
    .await;

    let driver = start_driver().await;
    let c = browser(&driver).await;
    log_in(&c, &edge, "crew", "crew").await;
    c.goto(&format!("{}/alarms", edge.url)).await.unwrap();
    let row = c
        .wait()
        .for_element(Locator::Css("tr.alarm.state-active_unacknowledged"))
        .await
        .unwrap();
    click_in(&row, "button.ack").await;
    c.wait()
        .for_element(Locator::Css("tr.alarm.state-active_acknowledged"))
        .await
        .unwrap();
    let alarms = crew.get("/api/v1/alarms").await;
    assert_eq!(alarms[0]["state"], "active_acknowledged");
    c.close().await.unwrap();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chief_engineer_signs_off_a_finished_work_order() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    // The engineer's part, through the API: a work order worked and done.
    let pump = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Fuel pump 3", "level": "system"}),
            201,
        )
        .await;
    let wo = chief
        .post(
            "/api/v1/work-orders",
            json!({"title": "Overhaul fuel pump 3", "equipment_id": pump["id"], "assignee": "engineer"}),
            201,
        )
        .await;
    let id = wo["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/work-orders/{id}");
    engineer
        .patch(&path, json!({"status": "in_progress"}), 200)
        .await;
    engineer
        .post(
            &format!("{path}/entries"),
            json!({"text": "Replaced plunger and barrel", "hours": 3.5}),
            201,
        )
        .await;
    engineer
        .patch(
            &path,
            json!({"status": "done", "work_done": "Pump overhauled"}),
            200,
        )
        .await;

    // The chief engineer's part, in the browser: find it, sign it off.
    let driver = start_driver().await;
    let c = browser(&driver).await;
    log_in(&c, &edge, "chief", "chief").await;
    follow(&c, "Work orders").await;
    follow(&c, "Overhaul fuel pump 3").await;
    let form = c
        .wait()
        .for_element(Locator::Css("form[action$='/sign-off']"))
        .await
        .unwrap();
    type_into(&form, "textarea[name=note]", "Tested under load").await;
    submit(&form).await;
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    // Signed off is final: the page no longer offers the sign-off.
    assert!(
        c.find(Locator::Css("form[action$='/sign-off']"))
            .await
            .is_err(),
        "{}",
        page_text(&c).await
    );
    let signed = chief.get(&path).await;
    assert_eq!(signed["status"], "signed_off");
    assert_eq!(signed["sign_offs"][0]["author"], "chief");
    assert_eq!(signed["sign_offs"][0]["note"], "Tested under load");
    c.close().await.unwrap();
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crew_member_logs_a_fault_with_a_photo() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    // A real PNG (one red pixel), as a tablet's camera would hand over a
    // JPEG: the server checks the bytes, not the name.
    let photo_dir = tempfile::tempdir().unwrap();
    let photo = photo_dir.path().join("leak.png");
    std::fs::write(&photo, PNG_PIXEL).unwrap();

    let driver = start_driver().await;
    let c = browser(&driver).await;
    log_in(&c, &edge, "crew", "crew").await;
    follow(&c, "Log a fault").await;
    let form = c
        .wait()
        .for_element(Locator::Css("form[action='/faults']"))
        .await
        .unwrap();
    for (name, value) in [
        ("title", "Sea water pump leaking at the gland"),
        ("equipment", "SW pump 2"),
        ("caption", "Drip tray half full"),
    ] {
        type_into(&form, &format!("[name={name}]"), value).await;
    }
    type_into(
        &form,
        "input[type=file][name=file]",
        photo.to_str().unwrap(),
    )
    .await;
    submit(&form).await;
    // The fault's page shows the photo.
    let img = c
        .wait()
        .for_element(Locator::Css("img[src^='/api/v1/attachments/']"))
        .await
        .unwrap();
    let src = img.attr("src").await.unwrap().unwrap();
    let crew = Api::login(&edge.url, "crew", "crew").await;
    let faults = crew.get("/api/v1/faults").await;
    let fault = &faults[0];
    assert_eq!(fault["title"], "Sea water pump leaking at the gland");
    assert_eq!(fault["reporter"], "crew");
    assert_eq!(fault["attachments"][0]["content_type"], "image/png");
    assert_eq!(fault["attachments"][0]["caption"], "Drip tray half full");
    // The browser shows the very bytes it sent.
    let sha = fault["attachments"][0]["sha256"].as_str().unwrap();
    assert_eq!(src, format!("/api/v1/attachments/{sha}"));
    let served = crew
        .request(reqwest::Method::GET, &src)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), PNG_PIXEL);
    c.close().await.unwrap();
    cancel.cancel();
}

/// A 1×1 PNG.
const PNG_PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engineer_completes_a_work_order_that_uses_a_spare_part() {
    const SHELF: &str = "ER store, shelf 3";
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let eq = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system"}),
            201,
        )
        .await;
    let part = chief
        .post(
            "/api/v1/parts",
            json!({"number": "FF-1940", "name": "Fuel filter element", "unit": "pcs",
                   "equipment_ids": [eq["id"]], "min_stock": 1, "locations": [SHELF]}),
            201,
        )
        .await;
    let part_path = format!("/api/v1/parts/{}", part["id"].as_str().unwrap());
    chief
        .post(
            &format!("{part_path}/movements"),
            json!({"kind": "receipt", "location": SHELF, "quantity": 5}),
            201,
        )
        .await;
    let wo = chief
        .post(
            "/api/v1/work-orders",
            json!({"title": "Change fuel filters", "equipment_id": eq["id"], "assignee": "engineer"}),
            201,
        )
        .await;
    let wo_path = format!("/api/v1/work-orders/{}", wo["id"].as_str().unwrap());
    chief
        .patch(&wo_path, json!({"status": "in_progress"}), 200)
        .await;

    let driver = start_driver().await;
    let c = browser(&driver).await;
    log_in(&c, &edge, "engineer", "engineer").await;
    c.goto(&format!("{}/work-orders", edge.url)).await.unwrap();
    follow(&c, "Change fuel filters").await;
    // Record the work with two filters used.
    let form = c
        .wait()
        .for_element(Locator::Css("form[action$='/entries']"))
        .await
        .unwrap();
    type_into(&form, "textarea[name=text]", "Changed both filter elements").await;
    type_into(&form, "input[name=hours]", "1.5").await;
    click_in(
        &form,
        &format!(
            "select[name=use_1] option[value='{}|{SHELF}']",
            part["id"].as_str().unwrap()
        ),
    )
    .await;
    type_into(&form, "input[name=qty_1]", "2").await;
    submit(&form).await;
    // Then mark it done with the update form.
    let update = c
        .wait()
        .for_element(Locator::Css("form[action$='/edit']"))
        .await
        .unwrap();
    click_in(&update, "select[name=status] option[value=done]").await;
    submit(&update).await;
    c.wait().for_element(Locator::Css("h1")).await.unwrap();

    let done = chief.get(&wo_path).await;
    assert_eq!(done["status"], "done", "{}", page_text(&c).await);
    assert_eq!(done["entries"][0]["text"], "Changed both filter elements");
    // The stock dropped by the two filters used, at that location.
    let after = chief.get(&part_path).await;
    assert_eq!(after["total"], 3.0);
    assert_eq!(after["movements"][1]["kind"], "consumption");
    assert_eq!(after["movements"][1]["work_order_id"], wo["id"]);
    c.close().await.unwrap();
    cancel.cancel();
}
