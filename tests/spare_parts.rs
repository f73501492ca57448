//! Spare parts end to end, through a real edge agent and a real shore on
//! loopback: a part created and received, used on a work order so its
//! stock drops, a consumption beyond the stock refused, an adjustment
//! without a reason refused, a requisition drafted from minimum stock and
//! submitted, the parts and the requisition seen ashore after sync, and the
//! record-work form taking parts out of stock without JavaScript.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_tests::{Api, Pages, start_records_edge, start_shore, start_synced_edge, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const SHELF: &str = "ER store shelf 3";

/// Equipment, a work order on it in progress, and a part that fits it with
/// a minimum stock of 4; returns the work order's and the part's ids.
async fn setup(chief: &Api, engineer: &Api) -> (String, String) {
    let eq = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system"}),
            201,
        )
        .await;
    let wo = engineer
        .post(
            "/api/v1/work-orders",
            json!({"title": "Change fuel filters", "equipment_id": eq["id"]}),
            201,
        )
        .await;
    let wo = wo["id"].as_str().unwrap().to_owned();
    engineer
        .patch(
            &format!("/api/v1/work-orders/{wo}"),
            json!({"status": "in_progress"}),
            200,
        )
        .await;
    let part = chief
        .post(
            "/api/v1/parts",
            json!({"number": "FF-1940", "name": "Fuel filter element", "maker": "Boll & Kirch",
                   "maker_ref": "1940.0010", "unit": "pcs", "equipment_ids": [eq["id"]],
                   "min_stock": 4, "locations": [SHELF]}),
            201,
        )
        .await;
    assert_eq!(part["total"], 0.0);
    assert_eq!(part["below_minimum"], true);
    (wo, part["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_used_on_a_work_order_leave_stock_and_reach_the_shore() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let edge = start_synced_edge(&shore, &cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    let office = Api::login(&shore.url, "office", "office").await;
    let (wo, part) = setup(&chief, &engineer).await;
    let part_path = format!("/api/v1/parts/{part}");

    // Six received by the engineer.
    let received = engineer
        .post(
            &format!("{part_path}/movements"),
            json!({"kind": "receipt", "location": SHELF, "quantity": 6, "reason": "Delivery at Rotterdam"}),
            201,
        )
        .await;
    assert_eq!(received["total"], 6.0);
    assert_eq!(received["below_minimum"], false);

    // Work done on the work order uses three: the stock drops with the
    // entry, and the work order shows the parts it used.
    let worked = engineer
        .post(
            &format!("/api/v1/work-orders/{wo}/entries"),
            json!({"text": "Changed both filter elements", "hours": 1.5,
                   "parts": [{"part_id": part, "location": SHELF, "quantity": 3}]}),
            201,
        )
        .await;
    assert_eq!(worked["entries"][0]["parts"][0]["part_id"], part.as_str());
    assert_eq!(worked["entries"][0]["parts"][0]["quantity"], 3.0);
    let after = chief.get(&part_path).await;
    assert_eq!(after["total"], 3.0, "{after}");
    assert_eq!(after["stock"][0]["location"], SHELF);
    assert_eq!(after["stock"][0]["quantity"], 3.0);
    assert_eq!(after["below_minimum"], true);
    let used = &after["movements"][1];
    assert_eq!(used["kind"], "consumption");
    assert_eq!(used["delta"], -3.0);
    assert_eq!(used["work_order_id"], wo.as_str());
    assert_eq!(used["by"], "engineer");

    // Taking more than the shelf holds is refused with a clear 409, and
    // the whole entry with it: no work entry, no movement.
    let (status, body) = engineer
        .send(
            Method::POST,
            &format!("/api/v1/work-orders/{wo}/entries"),
            Some(json!({"text": "More filters", "hours": 0.5,
                        "parts": [{"part_id": part, "location": SHELF, "quantity": 5}]})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(
        body["detail"].as_str().unwrap().contains("only 3"),
        "{body}"
    );
    let (status, body) = engineer
        .send(
            Method::POST,
            &format!("{part_path}/movements"),
            Some(json!({"kind": "consumption", "location": SHELF, "quantity": 4})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let wo_now = engineer.get(&format!("/api/v1/work-orders/{wo}")).await;
    assert_eq!(wo_now["entries"].as_array().unwrap().len(), 1);
    assert_eq!(chief.get(&part_path).await["total"], 3.0);

    // An adjustment needs a reason (422 naming the field) and the chief
    // engineer; with both it goes through.
    let (status, body) = chief
        .send(
            Method::POST,
            &format!("{part_path}/movements"),
            Some(json!({"kind": "adjustment", "location": SHELF, "quantity": -1})),
        )
        .await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("reason"),
        "{body}"
    );
    let (status, _) = engineer
        .send(
            Method::POST,
            &format!("{part_path}/movements"),
            Some(json!({"kind": "adjustment", "location": SHELF, "quantity": -1, "reason": "Damaged"})),
        )
        .await;
    assert_eq!(status, 403);
    let adjusted = chief
        .post(
            &format!("{part_path}/movements"),
            json!({"kind": "adjustment", "location": SHELF, "quantity": -1, "reason": "One found damaged"}),
            201,
        )
        .await;
    assert_eq!(adjusted["total"], 2.0);

    // The list finds it by search and by the below-minimum filter.
    let found = chief.get("/api/v1/parts?q=boll&below_minimum=true").await;
    assert_eq!(found["total"], 1, "{found}");
    let none = chief.get("/api/v1/parts?q=impeller").await;
    assert_eq!(none["total"], 0, "{none}");
    let eq = after["equipment_ids"][0].as_str().unwrap();
    let fits = chief.get(&format!("/api/v1/parts?equipment_id={eq}")).await;
    assert_eq!(fits["items"][0]["id"], part.as_str(), "{fits}");
    let (status, body) = chief
        .send(Method::GET, "/api/v1/parts?below_minimum=perhaps", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");

    // A requisition drafted from minimum stock orders what brings the part
    // back to its minimum; the chief submits it.
    let draft = chief
        .post("/api/v1/requisitions/draft-from-minimum", json!({}), 201)
        .await;
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["lines"], json!([{"part_id": part, "quantity": 2.0}]));
    let req_path = format!("/api/v1/requisitions/{}", draft["id"].as_str().unwrap());
    chief
        .patch(
            &req_path,
            json!({"lines": [{"part_id": part, "quantity": 6}], "note": "Next port"}),
            200,
        )
        .await;
    let submitted = chief
        .post(&format!("{req_path}/submit"), json!({}), 201)
        .await;
    assert_eq!(submitted["status"], "submitted");
    let (status, _) = chief
        .send(Method::PATCH, &req_path, Some(json!({"note": "Later"})))
        .await;
    assert_eq!(status, 409);

    // Ashore, after the sync the edits started, the part with its stock
    // and the submitted requisition.
    chief.post("/api/v1/sync/now", json!({}), 202).await;
    let parts: Value = wait_for("the part ashore with its stock", WAIT, || async {
        let (status, body) = office
            .send(
                Method::GET,
                &format!("/api/v1/vessels/{DEMO_VESSEL}/parts"),
                None,
            )
            .await;
        (status == 200 && body[0]["total"] == 2.0).then_some(body)
    })
    .await;
    assert_eq!(parts[0]["number"], "FF-1940");
    assert_eq!(parts[0]["movements"].as_array().unwrap().len(), 3);
    let reqs: Value = wait_for("the submitted requisition ashore", WAIT, || async {
        let (status, body) = office
            .send(
                Method::GET,
                &format!("/api/v1/vessels/{DEMO_VESSEL}/requisitions"),
                None,
            )
            .await;
        (status == 200 && body[0]["status"] == "submitted").then_some(body)
    })
    .await;
    assert_eq!(reqs[0]["lines"][0]["quantity"], 6.0);
    assert_eq!(reqs[0]["note"], "Next port");
    let page = office.page(&format!("/vessels/{DEMO_VESSEL}/parts")).await;
    assert!(
        page.contains("FF-1940") && page.contains("Submitted") && page.contains("Approve"),
        "{page}"
    );

    // The office approves it; a viewer may not. The decision reaches the
    // ship on its next sync, where nobody can add one of their own.
    let decision = format!(
        "/api/v1/vessels/{DEMO_VESSEL}/requisitions/{}/decision",
        draft["id"].as_str().unwrap()
    );
    let viewer = Api::login(&shore.url, "viewer", "viewer").await;
    let (status, body) = viewer
        .send(Method::POST, &decision, Some(json!({"approved": true})))
        .await;
    assert_eq!(status, 403, "{body}");
    let approved = office
        .post(
            &decision,
            json!({"approved": true, "note": "Ordered from the maker's agent"}),
            201,
        )
        .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decisions"][0]["by"], "office@shore");
    chief.post("/api/v1/sync/now", json!({}), 202).await;
    let on_board: Value = wait_for("the office's decision on board", WAIT, || async {
        let body = chief.get(&req_path).await;
        (body["status"] == "approved").then_some(body)
    })
    .await;
    assert_eq!(
        on_board["decisions"][0]["note"],
        "Ordered from the maker's agent"
    );
    // The work order ashore names the parts it used.
    let wo_page = office
        .page(&format!("/vessels/{DEMO_VESSEL}/work-orders/{wo}"))
        .await;
    assert!(
        wo_page.contains("Parts used") && wo_page.contains("FF-1940"),
        "{wo_page}"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spare_part_pages_work_without_javascript() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let chief_api = Api::login(&edge.url, "chief", "chief").await;
    let engineer_api = Api::login(&edge.url, "engineer", "engineer").await;
    let (wo, _) = setup(&chief_api, &engineer_api).await;
    let chief = Pages::login(&edge.url, "chief").await;
    let engineer = Pages::login(&edge.url, "engineer").await;

    // The navigation links the parts list; the chief adds a part by form.
    let (status, html) = chief.get("/parts").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"href="/parts""#) && html.contains("Spare parts"));
    assert!(html.contains("FF-1940"), "{html}");
    let (status, to) = chief
        .post(
            "/parts",
            &[
                ("number", "OR-77"),
                ("name", "O-ring 77 mm"),
                ("maker", ""),
                ("maker_ref", ""),
                ("unit", "pcs"),
                ("min_stock", "10"),
                ("locations", "ER store shelf 1\nBosun store"),
                ("equipment_id", ""),
            ],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    let oring = to.trim_start_matches("/parts/").to_owned();

    // The engineer receives five on the part's page.
    let (status, html) = engineer.get(&to).await;
    assert_eq!(status, 200);
    assert!(html.contains("Receive parts") && !html.contains("Adjust stock"));
    let (status, back) = engineer
        .post(
            &format!("{to}/movements"),
            &[
                ("kind", "receipt"),
                ("location", "ER store shelf 1"),
                ("quantity", "5"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!((status, back.as_str()), (303, to.as_str()));

    // The record-work form offers it and takes two out of stock.
    let wo_page = format!("/work-orders/{wo}");
    let (_, html) = engineer.get(&wo_page).await;
    let choice = format!("{oring}|ER store shelf 1");
    assert!(html.contains(&choice), "{html}");
    let (status, back) = engineer
        .post(
            &format!("{wo_page}/entries"),
            &[
                ("text", "Renewed the O-rings"),
                ("hours", "0.5"),
                ("use_1", &choice),
                ("qty_1", "2"),
                ("use_2", ""),
                ("qty_2", ""),
            ],
        )
        .await;
    assert_eq!((status, back.as_str()), (303, wo_page.as_str()));
    let (_, html) = engineer.get(&wo_page).await;
    assert!(
        html.contains("Parts used") && html.contains("OR-77"),
        "{html}"
    );
    let part = chief_api.get(&format!("/api/v1/parts/{oring}")).await;
    assert_eq!(part["total"], 3.0, "{part}");

    // Taking more than is there is a page saying so.
    let (status, html) = engineer
        .post(
            &format!("{wo_page}/entries"),
            &[
                ("text", "More"),
                ("hours", "0"),
                ("use_1", &choice),
                ("qty_1", "9"),
            ],
        )
        .await;
    assert_eq!(status, 409, "{html}");

    // The chief's adjustment form, then a draft requisition from the
    // below-minimum filter's parts, edited and submitted by form.
    let (_, html) = chief.get(&to).await;
    assert!(html.contains("Adjust stock"), "{html}");
    // The equipment the first part fits lists it.
    let eq = chief_api.get("/api/v1/equipment").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, html) = chief.get(&format!("/equipment/{eq}")).await;
    assert!(
        html.contains("FF-1940") && !html.contains("OR-77"),
        "{html}"
    );
    let (status, _) = chief
        .post(
            &format!("{to}/movements"),
            &[
                ("kind", "adjustment"),
                ("location", "ER store shelf 1"),
                ("quantity", "-1"),
                ("reason", "Count after voyage"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, html) = chief.get("/parts?below_minimum=on&q=o-ring").await;
    assert!(
        html.contains("OR-77") && !html.contains("FF-1940"),
        "{html}"
    );
    let (status, req) = chief.post("/requisitions/draft-from-minimum", &[]).await;
    assert_eq!(status, 303, "{req}");
    let (_, html) = chief.get(&req).await;
    assert!(html.contains("OR-77") && html.contains("FF-1940"), "{html}");
    let line = format!("line:{oring}");
    let (status, _) = chief
        .post(
            &format!("{req}/edit"),
            &[
                (line.as_str(), "12"),
                ("note", "Stock up"),
                ("add_part", ""),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _) = chief.post(&format!("{req}/submit"), &[]).await;
    assert_eq!(status, 303);
    let (_, html) = chief.get("/requisitions").await;
    assert!(
        html.contains("Submitted") && html.contains("12 × OR-77"),
        "{html}"
    );
    cancel.cancel();
}
