//! Equipment, work orders and faults' findings end to end: made on board,
//! worked, signed off, and seen ashore after sync with the sign-off intact,
//! through a real shore and a real edge agent on loopback.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_tests::{Api, Pages, start_records_edge, start_shore, start_synced_edge, wait_for};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_signed_off_on_board_arrives_ashore_signed_off() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    // No sensors: the records lane is under test. The edge syncs straight
    // to the shore and starts a session after every change.
    let edge = start_synced_edge(&shore, &cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    let office = Api::login(&shore.url, "office", "office").await;

    let system = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system", "criticality": "critical"}),
            201,
        )
        .await;
    let pump = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6.1", "name": "Fuel pump 3", "level": "component",
                   "maker": "MAN", "tags": ["me_rpm"]}),
            201,
        )
        .await;
    assert_eq!(pump["parent_code"], "6");
    let tree = chief.get("/api/v1/equipment").await;
    let codes: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["6", "6.1"]);

    let wo = engineer
        .post(
            "/api/v1/work-orders",
            json!({"title": "Overhaul fuel pump 3", "equipment_id": pump["id"], "assignee": "engineer"}),
            201,
        )
        .await;
    let path = format!("/api/v1/work-orders/{}", wo["id"].as_str().unwrap());
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
    let signed = chief
        .post(
            &format!("{path}/sign-off"),
            json!({"note": "Tested under load"}),
            201,
        )
        .await;
    assert_eq!(signed["status"], "signed_off");

    // Signed off means final on board: field edits and work entries get a
    // clear 409, comments still go through.
    let (status, body) = chief
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"status": "in_progress"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    let (status, body) = engineer
        .send(
            reqwest::Method::POST,
            &format!("{path}/entries"),
            Some(json!({"text": "More", "hours": 1})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    engineer
        .post(
            &format!("{path}/comments"),
            json!({"text": "Old parts kept for the maker"}),
            201,
        )
        .await;

    // The equipment page lists the work order's history per equipment.
    let listed = chief
        .get(&format!(
            "/api/v1/work-orders?equipment_id={}&status=signed_off",
            pump["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed["total"], 1, "{listed}");

    // The audit trail names everyone who changed it.
    let history = chief
        .get(&format!(
            "/api/v1/records/{}/history",
            wo["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(history["kind"], "work_order");
    let authors: Vec<&str> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"].as_str().unwrap())
        .collect();
    assert!(
        authors.contains(&"chief") && authors.contains(&"engineer"),
        "{history}"
    );

    // Ashore, after the sync the edits started, it is signed off too.
    let wo_path = format!(
        "/api/v1/vessels/{DEMO_VESSEL}/work-orders/{}",
        wo["id"].as_str().unwrap()
    );
    let ashore: Value = wait_for("the signed-off work order ashore", WAIT, || async {
        let (status, body) = office.send(reqwest::Method::GET, &wo_path, None).await;
        (status == 200 && body["comments"].as_array().is_some_and(|c| c.len() == 1)).then_some(body)
    })
    .await;
    assert_eq!(ashore["status"], "signed_off");
    assert_eq!(ashore["sign_offs"][0]["author"], "chief");
    assert_eq!(ashore["sign_offs"][0]["note"], "Tested under load");
    assert_eq!(ashore["hours_spent"], 3.5);
    let equipment = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/equipment"))
        .await;
    assert_eq!(equipment.as_array().unwrap().len(), 2);
    assert_eq!(equipment[0]["id"], system["id"]);

    // The shore's vessel page lists both.
    let page = office.page(&format!("/vessels/{DEMO_VESSEL}")).await;
    assert!(page.contains("Overhaul fuel pump 3"), "{page}");
    assert!(page.contains("Signed off"), "{page}");
    assert!(page.contains("Fuel pump 3"), "{page}");

    // The office comments on the signed-off work order; the comment reaches
    // the ship on its next sync, and the work order stays signed off on
    // both sides.
    office
        .post(
            &format!("{wo_path}/comments"),
            json!({"text": "Good job, keep the old plunger"}),
            201,
        )
        .await;
    let history = office
        .get(&format!(
            "/api/v1/vessels/{DEMO_VESSEL}/records/{}/history",
            wo["id"].as_str().unwrap()
        ))
        .await;
    let last = history["changes"].as_array().unwrap().last().unwrap();
    assert_eq!(last["author"], "office@shore", "{history}");
    chief.post("/api/v1/sync/now", json!({}), 202).await;
    let aboard: Value = wait_for("the shore's comment on board", WAIT, || async {
        let body = chief.get(&path).await;
        (body["comments"].as_array().unwrap().len() == 2).then_some(body)
    })
    .await;
    assert_eq!(aboard["status"], "signed_off");
    let (_, ashore) = office.send(reqwest::Method::GET, &wo_path, None).await;
    assert_eq!(ashore["status"], "signed_off");
    let page = office
        .page(&format!(
            "/vessels/{DEMO_VESSEL}/work-orders/{}",
            wo["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        page.contains("Signed off") && page.contains("History"),
        "{page}"
    );
    assert!(page.contains("office@shore"), "{page}");

    // A counter, its reading and a plan on it reach the shore too, where
    // the plan's state is computed from the synced total.
    let counter = chief
        .post(
            "/api/v1/counters",
            json!({"equipment_id": pump["id"], "start_total": 100.0}),
            201,
        )
        .await;
    chief
        .post(
            "/api/v1/plans",
            json!({"equipment_id": pump["id"], "title": "Check plunger",
                   "interval_hours": 50.0, "counter_id": counter["id"]}),
            201,
        )
        .await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    crew.post(
        &format!(
            "/api/v1/counters/{}/readings",
            counter["id"].as_str().unwrap()
        ),
        json!({"value": 160.0}),
        201,
    )
    .await;
    let plans: Value = wait_for("the overdue plan ashore", WAIT, || async {
        let (status, body) = office
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/vessels/{DEMO_VESSEL}/plans"),
                None,
            )
            .await;
        (status == 200 && body[0]["schedule"]["state"] == "overdue").then_some(body)
    })
    .await;
    assert_eq!(plans[0]["title"], "Check plunger");
    // The fleet view counts it for the vessel.
    let fleet = office.get("/api/v1/vessels").await;
    assert_eq!(fleet[0]["plans_overdue"], 1, "{fleet}");
    assert_eq!(fleet[0]["plans_due"], 0, "{fleet}");
    let counters = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/counters"))
        .await;
    assert_eq!(counters[0]["total"], 160.0);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_equipment_and_work_order_pages_work_without_javascript() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief = Pages::login(&edge.url, "chief").await;
    let engineer = Pages::login(&edge.url, "engineer").await;
    let crew = Pages::login(&edge.url, "crew").await;

    let (status, page) = chief.get("/equipment").await;
    assert_eq!(status, 200);
    assert!(page.contains("Add equipment"), "{page}");
    let (status, page) = crew.get("/equipment").await;
    assert_eq!(status, 200);
    assert!(!page.contains("Add equipment"), "crew may not add: {page}");

    let system = [
        ("code", "6"),
        ("name", "Main engine"),
        ("level", "system"),
        ("criticality", "critical"),
        ("tags", ""),
    ];
    let (status, to) = chief.post("/equipment", &system).await;
    assert_eq!(status, 303, "{to}");
    let pump = [
        ("code", "6.1"),
        ("name", "Fuel pump 3"),
        ("level", "component"),
        ("criticality", "important"),
        ("maker", "MAN"),
        ("tags", "me_rpm, me_load"),
    ];
    let (status, pump_page) = chief.post("/equipment", &pump).await;
    assert_eq!(status, 303, "{pump_page}");
    let (status, again) = chief.post("/equipment", &pump).await;
    assert_eq!(status, 409);
    assert!(again.contains("already exists"), "{again}");
    let (_, tree) = chief.get("/equipment").await;
    let (six, six_one) = (
        tree.find("Main engine").unwrap(),
        tree.find("Fuel pump 3").unwrap(),
    );
    assert!(six < six_one, "the system comes before its component");
    assert!(
        tree[six..six_one].contains("<ul>"),
        "the component is nested under its system: {tree}"
    );
    let (_, equipment) = chief.get(&pump_page).await;
    assert!(equipment.contains("me_rpm") && equipment.contains("me_load"));
    let pump_id = pump_page.trim_start_matches("/equipment/");

    let (status, form) = engineer
        .get(&format!("/work-orders/new?equipment_id={pump_id}"))
        .await;
    assert_eq!(status, 200);
    assert!(form.contains("Open work order"), "{form}");
    let (status, wo_page) = engineer
        .post(
            "/work-orders",
            &[
                ("title", "Overhaul fuel pump 3"),
                ("equipment_id", pump_id),
                ("assignee", "engineer"),
                ("description", "Leaking at the plunger"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{wo_page}");
    let edit = format!("{wo_page}/edit");
    let entries = format!("{wo_page}/entries");
    let to_status = |s: &'static str| [("status", s), ("assignee", "engineer"), ("work_done", "")];
    assert_eq!(engineer.post(&edit, &to_status("in_progress")).await.0, 303);
    assert_eq!(
        engineer
            .post(&entries, &[("text", "New plunger"), ("hours", "2.5")])
            .await
            .0,
        303
    );
    let (status, bad) = engineer
        .post(&entries, &[("text", "More"), ("hours", "lots")])
        .await;
    assert_eq!(status, 400);
    assert!(bad.contains("hours"), "{bad}");
    assert_eq!(engineer.post(&edit, &to_status("done")).await.0, 303);

    let (_, before) = engineer.get(&wo_page).await;
    assert!(
        !before.contains("Sign off (final)"),
        "only the chief signs off"
    );
    let (_, before) = chief.get(&wo_page).await;
    assert!(before.contains("Sign off (final)"), "{before}");
    let (status, _) = chief
        .post(&format!("{wo_page}/sign-off"), &[("note", "Tested")])
        .await;
    assert_eq!(status, 303);
    let (_, after) = chief.get(&wo_page).await;
    assert!(after.contains("Signed off"), "{after}");
    assert!(!after.contains("Record work"), "{after}");
    assert!(after.contains("History") && after.contains("engineer"));
    let (status, _) = engineer.post(&edit, &to_status("in_progress")).await;
    assert_eq!(status, 409);
    let (status, _) = crew
        .post(&format!("{wo_page}/comments"), &[("text", "Thanks")])
        .await;
    assert_eq!(status, 303);

    let (_, list) = crew.get("/work-orders?status=signed_off").await;
    assert!(list.contains("Overhaul fuel pump 3"), "{list}");
    assert!(list.contains("Page 1 of 1"), "{list}");
    let (_, list) = crew.get("/work-orders?status=open").await;
    assert!(!list.contains("Overhaul fuel pump 3"), "{list}");
    let (_, list) = crew.get("/work-orders?q=PUMP+3").await;
    assert!(list.contains("Overhaul fuel pump 3"), "{list}");
    let (_, list) = crew.get("/work-orders?q=purifier").await;
    assert!(!list.contains("Overhaul fuel pump 3"), "{list}");
    let (_, equipment) = crew.get(&pump_page).await;
    assert!(equipment.contains("Overhaul fuel pump 3"), "{equipment}");
    let (status, dashboard) = crew.get("/").await;
    assert_eq!(status, 200);
    assert!(
        dashboard.contains("0 waiting for sign-off")
            && dashboard.contains("/work-orders?status=open"),
        "{dashboard}"
    );
    for page in [tree, equipment, after] {
        assert!(!page.contains("<script"), "no script needed");
    }
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_readings_never_go_back_except_by_a_correction() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let crew = Api::login(&edge.url, "crew", "crew").await;

    let eq = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "7", "name": "Generator 1", "level": "system"}),
            201,
        )
        .await;
    // A replaced engine comes with the hours it already ran.
    let counter = chief
        .post(
            "/api/v1/counters",
            json!({"equipment_id": eq["id"], "start_total": 1200.0}),
            201,
        )
        .await;
    assert_eq!(counter["total"], 1200.0);
    assert_eq!(counter["name"], "Running hours");
    let path = format!("/api/v1/counters/{}", counter["id"].as_str().unwrap());
    let read = crew
        .post(&format!("{path}/readings"), json!({"value": 1250.5}), 201)
        .await;
    assert_eq!(read["total"], 1250.5);
    assert_eq!(read["readings"][0]["source"], "manual");
    assert_eq!(read["readings"][0]["by"], "crew");

    let (status, body) = crew
        .send(
            reqwest::Method::POST,
            &format!("{path}/readings"),
            Some(json!({"value": 1249.0})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("correct"),
        "{body}"
    );
    let (status, body) = crew
        .send(
            reqwest::Method::POST,
            &format!("{path}/readings"),
            Some(json!({"value": "lots"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = chief
        .send(
            reqwest::Method::POST,
            &format!("{path}/corrections"),
            Some(json!({"value": 1240.0, "reason": " "})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("reason"),
        "{body}"
    );

    let fixed = chief
        .post(
            &format!("{path}/corrections"),
            json!({"value": 1240.0, "reason": "Reading mistyped"}),
            201,
        )
        .await;
    assert_eq!(fixed["total"], 1240.0);
    assert_eq!(chief.get(&path).await["total"], 1240.0);
    let listed = chief
        .get(&format!(
            "/api/v1/counters?equipment_id={}",
            eq["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    cancel.cancel();
}

/// Plans by running hours: readings push a plan to due, the agent opens
/// its work order, the sign-off moves the next due point, and a correction
/// that moves the counter back moves the plan's state back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hours_plan_falls_due_and_its_sign_off_moves_the_next_due_point() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    let crew = Api::login(&edge.url, "crew", "crew").await;

    let eq = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "8", "name": "Generator 2", "level": "system"}),
            201,
        )
        .await;
    let eq = eq["id"].as_str().unwrap();
    let counter = chief
        .post(
            "/api/v1/counters",
            json!({"equipment_id": eq, "start_total": 1000.0}),
            201,
        )
        .await;
    let counter_path = format!("/api/v1/counters/{}", counter["id"].as_str().unwrap());
    let plan = chief
        .post(
            "/api/v1/plans",
            json!({"equipment_id": eq, "title": "Change lube oil filter",
                   "instructions": "Drain, change, refill", "interval_hours": 500.0,
                   "counter_id": counter["id"], "tolerance_hours": 20.0}),
            201,
        )
        .await;
    assert_eq!(plan["last_done_hours"], 1000.0);
    let plan_path = format!("/api/v1/plans/{}", plan["id"].as_str().unwrap());
    let (status, body) = chief
        .send(
            reqwest::Method::POST,
            "/api/v1/plans",
            Some(json!({"equipment_id": eq, "title": "No interval"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(chief.get(&plan_path).await["schedule"]["state"], "ok");
    assert_eq!(chief.get(&plan_path).await["schedule"]["due_hours"], 1500.0);

    // Readings push the plan into its tolerance window; the reading's
    // request opens the work order before it returns.
    crew.post(
        &format!("{counter_path}/readings"),
        json!({"value": 1300.0}),
        201,
    )
    .await;
    assert!(
        chief
            .get("/api/v1/due")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    crew.post(
        &format!("{counter_path}/readings"),
        json!({"value": 1485.0}),
        201,
    )
    .await;
    let due = chief.get("/api/v1/due").await;
    assert_eq!(due.as_array().unwrap().len(), 1, "{due}");
    assert_eq!(due[0]["schedule"]["state"], "due");
    let page = chief.get("/api/v1/plans?state=due").await;
    assert_eq!(page["total"], 1);
    assert_eq!(chief.get("/api/v1/plans?state=ok").await["total"], 0);
    let orders = chief
        .get(&format!("/api/v1/work-orders?equipment_id={eq}"))
        .await;
    assert_eq!(orders["total"], 1, "{orders}");
    let wo = &orders["items"][0];
    assert_eq!(wo["plan_id"], plan["id"]);
    assert_eq!(wo["title"], "Change lube oil filter");
    let wo_path = format!("/api/v1/work-orders/{}", wo["id"].as_str().unwrap());

    // A mistyped reading makes it overdue; the chief engineer's correction
    // moves the counter, and the plan, back.
    crew.post(
        &format!("{counter_path}/readings"),
        json!({"value": 1600.0}),
        201,
    )
    .await;
    assert_eq!(chief.get(&plan_path).await["schedule"]["state"], "overdue");
    chief
        .post(
            &format!("{counter_path}/corrections"),
            json!({"value": 1490.0, "reason": "Reading mistyped"}),
            201,
        )
        .await;
    assert_eq!(chief.get(&plan_path).await["schedule"]["state"], "due");
    chief
        .post(
            &format!("{counter_path}/corrections"),
            json!({"value": 1400.0, "reason": "Meter checked against the log"}),
            201,
        )
        .await;
    assert_eq!(chief.get(&plan_path).await["schedule"]["state"], "ok");
    // Still one work order for the plan: it stays open until signed off.
    crew.post(
        &format!("{counter_path}/readings"),
        json!({"value": 1495.0}),
        201,
    )
    .await;
    let orders = chief
        .get(&format!("/api/v1/work-orders?equipment_id={eq}"))
        .await;
    assert_eq!(orders["total"], 1, "{orders}");

    // The job is done and signed off: the next due point moves on.
    engineer
        .patch(&wo_path, json!({"status": "in_progress"}), 200)
        .await;
    engineer
        .patch(&wo_path, json!({"status": "done"}), 200)
        .await;
    chief
        .post(&format!("{wo_path}/sign-off"), json!({}), 201)
        .await;
    let after = chief.get(&plan_path).await;
    assert_eq!(after["last_done_hours"], 1495.0);
    assert_eq!(after["schedule"]["due_hours"], 1995.0);
    assert_eq!(after["schedule"]["state"], "ok");
    assert!(
        chief
            .get("/api/v1/due")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A postponement needs a reason and moves the due point.
    chief
        .post(
            &format!("{plan_path}/postpone"),
            json!({"until_hours": 2100.0, "reason": "Next port call"}),
            201,
        )
        .await;
    assert_eq!(chief.get(&plan_path).await["schedule"]["due_hours"], 2100.0);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_and_plan_pages_work_without_javascript() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief_api = Api::login(&edge.url, "chief", "chief").await;
    let chief = Pages::login(&edge.url, "chief").await;
    let crew = Pages::login(&edge.url, "crew").await;

    let eq = chief_api
        .post(
            "/api/v1/equipment",
            json!({"code": "9", "name": "Boiler", "level": "system"}),
            201,
        )
        .await;
    let eq = eq["id"].as_str().unwrap();
    let eq_page = format!("/equipment/{eq}");

    // The chief engineer adds the counter and the plan on the equipment
    // page; the crew see neither form and may use neither.
    let (_, html) = crew.get(&eq_page).await;
    assert!(
        !html.contains("Add a counter") && !html.contains("Add a plan"),
        "{html}"
    );
    let counter_form = [
        ("equipment_id", eq),
        ("name", ""),
        ("unit", ""),
        ("start_total", "0"),
        ("sensor_tag", ""),
        ("sensor_threshold", ""),
    ];
    assert_eq!(crew.post("/counters", &counter_form).await.0, 403);
    let (_, html) = chief.get(&eq_page).await;
    assert!(
        html.contains("Add a counter") && html.contains("Add a plan"),
        "{html}"
    );
    let mut half_rule = counter_form;
    half_rule[4] = ("sensor_tag", "boiler_fan");
    let (status, html) = chief.post("/counters", &half_rule).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("sensor_threshold"), "{html}");
    let (status, to) = chief.post("/counters", &counter_form).await;
    assert_eq!((status, to.as_str()), (303, eq_page.as_str()));
    let counters = chief_api
        .get(&format!("/api/v1/counters?equipment_id={eq}"))
        .await;
    assert_eq!(counters[0]["name"], "Running hours", "{counters}");
    let counter = counters[0]["id"].as_str().unwrap();

    let plan_form = |hours: &'static str| {
        [
            ("equipment_id", eq),
            ("title", "Clean burner nozzle"),
            ("instructions", ""),
            ("interval_days", ""),
            ("interval_hours", hours),
            ("counter_id", counter),
            ("tolerance_days", "0"),
            ("tolerance_hours", "0"),
            ("last_done_at", ""),
            ("last_done_hours", ""),
        ]
    };
    let (status, html) = chief.post("/plans", &plan_form("often")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("interval_hours"), "{html}");
    assert_eq!(crew.post("/plans", &plan_form("100")).await.0, 403);
    let (status, to) = chief.post("/plans", &plan_form("100")).await;
    assert_eq!(status, 303, "{to}");
    let plan = to.trim_start_matches("/plans/").to_owned();
    let (_, html) = chief.get(&eq_page).await;
    assert!(html.contains("Clean burner nozzle"), "{html}");

    // Crew record a reading on the equipment page's form.
    let (status, html) = crew.get(&format!("/equipment/{eq}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Record reading"), "{html}");
    let (status, to) = crew
        .post(
            &format!("/counters/{counter}/readings"),
            &[("value", "120")],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (303, format!("/equipment/{eq}").as_str())
    );
    // Going back is refused with a page that says why.
    let (status, html) = crew
        .post(&format!("/counters/{counter}/readings"), &[("value", "50")])
        .await;
    assert_eq!(status, 409, "{html}");
    let (status, html) = crew
        .post(
            &format!("/counters/{counter}/readings"),
            &[("value", "lots")],
        )
        .await;
    assert_eq!(status, 400, "{html}");

    // The reading made the plan overdue: it shows on the due page, the
    // filtered list and the dashboard.
    let (_, html) = crew.get("/due").await;
    assert!(html.contains("Clean burner nozzle"), "{html}");
    let (_, html) = crew.get("/plans?state=overdue").await;
    assert!(html.contains("Clean burner nozzle"), "{html}");
    let (_, html) = crew.get("/plans?state=ok").await;
    assert!(!html.contains("Clean burner nozzle"), "{html}");
    let (_, html) = crew.get("/plans?q=BURNER").await;
    assert!(html.contains("Clean burner nozzle"), "{html}");
    let (_, html) = crew.get("/plans?q=purifier").await;
    assert!(!html.contains("Clean burner nozzle"), "{html}");
    let (status, _) = crew.get("/plans?state=soon").await;
    assert_eq!(status, 400);
    let (_, html) = crew.get("/").await;
    assert!(html.contains("1 overdue"), "{html}");

    // Only the chief engineer sees and may use the postponement form.
    let (_, html) = crew.get(&format!("/plans/{plan}")).await;
    assert!(!html.contains("Postpone</button>"), "{html}");
    let (status, _) = crew
        .post(
            &format!("/plans/{plan}/postpone"),
            &[
                ("until_hours", "250"),
                ("reason", "Spares on board next week"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    let (_, html) = chief.get(&format!("/plans/{plan}")).await;
    assert!(html.contains("Postpone</button>"), "{html}");
    let (status, to) = chief
        .post(
            &format!("/plans/{plan}/postpone"),
            &[
                ("until_hours", "250"),
                ("reason", "Spares on board next week"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (303, format!("/plans/{plan}").as_str())
    );
    let (_, html) = chief.get(&format!("/plans/{plan}")).await;
    assert!(html.contains("Spares on board next week"), "{html}");
    let (_, html) = chief.get("/due").await;
    assert!(!html.contains("Clean burner nozzle"), "{html}");

    // Only the chief engineer corrects a total, and only with a reason.
    let corrections = format!("/counters/{counter}/corrections");
    let (_, html) = crew.get(&eq_page).await;
    assert!(!html.contains("Correct the total"), "{html}");
    assert_eq!(
        crew.post(
            &corrections,
            &[("value", "90"), ("reason", "Meter swapped")]
        )
        .await
        .0,
        403
    );
    let (status, html) = chief
        .post(&corrections, &[("value", "90"), ("reason", "")])
        .await;
    assert_eq!(status, 400, "{html}");
    let (status, to) = chief
        .post(
            &corrections,
            &[("value", "90"), ("reason", "Meter swapped")],
        )
        .await;
    assert_eq!((status, to.as_str()), (303, eq_page.as_str()));
    let corrected = chief_api.get(&format!("/api/v1/counters/{counter}")).await;
    assert_eq!(corrected["total"], 90.0, "{corrected}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faults_cause_and_corrective_action_are_recorded_on_its_page_and_reach_the_shore() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let edge = start_synced_edge(&shore, &cancel).await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    let engineer = Pages::login(&edge.url, "engineer").await;
    let crew_pages = Pages::login(&edge.url, "crew").await;
    let office = Api::login(&shore.url, "office", "office").await;

    let fault = crew
        .post(
            "/api/v1/faults",
            json!({"title": "Bilge pump 2 trips", "severity": "medium"}),
            201,
        )
        .await;
    let id = fault["id"].as_str().unwrap();
    assert_eq!(fault["cause"], "");
    assert_eq!(fault["corrective_action"], "");
    let findings = format!("/faults/{id}/findings");

    // The crew see the fault but not the engineers' form.
    let (_, page) = crew_pages.get(&format!("/faults/{id}")).await;
    assert!(!page.contains(&findings), "{page}");
    let (status, _) = crew_pages
        .post(&findings, &[("cause", "x"), ("corrective_action", "")])
        .await;
    assert_eq!(status, 403);

    // Resolving with no corrective action is refused with the field named.
    let (_, page) = engineer.get(&format!("/faults/{id}")).await;
    assert!(page.contains(&findings), "{page}");
    let (status, page) = engineer
        .post(
            &findings,
            &[
                ("cause", "Float switch sticking"),
                ("corrective_action", ""),
                ("resolve", "1"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("corrective_action"), "{page}");
    let unchanged = crew.get(&format!("/api/v1/faults/{id}")).await;
    assert_eq!(unchanged["cause"], "", "a refused form changes nothing");

    let (status, to) = engineer
        .post(
            &findings,
            &[
                ("cause", "Float switch sticking"),
                ("corrective_action", "Float switch cleaned and tested"),
                ("resolve", "1"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    let (_, page) = engineer.get(&to).await;
    assert!(
        page.contains("Float switch sticking") && page.contains("Float switch cleaned and tested"),
        "{page}"
    );
    let resolved = crew.get(&format!("/api/v1/faults/{id}")).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(
        resolved["corrective_action"],
        "Float switch cleaned and tested"
    );

    // Ashore after the sync the edit started, with the same findings.
    let path = format!("/api/v1/vessels/{DEMO_VESSEL}/faults/{id}");
    let ashore: Value = wait_for("the resolved fault ashore", WAIT, || async {
        let (status, body) = office.send(reqwest::Method::GET, &path, None).await;
        (status == 200 && body["status"] == "resolved").then_some(body)
    })
    .await;
    assert_eq!(ashore["cause"], "Float switch sticking");
    assert_eq!(
        ashore["corrective_action"],
        "Float switch cleaned and tested"
    );
    let page = office
        .page(&format!("/vessels/{DEMO_VESSEL}/faults/{id}"))
        .await;
    assert!(page.contains("Corrective action"), "{page}");
    cancel.cancel();
}
