//! The shore office's pages: the fleet with each vessel's active alarms, a
//! vessel's alarms and alarm history, faults, work orders, equipment and
//! sensor trends, a fault with its comments, a tag's trend
//! from the rollups the vessel sent, a vessel's spare parts and
//! requisitions, and the superintendent's forms that open a work order or
//! add a calendar plan for a vessel.

use crate::api::{
    ActiveAlarm, AlarmsQuery, add_shore_comment, add_shore_work_order_comment, add_vessel_plan,
    add_vessel_work_order, alarms_of, decide_on_requisition, equipment_of, fault_of, faults_of,
    history_of, org_of, parse_width, parts_of, plans_of, quarantined, requisitions_of, rollups_of,
    tags_of, vessel_of, vessel_summaries, work_order_of, work_orders_of,
};
use crate::{ShoreState, role_of};
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use keelson_web::alarms::{history_table, kind_label, number, state_label, when};
use keelson_web::layout::{human_bytes, human_duration, page, when_rfc3339};
use keelson_web::session::page_error;
use keelson_web::{PageUser, blocking, form, views};
use maud::{Markup, html};
use serde::Deserialize;

/// The page routes.
pub fn router() -> Router<ShoreState> {
    Router::new()
        .route("/", get(fleet))
        .route("/vessels/{id}", get(vessel))
        .route("/vessels/{id}/faults/{fault_id}", get(fault))
        .route("/vessels/{id}/tags/{tag}", get(tag_page))
        .route(
            "/vessels/{id}/work-orders/{work_order_id}",
            get(work_order_page),
        )
        .route(
            "/vessels/{id}/work-orders/{work_order_id}/comments",
            axum::routing::post(work_order_comment),
        )
        .route("/vessels/{id}/parts", get(parts_page))
        .route(
            "/vessels/{id}/work-orders",
            axum::routing::post(new_work_order),
        )
        .route("/vessels/{id}/plans", axum::routing::post(new_plan))
        .route(
            "/vessels/{id}/requisitions/{requisition_id}/decision",
            axum::routing::post(decide),
        )
        .route("/quarantine", get(quarantine_page))
        .route(
            "/vessels/{id}/faults/{fault_id}/comments",
            axum::routing::post(comment),
        )
}

async fn fleet(State(state): State<ShoreState>, PageUser(user): PageUser) -> Response {
    let (s, u) = (state.clone(), user.clone());
    let vessels = match blocking(move || vessel_summaries(&s, &org_of(&s, &u)?)).await {
        Ok(v) => v,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let body = html! {
        h1 { "Fleet" }
        @if vessels.is_empty() {
            p.muted { "No vessels registered yet. Register one with "
                code { "keelson-shore vessel add --id ID --name NAME --public-key KEY" } "." }
        } @else {
            table {
                thead { tr { th { "Vessel" } th { "Last sync" } th { "Sensor data up to" } th { "Waiting on board" } th { "Active alarms" } th { "Open faults" } th { "Maintenance" } } }
                tbody {
                    @for v in &vessels {
                        tr id={ "vessel-" (v.id) } {
                            td { a href={ "/vessels/" (v.id) } { (v.name) } " " span.muted { "(" (v.id) ")" } }
                            td { (when_rfc3339(v.last_sync.as_deref())) }
                            td { (when_rfc3339(v.sensor_data_until.as_deref())) }
                            td {
                                (human_bytes(v.pending_bytes))
                                @if let Some(eta) = v.eta_secs.filter(|_| v.pending_bytes > 0) {
                                    br; span.muted { "about " (human_duration(eta)) " to send" }
                                }
                                @if v.pending_alarm_events > 0 {
                                    br; span.muted.alarms-waiting { (v.pending_alarm_events) " alarm history "
                                        @if v.pending_alarm_events == 1 { "entry" } @else { "entries" } }
                                }
                            }
                            td.alarms {
                                @if v.active_alarms == 0 {
                                    span.muted { "none" }
                                } @else {
                                    a href={ "/vessels/" (v.id) "#alarms" } { span.pill.active-alarms { (v.active_alarms) " active" } }
                                    @if v.unacknowledged_alarms > 0 {
                                        " " span.pill.sev-high.unacknowledged-alarms { (v.unacknowledged_alarms) " unacknowledged" }
                                    }
                                }
                            }
                            td {
                                @if v.open_faults.is_empty() { span.muted { "none" } }
                                @for (sev, n) in &v.open_faults {
                                    span class={ "pill sev-" (sev) } { (n) " " (sev) } " "
                                }
                            }
                            td {
                                @if v.plans_overdue == 0 && v.plans_due == 0 {
                                    span.muted { "nothing due" }
                                } @else {
                                    @if v.plans_overdue > 0 { span.pill.overdue { (v.plans_overdue) " overdue" } " " }
                                    @if v.plans_due > 0 { span.pill.due { (v.plans_due) " due" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(page(&state.site, "Fleet", Some(&user), body).into_string()).into_response()
}

async fn vessel(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let (s, u, vid) = (state.clone(), user.clone(), id.clone());
    let loaded = blocking(move || {
        Ok((
            vessel_of(&s, &u, &vid)?,
            faults_of(&s, &u, &vid)?,
            equipment_of(&s, &u, &vid)?,
            work_orders_of(&s, &u, &vid)?,
            tags_of(&s, &u, &vid)?,
            plans_of(&s, &u, &vid)?,
            alarms_of(
                &s,
                &u,
                &vid,
                &AlarmsQuery {
                    limit: Some(RECENT_ALARM_EVENTS),
                    offset: None,
                },
            )?,
        ))
    })
    .await;
    let (v, faults, equipment, work_orders, tags, plans, alarms) = match loaded {
        Ok(x) => x,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let may_plan = role_of(&user).is_ok_and(|r| r.may_plan_maintenance());
    let body = html! {
        p { a href="/" { "← Fleet" } }
        h1 { (v.name) " " span.muted { "(" (v.id) ")" } }
        p { a href={ "/vessels/" (v.id) "/parts" } { "Spare parts and requisitions →" } }
        h2 #alarms { "Active alarms" }
        p.muted { "As the vessel's alarm history last synced." }
        (active_alarm_table(&alarms.active, &v.id))
        h3 { "Recent alarm history" }
        (history_table(&alarms.history.events, |f| format!("/vessels/{}/faults/{f}", v.id)))
        @if alarms.history.total > u64::from(RECENT_ALARM_EVENTS) {
            p.muted { "The latest " (RECENT_ALARM_EVENTS) " of " (alarms.history.total) " entries." }
        }
        h2 { "Faults" }
        (views::fault_table(&faults, |f| format!("/vessels/{}/faults/{}", v.id, f.id)))
        h2 { "Work orders" }
        @if work_orders.is_empty() {
            p.muted { "No work orders." }
        } @else {
            table {
                thead { tr { th { "Work order" } th { "Status" } th.opt { "Equipment" } th.opt { "Hours" } th.opt { "Signed off by" } th.opt { "Updated" } } }
                tbody {
                    @for w in &work_orders {
                        tr {
                            td { a href={ "/vessels/" (v.id) "/work-orders/" (w.id) } { (w.title) } }
                            td { span class={ "pill st-" (w.status.as_str()) } { (w.status.label()) } }
                            td.opt { @match equipment.iter().find(|e| e.id == w.equipment_id) {
                                Some(e) => { (e.code) " " (e.name) }
                                None => { span.muted { "—" } }
                            } }
                            td.opt { (format!("{:.1}", w.hours_spent)) }
                            td.opt { @for s in &w.sign_offs { (s.author) " " } }
                            td.opt { (keelson_web::layout::when(w.updated_at)) }
                        }
                    }
                }
            }
        }
        h2 { "Maintenance plans" }
        @if plans.is_empty() {
            p.muted { "No plans." }
        } @else {
            table {
                thead { tr { th { "Plan" } th { "State" } th.opt { "Due" } th.opt { "Added by" } } }
                tbody {
                    @for p in &plans {
                        tr {
                            td { (p.plan.title) }
                            td { (p.schedule.state.label()) }
                            td.opt { @if let Some(at) = p.schedule.due_at { (at.format("%Y-%m-%d")) } }
                            td.opt { (p.plan.created_by) }
                        }
                    }
                }
            }
        }
        @if may_plan && !equipment.is_empty() {
            (planning_forms(&v.id, &equipment))
        }
        h2 { "Equipment" }
        @if equipment.is_empty() {
            p.muted { "No equipment recorded." }
        } @else {
            table {
                thead { tr { th { "Code" } th { "Name" } th { "Criticality" } th.opt { "Maker and model" } } }
                tbody {
                    @for e in &equipment {
                        tr {
                            td { (e.code) }
                            td { (e.name) }
                            td { (e.criticality.as_str()) }
                            td.opt { (e.maker) " " (e.model) }
                        }
                    }
                }
            }
        }
        h2 { "Sensor trends" }
        @if tags.is_empty() {
            p.muted { "No sensor rollups received yet." }
        } @else {
            table {
                thead { tr { th { "Tag" } th { "Last hour (UTC)" } th { "Mean" } th.opt { "Min" } th.opt { "Max" } } }
                tbody {
                    @for (tag, r) in &tags {
                        tr {
                            td { a href={ "/vessels/" (v.id) "/tags/" (tag) } { (tag) } }
                            td { (hour_label(r.start_ms)) }
                            td { (num(r.mean)) }
                            td.opt { (num(r.min)) }
                            td.opt { (num(r.max)) }
                        }
                    }
                }
            }
        }
    };
    Html(page(&state.site, &v.name, Some(&user), body).into_string()).into_response()
}

/// History entries the vessel page shows.
const RECENT_ALARM_EVENTS: u32 = 20;

/// A vessel's active alarms (`#active-alarms`), each row
/// `id="vessel-alarm-<tag>-<kind>"` with the classes `alarm` and
/// `state-<state>`.
fn active_alarm_table(list: &[ActiveAlarm], vessel_id: &str) -> Markup {
    let unacked = list.iter().filter(|a| !a.acknowledged).count();
    html! {
        @if list.is_empty() {
            p.muted #no-alarms { "No active alarms." }
        } @else {
            p { strong { (list.len()) " active" } ", " (unacked) " unacknowledged" }
            table #active-alarms {
                thead { tr {
                    th { "Level" } th { "Tag" } th { "Value" } th { "Since" } th { "State" }
                    th.opt { "Acknowledged by" } th.opt { "Fault" }
                } }
                tbody {
                    @for a in list {
                        tr id={ "vessel-alarm-" (a.tag) "-" (a.kind) } class={ "alarm state-" (a.state) } {
                            td { span.pill.level { (kind_label(&a.kind)) } }
                            td.tag { (a.tag) }
                            td.value { (number(a.value, "")) }
                            td.since { (when(a.raised_at)) }
                            td.state { (state_label(&a.state)) }
                            td.opt { (a.acknowledged_by.as_deref().unwrap_or("")) }
                            td.opt { @if let Some(f) = &a.fault_id {
                                a href={ "/vessels/" (vessel_id) "/faults/" (f) } { "Fault" }
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// The ranges the shore's tag page offers, in days.
const TAG_RANGES: &[(&str, i64)] = &[("1d", 1), ("7d", 7), ("30d", 30), ("45d", 45), ("90d", 90)];

#[derive(Deserialize)]
struct TagQuery {
    range: Option<String>,
    width: Option<String>,
}

/// A tag's trend from the vessel's rollups: hourly unless the page asks
/// for the 1-minute ones the vessel may also send.
async fn tag_page(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path((id, tag)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<TagQuery>,
) -> Response {
    let range = q.range.as_deref().unwrap_or("7d");
    let Some(&(range, days)) = TAG_RANGES.iter().find(|(l, _)| *l == range) else {
        return page_error(
            &state.site,
            Some(&user),
            keelson_web::AppError::BadRequest(format!("unknown range `{range}`")),
        );
    };
    let width = match parse_width(q.width.as_deref()) {
        Ok(w) => w,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let to = chrono::Utc::now().timestamp_millis();
    let from = to - days * 24 * 3_600_000;
    let (s, u, vid, t) = (state.clone(), user.clone(), id.clone(), tag.clone());
    let loaded = blocking(move || {
        Ok((
            vessel_of(&s, &u, &vid)?,
            rollups_of(&s, &u, &vid, &t, width, from, to)?,
        ))
    })
    .await;
    let (v, rollups) = match loaded {
        Ok(x) => x,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let series = keelson_store::Series {
        resolution: width,
        points: rollups
            .iter()
            .map(keelson_store::SeriesPoint::from_rollup)
            .collect(),
    };
    let width_param = q
        .width
        .as_deref()
        .map(|w| format!("&width={w}"))
        .unwrap_or_default();
    let body = html! {
        p { a href={ "/vessels/" (v.id) } { "← " (v.name) } }
        h1 { (tag) }
        nav.card aria-label="Range" {
            "Range: "
            @for (label, _) in TAG_RANGES {
                @if *label == range {
                    strong { (label) } " "
                } @else {
                    a href={ "/vessels/" (v.id) "/tags/" (tag) "?range=" (label) (width_param) } { (label) } " "
                }
            }
        }
        div.card {
            (keelson_web::chart::trend(&series, from, to))
            p.muted {
                (series.points.len()) " "
                @if width == keelson_store::Resolution::Minute { "1-minute" } @else { "hourly" }
                " rollups as the vessel sent them (line: mean; band: min to max)."
            }
        }
    };
    Html(page(&state.site, &tag, Some(&user), body).into_string()).into_response()
}

fn hour_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:00").to_string())
        .unwrap_or_default()
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

async fn fault(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path((id, fault_id)): Path<(String, String)>,
) -> Response {
    let (s, u, vid, fid) = (state.clone(), user.clone(), id.clone(), fault_id.clone());
    let loaded = blocking(move || {
        let f = fault_of(&s, &u, &vid, &fid)?;
        let h = history_of(&s, &u, &vid, &fid)?;
        Ok((f, h))
    })
    .await;
    let (f, history) = match loaded {
        Ok(x) => x,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let may_comment = role_of(&user).map(|r| r.may_comment()).unwrap_or(false);
    let action = format!("/vessels/{id}/faults/{fault_id}/comments");
    let body = html! {
        p { a href={ "/vessels/" (id) } { "← Faults of " (id) } }
        h1 { (f.title) }
        (views::fault_details(&f))
        (attachments(&state, &id, &f.attachments))
        (views::comments(&f, may_comment.then_some(action.as_str())))
        @if !may_comment { p.muted { "Commenting needs the superintendent role." } }
        (views::history(&history.changes))
    };
    Html(page(&state.site, &f.title, Some(&user), body).into_string()).into_response()
}

#[derive(Deserialize)]
struct CommentForm {
    text: String,
}

async fn comment(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path((id, fault_id)): Path<(String, String)>,
    Form(form): Form<CommentForm>,
) -> Response {
    let (s, u, vid, fid) = (state.clone(), user.clone(), id.clone(), fault_id.clone());
    match blocking(move || add_shore_comment(&s, &u, &vid, &fid, &form.text)).await {
        Ok(_) => Redirect::to(&format!("/vessels/{id}/faults/{fault_id}")).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

async fn quarantine_page(State(state): State<ShoreState>, PageUser(user): PageUser) -> Response {
    let (s, u) = (state.clone(), user.clone());
    let batches = match blocking(move || quarantined(&s, &u)).await {
        Ok(b) => b,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let body = html! {
        h1 { "Quarantined sync batches" }
        p.muted { "Batches a vessel sent that the shore refused whole. Nothing of them was applied; they are kept here for inspection." }
        @if batches.is_empty() {
            p { "None." }
        } @else {
            table {
                thead { tr { th { "Received" } th { "Vessel" } th { "Why" } th { "Size" } } }
                tbody {
                    @for b in &batches {
                        tr {
                            td { (when_rfc3339(Some(&b.received_at))) }
                            td { a href={ "/vessels/" (b.vessel_id) } { (b.vessel_id) } }
                            td { (b.reason) }
                            td { (human_bytes(b.size)) }
                        }
                    }
                }
            }
        }
    };
    Html(page(&state.site, "Quarantine", Some(&user), body).into_string()).into_response()
}

/// A vessel's spare parts with their stock and its requisitions, as last
/// synced.
async fn parts_page(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let (s, u, vid) = (state.clone(), user.clone(), id.clone());
    let loaded = blocking(move || {
        Ok((
            vessel_of(&s, &u, &vid)?,
            parts_of(&s, &u, &vid)?,
            requisitions_of(&s, &u, &vid)?,
        ))
    })
    .await;
    let (v, parts, requisitions) = match loaded {
        Ok(x) => x,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let may_decide = role_of(&user).is_ok_and(|r| r.may_plan_maintenance());
    let title = format!("{}: spare parts", v.name);
    let body = html! {
        p { a href={ "/vessels/" (v.id) } { "← " (v.name) } }
        h1 { (title) }
        p.muted { "As the vessel last synced them." }
        h2 { "Requisitions" }
        (views::requisition_table(&requisitions, &parts, |_| None))
        @if may_decide {
            @for r in requisitions.iter().filter(|r| r.status != keelson_model::RequisitionStatus::Draft) {
                form.row method="post" action={ "/vessels/" (v.id) "/requisitions/" (r.id) "/decision" } {
                    span { "Requisition of " (keelson_web::layout::when(r.created_at)) ": " }
                    label { "Note" input name="note" maxlength="2000"; }
                    button type="submit" name="approved" value="true" { "Approve" }
                    button.secondary type="submit" name="approved" value="false" { "Turn down" }
                }
            }
        }
        h2 { "Spare parts" }
        (views::part_table(&parts, |_| None))
    };
    Html(page(&state.site, &title, Some(&user), body).into_string()).into_response()
}

/// A record's attachments, linked once their files are ashore.
fn attachments(state: &ShoreState, vessel_id: &str, list: &[keelson_model::Attachment]) -> Markup {
    keelson_web::attachments::attachment_list(
        list,
        |a| {
            crate::files::is_ashore(state, vessel_id, &a.sha256)
                .then(|| format!("/api/v1/vessels/{vessel_id}/attachments/{}", a.sha256))
        },
        None,
    )
}

async fn work_order_page(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path((id, work_order_id)): Path<(String, String)>,
) -> Response {
    let (s, u, vid, wid) = (
        state.clone(),
        user.clone(),
        id.clone(),
        work_order_id.clone(),
    );
    let loaded = blocking(move || {
        let w = work_order_of(&s, &u, &vid, &wid)?;
        let h = history_of(&s, &u, &vid, &wid)?;
        let e = s.db.equipment(&w.equipment_id)?;
        let p = parts_of(&s, &u, &vid)?;
        Ok((w, h, e, p))
    })
    .await;
    let (w, history, equipment, parts) = match loaded {
        Ok(x) => x,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let may_comment = role_of(&user).map(|r| r.may_comment()).unwrap_or(false);
    let action = format!("/vessels/{id}/work-orders/{work_order_id}/comments");
    let body = html! {
        p { a href={ "/vessels/" (id) } { "← Vessel " (id) } }
        h1 { (w.title) }
        (views::work_order_details(&w, html! {
            @match &equipment {
                Some(e) => { (e.code) " " (e.name) }
                None => { span.muted { (w.equipment_id) } }
            }
        }))
        (views::parts_used(&w, &parts, |_| format!("/vessels/{id}/parts")))
        (attachments(&state, &id, &w.attachments))
        (views::comment_thread(&w.comments, may_comment.then_some(action.as_str())))
        @if !may_comment { p.muted { "Commenting needs the superintendent role." } }
        (views::history(&history.changes))
    };
    Html(page(&state.site, &w.title, Some(&user), body).into_string()).into_response()
}

async fn work_order_comment(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path((id, work_order_id)): Path<(String, String)>,
    Form(form): Form<CommentForm>,
) -> Response {
    let (s, u, vid, wid) = (
        state.clone(),
        user.clone(),
        id.clone(),
        work_order_id.clone(),
    );
    match blocking(move || add_shore_work_order_comment(&s, &u, &vid, &wid, &form.text)).await {
        Ok(_) => {
            Redirect::to(&format!("/vessels/{id}/work-orders/{work_order_id}")).into_response()
        }
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

/// The superintendent's forms on a vessel's page: open a work order, add a
/// plan by the calendar. Both reach the vessel on its next sync. Plans by
/// running hours name one of the vessel's counters and go through the API.
fn planning_forms(vessel_id: &str, equipment: &[keelson_model::Equipment]) -> Markup {
    let pick = html! {
        label { "Equipment"
            select name="equipment_id" required {
                @for e in equipment { option value=(e.id) { (e.code) " " (e.name) } }
            }
        }
    };
    html! {
        h2 { "Plan work for the vessel" }
        details {
            summary { "Open a work order" }
            form.stack method="post" action={ "/vessels/" (vessel_id) "/work-orders" } {
                label { "What is to be done" input name="title" required maxlength="200"; }
                (pick)
                label { "Assignee on board (user name)" input name="assignee" maxlength="64"; }
                label { "Description" textarea name="description" maxlength="10000" {} }
                div { button type="submit" { "Open work order" } }
            }
        }
        details {
            summary { "Add a plan by the calendar" }
            form.stack method="post" action={ "/vessels/" (vessel_id) "/plans" } {
                label { "What is to be done" input name="title" required maxlength="200"; }
                (pick)
                label { "Instructions" textarea name="instructions" maxlength="10000" {} }
                label { "Every (days)" input name="interval_days" required inputmode="numeric"; }
                label { "Tolerance (days either side)" input name="tolerance_days" inputmode="numeric" value="0"; }
                div { button type="submit" { "Add plan" } }
            }
        }
    }
}

#[derive(Deserialize)]
struct PlanForm {
    title: String,
    equipment_id: String,
    #[serde(default)]
    instructions: String,
    interval_days: String,
    #[serde(default)]
    tolerance_days: String,
}

async fn new_plan(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<PlanForm>,
) -> Response {
    let (s, u, vid) = (state.clone(), user.clone(), id.clone());
    let made = blocking(move || {
        let new = keelson_model::NewPlan {
            equipment_id: form.equipment_id,
            title: form.title,
            instructions: form.instructions,
            interval_days: Some(form::required(
                "interval_days",
                &form.interval_days,
                form::DAYS,
            )?),
            interval_hours: None,
            counter_id: None,
            tolerance_days: form::optional("tolerance_days", &form.tolerance_days, form::DAYS)?
                .unwrap_or(0),
            tolerance_hours: 0.0,
            last_done_at: None,
            last_done_hours: None,
        };
        add_vessel_plan(&s, &u, &vid, new)
    })
    .await;
    match made {
        Ok(_) => Redirect::to(&format!("/vessels/{id}")).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

async fn new_work_order(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(new): Form<keelson_model::NewWorkOrder>,
) -> Response {
    let (s, u, vid) = (state.clone(), user.clone(), id.clone());
    match blocking(move || add_vessel_work_order(&s, &u, &vid, new)).await {
        Ok(w) => Redirect::to(&format!("/vessels/{id}/work-orders/{}", w.id)).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

async fn decide(
    State(state): State<ShoreState>,
    PageUser(user): PageUser,
    Path((id, requisition_id)): Path<(String, String)>,
    Form(decision): Form<keelson_model::NewDecision>,
) -> Response {
    let (s, u, vid) = (state.clone(), user.clone(), id.clone());
    match blocking(move || decide_on_requisition(&s, &u, &vid, &requisition_id, decision)).await {
        Ok(_) => Redirect::to(&format!("/vessels/{id}/parts")).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}
