//! The office plans a vessel's maintenance: a plan and a work order made
//! ashore reach the ship on its next sync, the ship does the work and signs
//! it off, and the office's later change of the interval merges with the
//! ship's own postponement made in the meantime, through a real shore and a
//! real edge agent on loopback.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_tests::{
    Api, Pages, start_shore, start_synced_edge, sync_and_wait, wait_for, work_work_order,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_and_work_orders_made_ashore_are_worked_on_board() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let edge = start_synced_edge(&shore, &cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    let office = Api::login(&shore.url, "office", "office").await;
    let viewer = Api::login(&shore.url, "viewer", "viewer").await;

    let engine = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system"}),
            201,
        )
        .await;
    let eq = engine["id"].as_str().unwrap();
    let plans = format!("/api/v1/vessels/{DEMO_VESSEL}/plans");
    let orders = format!("/api/v1/vessels/{DEMO_VESSEL}/work-orders");
    wait_for("the equipment ashore", WAIT, || async {
        let (status, body) = office
            .send(
                Method::GET,
                &format!("/api/v1/vessels/{DEMO_VESSEL}/equipment"),
                None,
            )
            .await;
        (status == 200 && body.as_array().is_some_and(|a| a.len() == 1)).then_some(())
    })
    .await;

    // A viewer may look but not plan; nobody plans a vessel they cannot see.
    let new_plan = json!({"equipment_id": eq, "title": "Inspect turbocharger",
                          "interval_days": 90, "tolerance_days": 7});
    let (status, body) = viewer
        .send(Method::POST, &plans, Some(new_plan.clone()))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = office
        .send(
            Method::POST,
            "/api/v1/vessels/elsewhere/plans",
            Some(new_plan.clone()),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let plan = office.post(&plans, new_plan, 201).await;
    assert_eq!(plan["created_by"], "office@shore");
    let plan_id = plan["id"].as_str().unwrap().to_owned();
    let order = office
        .post(
            &orders,
            json!({"equipment_id": eq, "title": "Renew charge air filter",
                   "assignee": "engineer"}),
            201,
        )
        .await;
    let order_id = order["id"].as_str().unwrap().to_owned();

    // Both reach the ship on its next sync.
    sync_and_wait(&chief, WAIT).await;
    let on_board = chief.get(&format!("/api/v1/plans/{plan_id}")).await;
    assert_eq!(on_board["title"], "Inspect turbocharger", "{on_board}");
    let wo_path = format!("/api/v1/work-orders/{order_id}");
    let wo = chief.get(&wo_path).await;
    assert_eq!(wo["assignee"], "engineer");

    // The ship works the office's work order and signs it off; meanwhile the
    // office shortens the plan's interval and the chief engineer postpones
    // it on board. Both edits survive the merge on both sides.
    work_work_order(&engineer, &wo_path, "Filter renewed", 1.5).await;
    chief
        .post(
            &format!("{wo_path}/sign-off"),
            json!({"note": "Checked"}),
            201,
        )
        .await;
    office
        .patch(
            &format!("{plans}/{plan_id}"),
            json!({"interval_days": 60}),
            200,
        )
        .await;
    chief
        .post(
            &format!("/api/v1/plans/{plan_id}/postpone"),
            json!({"until_date": "2027-06-01T00:00:00Z", "reason": "Dry dock in May"}),
            201,
        )
        .await;
    sync_and_wait(&chief, WAIT).await;

    let on_board = chief.get(&format!("/api/v1/plans/{plan_id}")).await;
    assert_eq!(on_board["interval_days"], 60, "{on_board}");
    assert_eq!(on_board["postponements"][0]["reason"], "Dry dock in May");
    let ashore: Value = wait_for("the signed-off work order ashore", WAIT, || async {
        let (status, body) = office
            .send(Method::GET, &format!("{orders}/{order_id}"), None)
            .await;
        (status == 200 && body["status"] == "signed_off").then_some(body)
    })
    .await;
    assert_eq!(ashore["hours_spent"], 1.5);
    let ashore_plans = office.get(&plans).await;
    let mut ashore_plan = ashore_plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == plan_id.as_str())
        .unwrap()
        .clone();
    // The schedule is computed on each side from its own clock; the plan
    // itself must be the same.
    let mut on_board = on_board;
    ashore_plan.as_object_mut().unwrap().remove("schedule");
    on_board.as_object_mut().unwrap().remove("schedule");
    assert_eq!(ashore_plan, on_board, "both sides agree");

    // The same from the vessel's page, without JavaScript: the
    // superintendent has the forms, the viewer neither sees nor may use
    // them.
    let vessel_page = format!("/vessels/{DEMO_VESSEL}");
    let office_pages = Pages::login(&shore.url, "office").await;
    let viewer_pages = Pages::login(&shore.url, "viewer").await;
    let (_, page) = office_pages.get(&vessel_page).await;
    assert!(
        page.contains("Plan work for the vessel") && page.contains("Inspect turbocharger"),
        "{page}"
    );
    let (_, page) = viewer_pages.get(&vessel_page).await;
    assert!(!page.contains("Plan work for the vessel"), "{page}");
    let form = [
        ("title", "Sound fuel tanks"),
        ("equipment_id", eq),
        ("assignee", ""),
        ("description", ""),
    ];
    let (status, _) = viewer_pages
        .post(&format!("{vessel_page}/work-orders"), &form)
        .await;
    assert_eq!(status, 403);
    let (status, to) = office_pages
        .post(&format!("{vessel_page}/work-orders"), &form)
        .await;
    assert_eq!(status, 303, "{to}");
    let plan_form = [
        ("title", "Test emergency generator"),
        ("equipment_id", eq),
        ("instructions", ""),
        ("interval_days", "weekly"),
        ("tolerance_days", "0"),
    ];
    let (status, page) = office_pages
        .post(&format!("{vessel_page}/plans"), &plan_form)
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("interval_days"), "{page}");
    let mut plan_form = plan_form;
    plan_form[3] = ("interval_days", "7");
    let (status, _) = office_pages
        .post(&format!("{vessel_page}/plans"), &plan_form)
        .await;
    assert_eq!(status, 303);
    sync_and_wait(&chief, WAIT).await;
    let on_board = chief.get("/api/v1/plans?q=emergency").await;
    assert_eq!(on_board["total"], 1, "{on_board}");
    let orders_on_board = chief.get("/api/v1/work-orders?q=fuel+tanks").await;
    assert_eq!(orders_on_board["total"], 1, "{orders_on_board}");
    cancel.cancel();
}
