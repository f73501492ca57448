//! The ship LAN pages for equipment and work orders: the equipment tree,
//! an equipment page with its linked tags and work-order history, the
//! work-order list with a status filter and paging, and a work order with
//! its forms (edit, record work, sign off, comment). Every form is a plain
//! HTML form posting to a page route, so all of it works without
//! JavaScript; errors come back as a page that says what is wrong.

use crate::maintenance_api::{
    WorkOrderQuery, add_equipment, comment_work_order, edit_equipment, edit_work_order,
    open_work_order, record_history, record_work, sign_off, work_order_page,
};
use crate::{EdgeState, role_of};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keelson_model::equipment::validate_tags;
use keelson_model::{
    Criticality, Equipment, EquipmentPatch, Level, NewEquipment, NewSignOff, NewWorkEntry,
    NewWorkOrder, PartUse, Role, WorkOrder, WorkOrderPatch, WorkStatus,
};
use keelson_store::WorkOrderFilter;
use keelson_web::layout::{page, when};
use keelson_web::session::page_error;
use keelson_web::views::{history as history_section, work_status};
use keelson_web::{AppError, CurrentUser, PageUser, blocking, views};
use maud::{Markup, html};
use serde::Deserialize;

/// The page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/equipment", get(tree).post(create_equipment))
        .route(
            "/equipment/{id}",
            get(equipment_page).post(update_equipment),
        )
        .route("/work-orders", get(work_orders).post(create_work_order))
        .route("/work-orders/new", get(new_work_order_form))
        .route("/work-orders/{id}", get(work_order_page_view))
        .route("/work-orders/{id}/edit", post(update_work_order))
        .route("/work-orders/{id}/entries", post(add_entry))
        .route("/work-orders/{id}/sign-off", post(add_sign_off))
        .route("/work-orders/{id}/comments", post(add_comment))
}

/// A page in the ship's shell.
pub(crate) fn render(state: &EdgeState, user: &CurrentUser, title: &str, body: Markup) -> Response {
    Html(page(&state.site, title, Some(user), body).into_string()).into_response()
}

/// The page that says what went wrong.
pub(crate) fn fail(state: &EdgeState, user: &CurrentUser, e: AppError) -> Response {
    page_error(&state.site, Some(user), e)
}

fn role(user: &CurrentUser) -> Option<Role> {
    role_of(user).ok()
}

/// A criticality as a coloured label.
fn criticality(c: Criticality) -> Markup {
    html! { span class={ "pill crit-" (c.as_str()) } { (c.as_str()) } }
}

/// Nested lists of the tree under `parent` (`None`: the vessel).
fn subtree(list: &[Equipment], parent: Option<&str>) -> Markup {
    let children: Vec<&Equipment> = list
        .iter()
        .filter(|e| e.parent_code.as_deref() == parent)
        .collect();
    html! {
        @if !children.is_empty() {
            ul {
                @for e in children {
                    li {
                        span.code { (e.code) } " "
                        a href={ "/equipment/" (e.id) } { (e.name) }
                        @if e.criticality != Criticality::Normal { " " (criticality(e.criticality)) }
                        @if e.level == Level::Component { " " span.muted { "component" } }
                        (subtree(list, Some(&e.code)))
                    }
                }
            }
        }
    }
}

/// Equipment whose parent is missing (two sites may add a child and
/// remove nothing, but a merge can still deliver a child before its
/// parent) shows at the top level, so nothing is ever hidden.
fn without_orphans(list: Vec<Equipment>) -> Vec<Equipment> {
    let codes: std::collections::HashSet<String> = list.iter().map(|e| e.code.clone()).collect();
    list.into_iter()
        .map(|mut e| {
            if e.parent_code.as_ref().is_some_and(|p| !codes.contains(p)) {
                e.parent_code = None;
            }
            e
        })
        .collect()
}

/// The add-equipment form (chief engineer and above).
fn equipment_form(values: Option<&EquipmentForm>, error: Option<&str>) -> Markup {
    let v = |f: fn(&EquipmentForm) -> &str| values.map(f).unwrap_or("");
    html! {
        h2 #add { "Add equipment" }
        @if let Some(e) = error { p.flash.error role="alert" { (e) } }
        form.stack method="post" action="/equipment" {
            label { "Code (e.g. 6, 6.1, 6.1.3)"
                input name="code" required maxlength="15" pattern="[1-9][0-9]{0,2}(\\.[1-9][0-9]{0,2}){0,3}" value=(v(|f| &f.code)); }
            label { "Name" input name="name" required maxlength="200" value=(v(|f| &f.name)); }
            label { "Level"
                select name="level" {
                    @for l in Level::ALL { option value=(l.as_str()) selected[values.is_some_and(|f| f.level == l)] { (l.as_str()) } }
                }
            }
            (equipment_fields(values.map(|f| (f.criticality, f.maker.as_str(), f.model.as_str(), f.serial.as_str(), f.tags.as_str()))))
            div { button type="submit" { "Add equipment" } }
        }
    }
}

/// The fields the add and edit forms share.
fn equipment_fields(v: Option<(Criticality, &str, &str, &str, &str)>) -> Markup {
    html! {
        label { "Criticality (ISM 10.3)"
            select name="criticality" {
                @for c in Criticality::ALL { option value=(c.as_str()) selected[v.is_some_and(|v| v.0 == c)] { (c.as_str()) } }
            }
        }
        label { "Maker" input name="maker" maxlength="200" value=(v.map_or("", |v| v.1)); }
        label { "Model" input name="model" maxlength="200" value=(v.map_or("", |v| v.2)); }
        label { "Serial number" input name="serial" maxlength="200" value=(v.map_or("", |v| v.3)); }
        label { "Linked tags (names separated by commas)" input name="tags" value=(v.map_or("", |v| v.4)); }
    }
}

async fn tree(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    tree_page(&state, &user, None, None).await
}

async fn tree_page(
    state: &EdgeState,
    user: &CurrentUser,
    values: Option<&EquipmentForm>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let db = state.db.clone();
    let list = match blocking(move || Ok(db.list_equipment(None)?)).await {
        Ok(l) => without_orphans(l),
        Err(e) => return fail(state, user, e),
    };
    let may_manage = role(user).is_some_and(|r| r.may_manage_equipment());
    let body = html! {
        h1 { "Equipment" }
        p.muted { (state.config.vessel.name) " and its systems and components, by code." }
        @if list.is_empty() {
            p.muted { "No equipment recorded yet." }
        } @else {
            nav.card.tree aria-label="Equipment tree" {
                ul.tree { li { strong { (state.config.vessel.name) } (subtree(&list, None)) } }
            }
        }
        @if may_manage {
            (equipment_form(values, error.as_ref().map(|(_, m)| m.as_str())))
        }
    };
    let mut resp = render(state, user, "Equipment", body);
    if let Some((status, _)) = error {
        *resp.status_mut() = status;
    }
    resp
}

/// The add-equipment form as posted.
#[derive(Debug, Deserialize)]
struct EquipmentForm {
    code: String,
    name: String,
    level: Level,
    criticality: Criticality,
    #[serde(default)]
    maker: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    tags: String,
}

fn split_tags(tags: &str) -> Vec<String> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn create_equipment(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Form(form): Form<EquipmentForm>,
) -> Response {
    let new = NewEquipment {
        code: form.code.clone(),
        name: form.name.clone(),
        level: form.level,
        criticality: form.criticality,
        maker: form.maker.clone(),
        model: form.model.clone(),
        serial: form.serial.clone(),
        tags: split_tags(&form.tags),
    };
    match add_equipment(&state, &user, new).await {
        Ok(e) => Redirect::to(&format!("/equipment/{}", e.id)).into_response(),
        Err(e @ (AppError::BadRequest(_) | AppError::Conflict(_))) => {
            let status = e.status();
            tree_page(
                &state,
                &user,
                Some(&form),
                Some((status, e.public_detail())),
            )
            .await
        }
        Err(e) => fail(&state, &user, e),
    }
}

async fn equipment_page(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let db = state.db.clone();
    let eid = id.clone();
    let loaded = blocking(move || {
        let e = db
            .equipment(&eid)?
            .ok_or_else(|| AppError::NotFound("no such equipment".into()))?;
        let (orders, _) = db.list_work_orders(&WorkOrderFilter {
            equipment_id: Some(eid.clone()),
            limit: 200,
            ..WorkOrderFilter::default()
        })?;
        let parent = match &e.parent_code {
            Some(p) => db
                .list_equipment(Some(&e.vessel_id))?
                .into_iter()
                .find(|o| &o.code == p),
            None => None,
        };
        let counters = db.list_counters(None, Some(&eid))?;
        Ok((e, orders, parent, counters))
    })
    .await;
    let (e, orders, parent, counters) = match loaded {
        Ok(x) => x,
        Err(err) => return fail(&state, &user, err),
    };
    let history = match record_history(&state, id).await {
        Ok((_, h)) => h,
        Err(err) => return fail(&state, &user, err),
    };
    let plans = crate::plans_api::PlanQuery {
        equipment_id: Some(e.id.clone()),
        limit: Some(500),
        ..Default::default()
    };
    let plans = match crate::plans_api::plan_page(&state, plans).await {
        Ok(p) => p.items,
        Err(err) => return fail(&state, &user, err),
    };
    let spares = crate::parts_api::PartQuery {
        equipment_id: Some(e.id.clone()),
        ..Default::default()
    };
    let spares = match crate::parts_api::part_page(&state, spares).await {
        Ok(p) => p.items,
        Err(err) => return fail(&state, &user, err),
    };
    let live = state.latest.snapshot();
    let r = role(&user);
    let body = html! {
        p { a href="/equipment" { "← Equipment" } }
        h1 { (e.code) " " (e.name) }
        div.card {
            dl.facts {
                dt { "Level" } dd { (e.level.as_str()) }
                dt { "Part of" } dd {
                    @match (&parent, &e.parent_code) {
                        (Some(p), _) => { a href={ "/equipment/" (p.id) } { (p.code) " " (p.name) } }
                        (None, Some(code)) => { (code) }
                        (None, None) => { (state.config.vessel.name) }
                    }
                }
                dt { "Criticality" } dd { (criticality(e.criticality)) }
                dt { "Maker" } dd { (dash(&e.maker)) }
                dt { "Model" } dd { (dash(&e.model)) }
                dt { "Serial number" } dd { (dash(&e.serial)) }
                dt { "Last change" } dd { (when(e.updated_at)) }
            }
        }
        h2 { "Linked tags" }
        @if e.tags.is_empty() {
            p.muted { "No tags linked." }
        } @else {
            table {
                thead { tr { th { "Tag" } th { "Value" } th.opt { "Quality" } } }
                tbody {
                    @for t in &e.tags {
                        @let v = live.iter().find(|v| &v.name == t);
                        tr {
                            td { a href={ "/tags/" (t) } { (t) } }
                            td { @match v.and_then(|v| v.value.map(|x| (x, &v.unit))) {
                                Some((x, unit)) => { (format!("{x:.2}")) " " (unit) }
                                None => { span.muted { "no value" } }
                            } }
                            td.opt { @if let Some(v) = v { (v.quality.as_str()) } }
                        }
                    }
                }
            }
        }
        (crate::plans_ui::counters_section(&e.id, &counters, r))
        (crate::plans_ui::plans_section(&e.id, &plans, &counters, r))
        h2 { "Work orders" }
        @if r.is_some_and(|r| r.may_work_orders()) {
            p { a.button href={ "/work-orders/new?equipment_id=" (e.id) } { "Open a work order" } }
        }
        (work_order_table(&orders))
        h2 { "Spare parts" }
        (views::part_table(&spares, |p| Some(format!("/parts/{}", p.id))))
        @if r.is_some_and(|r| r.may_manage_equipment()) {
            h2 { "Edit" }
            form.stack method="post" action={ "/equipment/" (e.id) } {
                label { "Name" input name="name" required maxlength="200" value=(e.name); }
                label { "Level"
                    select name="level" {
                        @for l in Level::ALL { option value=(l.as_str()) selected[e.level == l] { (l.as_str()) } }
                    }
                }
                (equipment_fields(Some((e.criticality, &e.maker, &e.model, &e.serial, &e.tags.join(", ")))))
                div { button type="submit" { "Save" } }
            }
        }
        (history_section(&history))
    };
    render(&state, &user, &e.name, body)
}

fn dash(s: &str) -> Markup {
    html! { @if s.is_empty() { span.muted { "—" } } @else { (s) } }
}

/// The edit form as posted.
#[derive(Debug, Deserialize)]
struct EquipmentEditForm {
    name: String,
    level: Level,
    criticality: Criticality,
    #[serde(default)]
    maker: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    tags: String,
}

async fn update_equipment(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<EquipmentEditForm>,
) -> Response {
    let tags = match validate_tags(&split_tags(&form.tags)) {
        Ok(t) => t,
        Err(e) => return fail(&state, &user, e.into()),
    };
    let patch = EquipmentPatch {
        name: Some(form.name),
        level: Some(form.level),
        criticality: Some(form.criticality),
        maker: Some(form.maker),
        model: Some(form.model),
        serial: Some(form.serial),
        tags: Some(tags),
    };
    match edit_equipment(&state, &user, id.clone(), patch).await {
        Ok(_) => Redirect::to(&format!("/equipment/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

/// A table of work orders.
fn work_order_table(list: &[WorkOrder]) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "No work orders." }
        } @else {
            table {
                thead { tr { th { "Work order" } th { "Status" } th.opt { "Assignee" } th.opt { "Hours" } th.opt { "Updated" } } }
                tbody {
                    @for w in list {
                        tr {
                            td { a href={ "/work-orders/" (w.id) } { (w.title) } }
                            td { (work_status(w.status)) }
                            td.opt { (dash(&w.assignee)) }
                            td.opt { (format!("{:.1}", w.hours_spent)) }
                            td.opt { (when(w.updated_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// Query of the work-order list page.
#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    page: Option<u32>,
}

const PAGE_SIZE: u32 = 25;

async fn work_orders(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let status = match q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<WorkStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return fail(&state, &user, e.into()),
    };
    let search = q.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let page_no = q.page.unwrap_or(1).max(1);
    let query = WorkOrderQuery {
        q: Some(search.clone()),
        status,
        equipment_id: None,
        limit: Some(PAGE_SIZE),
        offset: Some((page_no - 1).saturating_mul(PAGE_SIZE)),
    };
    let page_data = match work_order_page(&state, query).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let link = |n: u32| {
        crate::ui::list_link(
            "/work-orders",
            &[
                ("status", status.map_or("", WorkStatus::as_str)),
                ("q", &search),
            ],
            n,
        )
    };
    let body = html! {
        h1 { "Work orders" }
        form.row method="get" action="/work-orders" role="search" {
            label { "Search"
                input type="search" name="q" value=(search) placeholder="Title, assignee";
            }
            label { "Status"
                select name="status" {
                    option value="" { "All" }
                    @for s in WorkStatus::ALL {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.label()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
            @if role(&user).is_some_and(|r| r.may_work_orders()) {
                a.button href="/work-orders/new" { "Open a work order" }
            }
        }
        p {}
        (work_order_table(&page_data.items))
        (views::pager(page_no, page_data.total, PAGE_SIZE, link))
    };
    render(&state, &user, "Work orders", body)
}

#[derive(Debug, Deserialize)]
struct NewQuery {
    equipment_id: Option<String>,
}

async fn new_work_order_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(q): Query<NewQuery>,
) -> Response {
    work_order_form(&state, &user, q.equipment_id.as_deref(), None, None).await
}

async fn work_order_form(
    state: &EdgeState,
    user: &CurrentUser,
    equipment_id: Option<&str>,
    values: Option<&NewWorkOrder>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let db = state.db.clone();
    let equipment = match blocking(move || Ok(db.list_equipment(None)?)).await {
        Ok(l) => l,
        Err(e) => return fail(state, user, e),
    };
    let selected = values.map(|v| v.equipment_id.as_str()).or(equipment_id);
    let body = html! {
        h1 { "Open a work order" }
        @if let Some((_, e)) = &error { p.flash.error role="alert" { (e) } }
        @if equipment.is_empty() {
            p.muted { "Add equipment first: a work order is always about a piece of equipment." }
        } @else {
            form.stack method="post" action="/work-orders" {
                label { "What is to be done"
                    input name="title" required maxlength="200" value=[values.map(|v| v.title.as_str())]; }
                label { "Equipment"
                    select name="equipment_id" required {
                        @for e in &equipment {
                            option value=(e.id) selected[selected == Some(e.id.as_str())] { (e.code) " " (e.name) }
                        }
                    }
                }
                label { "Assignee (user name)"
                    input name="assignee" maxlength="64" value=[values.map(|v| v.assignee.as_str())]; }
                label { "Description"
                    textarea name="description" maxlength="10000" { (values.map_or("", |v| v.description.as_str())) } }
                div { button type="submit" { "Open work order" } }
            }
        }
    };
    let mut resp = render(state, user, "Open a work order", body);
    if let Some((status, _)) = error {
        *resp.status_mut() = status;
    }
    resp
}

async fn create_work_order(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Form(new): Form<NewWorkOrder>,
) -> Response {
    match open_work_order(&state, &user, new.clone()).await {
        Ok(w) => Redirect::to(&format!("/work-orders/{}", w.id)).into_response(),
        Err(e @ (AppError::BadRequest(_) | AppError::Conflict(_))) => {
            let status = e.status();
            work_order_form(
                &state,
                &user,
                None,
                Some(&new),
                Some((status, e.public_detail())),
            )
            .await
        }
        Err(e) => fail(&state, &user, e),
    }
}

async fn work_order_page_view(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let db = state.db.clone();
    let wid = id.clone();
    let loaded = blocking(move || {
        let w = db
            .work_order(&wid)?
            .ok_or_else(|| AppError::NotFound("no such work order".into()))?;
        let e = db.equipment(&w.equipment_id)?;
        Ok((w, e))
    })
    .await;
    let (w, equipment) = match loaded {
        Ok(x) => x,
        Err(e) => return fail(&state, &user, e),
    };
    let history = match record_history(&state, id).await {
        Ok((_, h)) => h,
        Err(e) => return fail(&state, &user, e),
    };
    let parts = match crate::parts_ui::all_parts(&state).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let stock = crate::parts_ui::stock_options(&parts);
    let r = role(&user);
    let open = !w.is_signed_off();
    let may_work = open && r.is_some_and(|r| r.may_work_orders());
    let may_sign = open && w.status == WorkStatus::Done && r.is_some_and(|r| r.may_sign_off());
    let next: Vec<WorkStatus> = WorkStatus::ALL
        .into_iter()
        .filter(|s| *s != WorkStatus::SignedOff && w.status.may_become(*s))
        .collect();
    let base = format!("/work-orders/{}", w.id);
    let attach_action = format!("{base}/attachments");
    let body = html! {
        p { a href="/work-orders" { "← Work orders" } }
        h1 { (w.title) }
        (views::work_order_details(&w, html! {
            @match &equipment {
                Some(e) => { a href={ "/equipment/" (e.id) } { (e.code) " " (e.name) } }
                None => { span.muted { (w.equipment_id) } }
            }
        }))
        @if may_work {
            h2 { "Record work" }
            form.stack method="post" action={ (base) "/entries" } {
                label { "What was done" textarea name="text" required maxlength="10000" {} }
                label { "Hours" input name="hours" type="number" min="0" max="1000" step="0.25" required; }
                @if !stock.is_empty() {
                    fieldset {
                        legend { "Spare parts used (taken out of stock)" }
                        @for n in 1..=PART_ROWS {
                            div.row {
                                label { "Part and location " (n)
                                    select name={ "use_" (n) } {
                                        option value="" { "—" }
                                        @for (value, label) in &stock { option value=(value) { (label) } }
                                    }
                                }
                                label { "Quantity " (n) input name={ "qty_" (n) } inputmode="decimal" size="6"; }
                            }
                        }
                    }
                }
                div { button type="submit" { "Record work" } }
            }
            h2 { "Update" }
            form.stack method="post" action={ (base) "/edit" } {
                label { "Status"
                    select name="status" {
                        @for s in &next { option value=(s.as_str()) selected[*s == w.status] { (s.label()) } }
                    }
                }
                label { "Assignee (user name)" input name="assignee" maxlength="64" value=(w.assignee); }
                label { "Work done (summary)" textarea name="work_done" maxlength="10000" { (w.work_done) } }
                div { button type="submit" { "Save" } }
            }
        }
        @if may_sign {
            h2 { "Sign off" }
            form.stack method="post" action={ (base) "/sign-off" } {
                label { "Note (optional)" textarea name="note" maxlength="10000" {} }
                div { button type="submit" { "Sign off (final)" } }
            }
        }
        (views::parts_used(&w, &parts, |p| format!("/parts/{}", p.id)))
        (keelson_web::attachments::attachment_list(
            &w.attachments,
            |a| Some(format!("/api/v1/attachments/{}", a.sha256)),
            may_work.then_some((attach_action.as_str(), state.config.attachments.max_bytes)),
        ))
        (views::comment_thread(&w.comments, Some(&format!("{base}/comments"))))
        (history_section(&history))
    };
    render(&state, &user, &w.title, body)
}

/// The update form as posted.
#[derive(Debug, Deserialize)]
struct EditForm {
    status: WorkStatus,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    work_done: String,
}

async fn update_work_order(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let patch = WorkOrderPatch {
        status: Some(form.status),
        assignee: Some(form.assignee),
        work_done: Some(form.work_done),
        ..WorkOrderPatch::default()
    };
    match edit_work_order(&state, &user, id.clone(), patch).await {
        Ok(_) => Redirect::to(&format!("/work-orders/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

/// How many parts the record-work form offers to take out of stock.
const PART_ROWS: usize = 3;

/// The record-work form as posted; numbers come as text so a bad one gets
/// a clear answer. Each `use_N` names a part and a location as
/// `part id|location`, with its quantity in `qty_N`.
#[derive(Debug, Deserialize)]
struct EntryForm {
    text: String,
    hours: String,
    #[serde(flatten)]
    parts: std::collections::HashMap<String, String>,
}

impl EntryForm {
    /// The parts used, from the filled rows of the form.
    fn parts_used(&self) -> Result<Vec<PartUse>, AppError> {
        let mut out = Vec::new();
        for n in 1..=PART_ROWS {
            let Some(chosen) = self
                .parts
                .get(&format!("use_{n}"))
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            let (part_id, location) = chosen
                .split_once('|')
                .ok_or_else(|| AppError::BadRequest(format!("use_{n}: not a part and location")))?;
            let qty = self
                .parts
                .get(&format!("qty_{n}"))
                .map_or("", String::as_str);
            let quantity = qty.trim().parse::<f64>().map_err(|_| {
                AppError::BadRequest(format!(
                    "qty_{n}: how many of the part were used, such as 1"
                ))
            })?;
            out.push(PartUse {
                part_id: part_id.to_owned(),
                location: location.to_owned(),
                quantity,
            });
        }
        Ok(out)
    }
}

async fn add_entry(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<EntryForm>,
) -> Response {
    let hours = match keelson_web::form::required("hours", &form.hours, "a number such as 1.5") {
        Ok(h) => h,
        Err(e) => return fail(&state, &user, e),
    };
    let parts = match form.parts_used() {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let entry = NewWorkEntry {
        text: form.text,
        hours,
        parts,
    };
    match record_work(&state, &user, id.clone(), entry).await {
        Ok(_) => Redirect::to(&format!("/work-orders/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

async fn add_sign_off(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<NewSignOff>,
) -> Response {
    match sign_off(&state, &user, id.clone(), form).await {
        Ok(_) => Redirect::to(&format!("/work-orders/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

#[derive(Debug, Deserialize)]
struct CommentForm {
    text: String,
}

async fn add_comment(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    match comment_work_order(&state, &user, id.clone(), form.text).await {
        Ok(_) => Redirect::to(&format!("/work-orders/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}
