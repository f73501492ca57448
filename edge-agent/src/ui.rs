//! The ship LAN pages: dashboard with live values, faults, a fault with its
//! comments and history, the new-fault form and the sync page. Every page works without
//! JavaScript; the dashboard's script only refreshes the numbers.

use crate::api::{change_fault, comment, request_sync};
use crate::{EdgeState, role_of, sync_client};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keelson_model::{FaultPatch, NewFault, Role, Severity, Status, WorkStatus};
use keelson_store::{FaultFilter, WorkOrderFilter};
use keelson_web::layout::{human_bytes, human_duration, page, when_rfc3339};
use keelson_web::session::page_error;
use keelson_web::{AppError, PageUser, blocking, views};
use maud::{Markup, html};
use serde::Deserialize;

/// The page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/", get(dashboard))
        // Posting a new fault is an upload (it may carry a photo); its route
        // is in `attachments`, behind that module's body limit.
        .route("/faults", get(faults))
        .route("/faults/new", get(new_form))
        .route("/faults/{id}", get(fault))
        .route("/faults/{id}/comments", post(add_comment))
        .route("/faults/{id}/status", post(set_status))
        .route("/faults/{id}/findings", post(set_findings))
        .route("/sync", get(sync_page))
        .route("/sync/now", post(sync_now))
}

fn render(
    state: &EdgeState,
    user: &keelson_web::CurrentUser,
    title: &str,
    body: Markup,
) -> Response {
    Html(page(&state.site, title, Some(user), body).into_string()).into_response()
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

async fn dashboard(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    let s = state.clone();
    let loaded = blocking(move || {
        let counts = s.db.open_fault_counts(None)?;
        let recent = s.db.list_faults(&FaultFilter {
            limit: 5,
            ..FaultFilter::default()
        })?;
        // Each count is a page of one whose total is the count.
        let mut work = Vec::new();
        for status in [WorkStatus::Open, WorkStatus::InProgress, WorkStatus::Done] {
            let (_, n) = s.db.list_work_orders(&WorkOrderFilter {
                status: Some(status.as_str().to_owned()),
                limit: 1,
                ..WorkOrderFilter::default()
            })?;
            work.push((status, n));
        }
        let plans = keelson_records::scheduled_plans(&s.db, None, chrono::Utc::now())?;
        let due = plans
            .iter()
            .filter(|p| p.schedule.state == keelson_model::PlanState::Due)
            .count();
        let overdue = plans
            .iter()
            .filter(|p| p.schedule.state == keelson_model::PlanState::Overdue)
            .count();
        Ok((
            counts,
            recent,
            work,
            (due, overdue),
            sync_client::status(&s)?,
        ))
    })
    .await;
    let (counts, recent, work, (due, overdue), sync) = match loaded {
        Ok(x) => x,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let alarms = match crate::alarms::list_views(&state).await {
        Ok(list) => list,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let tags = state.latest.snapshot();
    let may_manage_users = role_of(&user).is_ok_and(Role::may_manage_users);
    let body = html! {
        h1 { (state.config.vessel.name) }
        @if may_manage_users { p { a href="/users" { "Manage users" } } }
        h2 { "Active alarms" }
        (crate::alarms_ui::active_alarms_card(&alarms))
        h2 { "Live readings" }
        @if tags.is_empty() {
            p.muted { "No sensors configured. Add Modbus devices, MQTT brokers or OPC-UA servers ([[ingest.modbus]], [[ingest.mqtt]], [[ingest.opcua]]) to the configuration." }
        }
        div.grid {
            @for t in &tags {
                div class={ "tag " (t.quality.as_str()) } data-tag=(t.name) {
                    div.name { a href={ "/tags/" (t.name) } { (t.name) } }
                    div {
                        span.value {
                            @if let Some(text) = &t.text { (text) } @else { (fmt_value(t.value)) }
                        }
                        span.unit { (t.unit) }
                    }
                    div.muted { small.quality { (t.quality.as_str()) } }
                }
            }
        }
        h2 { "Open faults" }
        div.card {
            @if counts.is_empty() { "No open faults." }
            @for (sev, n) in &counts {
                span class={ "pill sev-" (sev) } { (n) " " (sev) } " "
            }
            " " a href="/faults/new" { "Log a fault" }
        }
        h2 { "Work orders" }
        div.card {
            @for (status, n) in &work {
                a href={ "/work-orders?status=" (status.as_str()) } {
                    (n) " " @if *status == WorkStatus::Done { "waiting for sign-off" } @else { (status.label().to_lowercase()) }
                }
                " · "
            }
            a href="/equipment" { "Equipment" }
        }
        h2 { "Planned maintenance" }
        div.card {
            a href="/plans?state=overdue" { (overdue) " overdue" }
            " · "
            a href="/plans?state=due" { (due) " due" }
            " · "
            a href="/due" { "Due list" }
        }
        h2 { "Recently changed faults" }
        (views::fault_table(&recent, |f| format!("/faults/{}", f.id)))
        h2 { "Shore sync" }
        div.card {
            (sync_summary(&sync))
            " " a href="/sync" { "Details" }
        }
        (crate::trend::storage_card(state.storage.last().as_ref()))
        script src="/assets/live.js" defer {}
    };
    render(&state, &user, "Dashboard", body)
}

fn sync_summary(s: &sync_client::SyncStatus) -> Markup {
    html! {
        @if !s.enabled {
            "Sync is off."
        } @else {
            (s.records.pending_changes) @if s.records.pending_changes == 1 { " change" } @else { " changes" } " waiting to go ashore. "
            "Last successful sync: " (when_rfc3339(s.last_success.as_deref())) "."
            @if let Some(e) = &s.last_error { br; span.muted { "Last attempt failed: " (e) } }
        }
    }
}

/// Faults on one page of the list: enough for a tablet screen or two, and
/// a page stays a few tens of kilobytes however many faults a vessel has.
const FAULTS_PER_PAGE: u32 = 50;

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    q: Option<String>,
    page: Option<u32>,
}

/// Reads an optional filter from a form field, where "" means any.
pub(crate) fn choice<T: std::str::FromStr>(value: Option<&str>) -> Result<Option<T>, T::Err> {
    value
        .filter(|s| !s.is_empty())
        .map(str::parse::<T>)
        .transpose()
}

async fn faults(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let status = match choice::<Status>(q.status.as_deref()) {
        Ok(s) => s,
        Err(e) => return page_error(&state.site, Some(&user), e.into()),
    };
    let severity = match choice::<Severity>(q.severity.as_deref()) {
        Ok(s) => s,
        Err(e) => return page_error(&state.site, Some(&user), e.into()),
    };
    let search = q.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let page_no = q.page.unwrap_or(1).max(1);
    let s = state.clone();
    let filter = FaultFilter {
        vessel_id: Some(state.config.vessel.id.clone()),
        status: status.map(|s| s.as_str().to_owned()),
        severity: severity.map(|s| s.as_str().to_owned()),
        search: Some(search.clone()),
        limit: FAULTS_PER_PAGE,
        offset: (page_no - 1).saturating_mul(FAULTS_PER_PAGE),
    };
    let found = blocking(move || Ok((s.db.list_faults(&filter)?, s.db.count_faults(&filter)?)));
    let (list, total) = match found.await {
        Ok(l) => l,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let link = |n: u32| {
        list_link(
            "/faults",
            &[
                ("status", status.map_or("", Status::as_str)),
                ("severity", severity.map_or("", Severity::as_str)),
                ("q", &search),
            ],
            n,
        )
    };
    let body = html! {
        h1 { "Faults" }
        form.row method="get" action="/faults" role="search" {
            label { "Search"
                input type="search" name="q" value=(search) placeholder="Title, equipment, reporter";
            }
            label { "Status"
                select name="status" {
                    option value="" { "All" }
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.label()) }
                    }
                }
            }
            label { "Severity"
                select name="severity" {
                    option value="" { "All" }
                    @for s in Severity::ALL {
                        option value=(s.as_str()) selected[severity == Some(s)] { (s.as_str()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
            a.button href="/faults/new" { "Log a fault" }
        }
        p {}
        (views::fault_table(&list, |f| format!("/faults/{}", f.id)))
        (views::pager(page_no, total, FAULTS_PER_PAGE, link))
    };
    render(&state, &user, "Faults", body)
}

/// A query string of the non-empty pairs, form-encoded.
/// The link to page `n` of the list at `path` with the filters in `pairs`
/// (empty ones left out), for the pager.
pub(crate) fn list_link(path: &str, pairs: &[(&str, &str)], n: u32) -> String {
    let n = n.to_string();
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .chain([("page", n.as_str())])
        .filter(|(_, v)| !v.is_empty())
        .collect();
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(kept).unwrap_or_default()
    )
}

/// The new-fault form, with an error and the values entered when a post
/// was refused. A photo may go with it: on a phone, `accept="image/*"`
/// offers the camera.
pub(crate) fn fault_form(error: Option<&str>, values: Option<&NewFault>) -> Markup {
    html! {
        h1 { "Log a fault" }
        @if let Some(e) = error { p.flash.error role="alert" { (e) } }
        form.stack method="post" action="/faults" enctype="multipart/form-data" {
            label { "What is wrong"
                input name="title" required maxlength="200" value=[values.map(|v| v.title.as_str())]; }
            label { "Equipment"
                input name="equipment" maxlength="200" placeholder="e.g. Main engine, cyl. 3 fuel pump" value=[values.map(|v| v.equipment.as_str())]; }
            label { "Severity"
                select name="severity" {
                    @for s in Severity::ALL {
                        option value=(s.as_str()) selected[values.map(|v| v.severity) == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "Description"
                textarea name="description" maxlength="10000" { (values.map(|v| v.description.as_str()).unwrap_or("")) } }
            label { "Photo (optional)"
                input type="file" name="file" accept="image/*"; }
            label { "Caption of the photo" input name="caption" maxlength="500"; }
            div { button type="submit" { "Log fault" } }
        }
    }
}

async fn new_form(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    render(&state, &user, "Log a fault", fault_form(None, None))
}

async fn fault(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let s = state.clone();
    let f = match blocking(move || {
        s.db.fault(&id)?
            .ok_or_else(|| AppError::NotFound("no such fault".into()))
    })
    .await
    {
        Ok(f) => f,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let history = match crate::maintenance_api::record_history(&state, f.id.clone()).await {
        Ok((_, h)) => h,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let role = role_of(&user).ok();
    let may_work = role.is_some_and(|r| r.may_work_faults());
    let may_close = role.is_some_and(|r| r.may_close_faults());
    let next: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|s| {
            *s != f.status && f.status.may_become(*s) && (may_close || *s != Status::Closed)
        })
        .collect();
    let comments_action = format!("/faults/{}/comments", f.id);
    let body = html! {
        p { a href="/faults" { "← Faults" } }
        h1 { (f.title) }
        (views::fault_details(&f))
        @if may_work && !next.is_empty() {
            form.row method="post" action={ "/faults/" (f.id) "/status" } {
                label { "Change status"
                    select name="status" {
                        @for s in &next { option value=(s.as_str()) { (s.label()) } }
                    }
                }
                button type="submit" { "Save status" }
            }
        }
        @if may_work {
            form method="post" action={ "/faults/" (f.id) "/findings" } {
                h2 { "Cause and corrective action" }
                label { "Cause"
                    textarea name="cause" maxlength="5000" placeholder="Why it happened" { (f.cause) } }
                label { "Corrective action"
                    textarea name="corrective_action" maxlength="5000" placeholder="What was done to put it right" { (f.corrective_action) } }
                div.row {
                    button type="submit" { "Save" }
                    @if f.status != Status::Resolved && f.status.may_become(Status::Resolved) {
                        button type="submit" name="resolve" value="1" { "Save and mark resolved" }
                    }
                }
            }
        }
        (keelson_web::attachments::attachment_list(
            &f.attachments,
            |a| Some(format!("/api/v1/attachments/{}", a.sha256)),
            Some((&format!("/faults/{}/attachments", f.id), state.config.attachments.max_bytes)),
        ))
        (views::comments(&f, Some(&comments_action)))
        (views::history(&history))
    };
    render(&state, &user, &f.title, body)
}

#[derive(Deserialize)]
struct CommentForm {
    text: String,
}

async fn add_comment(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    match comment(&state, &user, id.clone(), form.text).await {
        Ok(_) => Redirect::to(&format!("/faults/{id}")).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

#[derive(Deserialize)]
struct StatusForm {
    status: Status,
}

async fn set_status(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let patch = FaultPatch {
        status: Some(form.status),
        ..FaultPatch::default()
    };
    match change_fault(&state, &user, id.clone(), patch).await {
        Ok(_) => Redirect::to(&format!("/faults/{id}")).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

#[derive(Deserialize)]
struct FindingsForm {
    cause: String,
    corrective_action: String,
    resolve: Option<String>,
}

async fn set_findings(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<FindingsForm>,
) -> Response {
    let patch = FaultPatch {
        cause: Some(form.cause),
        corrective_action: Some(form.corrective_action),
        status: form.resolve.map(|_| Status::Resolved),
        ..FaultPatch::default()
    };
    match change_fault(&state, &user, id.clone(), patch).await {
        Ok(_) => Redirect::to(&format!("/faults/{id}")).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

async fn sync_page(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    let s = state.clone();
    let st = match blocking(move || Ok(sync_client::status(&s)?)).await {
        Ok(st) => st,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let may_sync = role_of(&user).is_ok_and(|r| r.may_work_faults()) && st.enabled;
    let body = html! {
        h1 { "Shore sync" }
        div.card {
            dl.facts {
                dt { "Shore" } dd { (st.shore_url) @if !st.enabled { " (sync off)" } }
                dt { "State" } dd { @if st.running { "syncing now" } @else { "idle" } }
                dt { "Last attempt" } dd { (when_rfc3339(st.last_attempt.as_deref())) }
                dt { "Last success" } dd { (when_rfc3339(st.last_success.as_deref())) }
                @if let Some(e) = &st.last_error { dt { "Last error" } dd { (e) } }
                dt { "Records waiting" } dd {
                    (st.records.pending_changes) @if st.records.pending_changes == 1 { " change, " } @else { " changes, " } (human_bytes(st.records.pending_bytes)) " before compression"
                    @if let Some(eta) = st.eta_secs.filter(|_| st.records.pending_bytes > 0) {
                        " (about " (human_duration(eta)) " at the measured rate)"
                    }
                }
                dt { "Alarm history waiting" } dd #alarms-waiting {
                    (st.alarms.pending_events) @if st.alarms.pending_events == 1 { " entry, " } @else { " entries, " } (human_bytes(st.alarms.pending_bytes)) " before compression"
                }
                dt { "Files waiting" } dd {
                    (st.files.pending_files) @if st.files.pending_files == 1 { " file, " } @else { " files, " } (human_bytes(st.files.pending_bytes)) " not yet ashore"
                }
                dt { "Link used today" } dd {
                    (human_bytes(st.today_bytes))
                    @if st.daily_budget_bytes > 0 { " of " (human_bytes(st.daily_budget_bytes)) " a day" }
                }
                @if let (Some(rtt), Some(rate)) = (st.rtt_ms, st.rate_bytes_per_sec) {
                    dt { "Link measured" } dd { (rtt) " ms round trip, " (human_bytes(rate)) "/s" }
                }
                dt { "Acknowledged by shore" } dd {
                    "up to change " (st.records.sent_acked) ", alarm history up to entry " (st.alarms.sent_acked)
                }
                dt { "Received from shore" } dd { "up to change " (st.records.received) }
            }
        }
        @if may_sync {
            form method="post" action="/sync/now" { button type="submit" { "Sync now" } }
        }
    };
    render(&state, &user, "Sync", body)
}

async fn sync_now(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    match request_sync(&state, &user) {
        Ok(()) => Redirect::to("/sync").into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}
