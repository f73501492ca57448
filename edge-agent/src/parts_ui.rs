//! The ship LAN pages for spare parts and requisitions: the parts list with
//! a search box and a below-minimum filter, a part's page with its stock
//! per location, its movements and the forms to receive, adjust and edit,
//! the requisition list and a requisition's page with its lines. Every form
//! is a plain HTML form posting to a page route, so all of it works without
//! JavaScript; errors come back as a page that says what is wrong.

use crate::maintenance_ui::{fail, render};
use crate::parts_api::{
    PartQuery, RequisitionQuery, add_part, draft_from_minimum, edit_part, edit_requisition,
    move_stock, part, part_page, requisition, requisition_page, submit,
};
use crate::{EdgeState, role_of};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keelson_model::{
    MovementKind, NewMovement, NewPart, Part, PartPatch, RequisitionLine, RequisitionPatch,
    RequisitionStatus, Role,
};
use keelson_web::layout::when;
use keelson_web::views::{part_table, qty, requisition_status, requisition_table, stock};
use keelson_web::{AppError, CurrentUser, PageUser, blocking};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// The page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/parts", get(parts).post(create_part))
        .route("/parts/{id}", get(part_view))
        .route("/parts/{id}/movements", post(add_movement))
        .route("/parts/{id}/edit", post(update_part))
        .route("/requisitions", get(requisitions))
        .route(
            "/requisitions/draft-from-minimum",
            post(create_draft_from_minimum),
        )
        .route("/requisitions/{id}", get(requisition_view))
        .route("/requisitions/{id}/edit", post(update_requisition))
        .route("/requisitions/{id}/submit", post(submit_form))
}

const PAGE_SIZE: u32 = 25;

fn parse_qty(field: &str, v: &str) -> Result<f64, AppError> {
    keelson_web::form::required(field, v, "a number such as 2 or 0.5")
}

/// One entry a line of a text area, blank lines dropped.
fn lines_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Query of the parts list page.
#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    below_minimum: Option<String>,
    page: Option<u32>,
}

async fn parts(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(q): Query<ListQuery>,
) -> Response {
    parts_page(&state, &user, q, None).await
}

async fn parts_page(
    state: &EdgeState,
    user: &CurrentUser,
    q: ListQuery,
    error: Option<AppError>,
) -> Response {
    let page_no = q.page.unwrap_or(1).max(1);
    let below = q.below_minimum.is_some();
    let search = q.q.unwrap_or_default();
    let query = PartQuery {
        q: Some(search.clone()),
        below_minimum: below,
        equipment_id: None,
        limit: Some(PAGE_SIZE),
        offset: Some((page_no - 1).saturating_mul(PAGE_SIZE)),
    };
    let list = match part_page(state, query).await {
        Ok(p) => p,
        Err(e) => return fail(state, user, e),
    };
    let db = state.db.clone();
    let equipment = match blocking(move || Ok(db.list_equipment(None)?)).await {
        Ok(l) => l,
        Err(e) => return fail(state, user, e),
    };
    let pages = list.total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    let link = |n: u32| {
        let mut url = format!("/parts?page={n}&q={}", urlencode(&search));
        if below {
            url.push_str("&below_minimum=on");
        }
        url
    };
    let may_manage = role_of(user).is_ok_and(Role::may_manage_parts);
    let status = error.as_ref().map(AppError::status);
    let body = html! {
        h1 { "Spare parts" }
        p { a href="/requisitions" { "Requisitions →" } }
        form.row method="get" action="/parts" role="search" {
            label { "Search (number, name, maker, reference)"
                input type="search" name="q" value=(search) maxlength="100"; }
            label { input type="checkbox" name="below_minimum" checked[below]; " Below minimum stock only" }
            button.secondary type="submit" { "Search" }
        }
        p {}
        (part_table(&list.items, |p| Some(format!("/parts/{}", p.id))))
        nav.pager aria-label="Pages" {
            @if page_no > 1 { a href=(link(page_no - 1)) rel="prev" { "← Previous" } }
            span.muted { "Page " (page_no) " of " (pages) " · " (list.total) " in all" }
            @if u64::from(page_no) < pages { a href=(link(page_no + 1)) rel="next" { "Next →" } }
        }
        @if may_manage {
            h2 #add { "Add a spare part" }
            @if let Some(e) = &error { p.flash.error role="alert" { (e.public_detail()) } }
            form.stack method="post" action="/parts" {
                label { "Part number" input name="number" required maxlength="100"; }
                (part_inputs(None))
                label { "Fits equipment"
                    select name="equipment_id" {
                        option value="" { "—" }
                        @for e in &equipment { option value=(e.id) { (e.code) " " (e.name) } }
                    }
                }
                div { button type="submit" { "Add part" } }
            }
        }
    };
    let mut resp = render(state, user, "Spare parts", body);
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    resp
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The inputs of a part's fields the add and edit forms share, filled from
/// `part` when editing.
fn part_inputs(part: Option<&Part>) -> Markup {
    html! {
        label { "Name" input name="name" required maxlength="200" value=[part.map(|p| &p.name)]; }
        label { "Maker" input name="maker" maxlength="100" value=[part.map(|p| &p.maker)]; }
        label { "Maker's reference" input name="maker_ref" maxlength="100" value=[part.map(|p| &p.maker_ref)]; }
        label { "Unit (pcs, l, kg, m …)" input name="unit" required maxlength="100" value=(part.map_or("pcs", |p| p.unit.as_str())); }
        label { "Minimum stock" input name="min_stock" inputmode="decimal" value=(qty(part.map_or(0.0, |p| p.min_stock))); }
        label { "Storage locations (one a line)" textarea name="locations" rows="3" { (part.map(|p| p.locations.join("\n")).unwrap_or_default()) } }
    }
}

/// The part's fields as the add and edit forms post them; numbers come as
/// text so a bad one gets a clear answer.
#[derive(Debug, Deserialize)]
struct PartFields {
    name: String,
    #[serde(default)]
    maker: String,
    #[serde(default)]
    maker_ref: String,
    unit: String,
    min_stock: String,
    #[serde(default)]
    locations: String,
}

impl PartFields {
    /// Every field as a patch (the equipment is not on these forms).
    fn patch(self) -> Result<PartPatch, AppError> {
        Ok(PartPatch {
            min_stock: Some(parse_qty("min_stock", &self.min_stock)?),
            locations: Some(lines_of(&self.locations)),
            name: Some(self.name),
            maker: Some(self.maker),
            maker_ref: Some(self.maker_ref),
            unit: Some(self.unit),
            equipment_ids: None,
        })
    }
}

/// The add-part form as posted.
#[derive(Debug, Deserialize)]
struct PartForm {
    number: String,
    #[serde(default)]
    equipment_id: String,
    #[serde(flatten)]
    fields: PartFields,
}

async fn create_part(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Form(form): Form<PartForm>,
) -> Response {
    let created = async {
        let fields = form.fields.patch()?;
        let new = NewPart {
            number: form.number,
            name: fields.name.unwrap_or_default(),
            maker: fields.maker.unwrap_or_default(),
            maker_ref: fields.maker_ref.unwrap_or_default(),
            unit: fields.unit.unwrap_or_default(),
            equipment_ids: Some(form.equipment_id)
                .filter(|e| !e.is_empty())
                .into_iter()
                .collect(),
            min_stock: fields.min_stock.unwrap_or_default(),
            locations: fields.locations.unwrap_or_default(),
        };
        add_part(&state, &user, new).await
    }
    .await;
    match created {
        Ok(p) => Redirect::to(&format!("/parts/{}", p.id)).into_response(),
        Err(e @ (AppError::BadRequest(_) | AppError::Conflict(_))) => {
            let q = ListQuery {
                q: None,
                below_minimum: None,
                page: None,
            };
            parts_page(&state, &user, q, Some(e)).await
        }
        Err(e) => fail(&state, &user, e),
    }
}

async fn part_view(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let p = match part(&state, id).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let db = state.db.clone();
    let ids = p.equipment_ids.clone();
    let equipment = match blocking(move || {
        let mut out = Vec::new();
        for id in &ids {
            if let Some(e) = db.equipment(id)? {
                out.push(e);
            }
        }
        Ok(out)
    })
    .await
    {
        Ok(e) => e,
        Err(e) => return fail(&state, &user, e),
    };
    let role = role_of(&user).ok();
    let may_move = role.is_some_and(Role::may_move_stock);
    let may_manage = role.is_some_and(Role::may_manage_parts);
    let base = format!("/parts/{}", p.id);
    let locations_list = format!("locations-{}", p.id);
    let body = html! {
        p { a href="/parts" { "← Spare parts" } }
        h1 { (p.number) " · " (p.name) }
        div.card {
            dl.facts {
                dt { "Stock" } dd { (stock(&p)) }
                dt { "Minimum stock" } dd { (qty(p.min_stock)) " " (p.unit) }
                dt { "Maker" } dd { (p.maker) @if !p.maker_ref.is_empty() { " · " (p.maker_ref) } }
                dt { "Fits" } dd {
                    @if equipment.is_empty() { span.muted { "—" } }
                    @for (i, e) in equipment.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/equipment/" (e.id) } { (e.code) " " (e.name) }
                    }
                }
                dt { "Created by" } dd { (p.created_by) " on " (when(p.created_at)) }
            }
        }
        h2 { "Stock per location" }
        @if p.stock.is_empty() {
            p.muted { "No storage location yet." }
        } @else {
            table {
                thead { tr { th { "Location" } th { "Quantity" } } }
                tbody {
                    @for s in &p.stock {
                        tr { td { (s.location) } td { (qty(s.quantity)) " " (p.unit) } }
                    }
                }
            }
        }
        datalist id=(locations_list) {
            @for s in &p.stock { option value=(s.location) {} }
        }
        @if may_move {
            h2 { "Receive parts" }
            form.stack method="post" action={ (base) "/movements" } {
                input type="hidden" name="kind" value="receipt";
                label { "Location" input name="location" required maxlength="100" list=(locations_list) value=[p.locations.first()]; }
                label { "Quantity (" (p.unit) ")" input name="quantity" required inputmode="decimal"; }
                label { "Note (delivery, supplier …)" input name="reason" maxlength="2000"; }
                div { button type="submit" { "Record receipt" } }
            }
        }
        @if may_manage {
            h2 { "Adjust stock" }
            form.stack method="post" action={ (base) "/movements" } {
                input type="hidden" name="kind" value="adjustment";
                label { "Location" input name="location" required maxlength="100" list=(locations_list) value=[p.locations.first()]; }
                label { "Change (+ found, − missing or damaged)" input name="quantity" required inputmode="decimal"; }
                label { "Reason (required)" input name="reason" required maxlength="2000"; }
                div { button type="submit" { "Record adjustment" } }
            }
        }
        h2 { "Movements" }
        @if p.movements.is_empty() {
            p.muted { "No stock movements yet." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Kind" } th { "Location" } th { "Change" } th.opt { "Reason" } th.opt { "By" } } }
                tbody {
                    @for m in p.movements.iter().rev() {
                        tr {
                            td { (when(m.at)) }
                            td { (m.kind.label()) }
                            td { (m.location) }
                            td { @if m.delta > 0.0 { "+" } (qty(m.delta)) }
                            td.opt {
                                (m.reason)
                                @if let Some(w) = &m.work_order_id { a href={ "/work-orders/" (w) } { "work order" } }
                            }
                            td.opt { (m.by) }
                        }
                    }
                }
            }
        }
        @if may_manage {
            h2 { "Edit" }
            form.stack method="post" action={ (base) "/edit" } {
                (part_inputs(Some(&p)))
                div { button type="submit" { "Save" } }
            }
        }
    };
    render(&state, &user, &p.number, body)
}

/// A movement form as posted; the quantity comes as text so a bad number
/// gets a clear answer.
#[derive(Debug, Deserialize)]
struct MovementForm {
    kind: MovementKind,
    location: String,
    quantity: String,
    #[serde(default)]
    reason: String,
}

async fn add_movement(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<MovementForm>,
) -> Response {
    let done = async {
        let movement = NewMovement {
            kind: form.kind,
            location: form.location,
            quantity: parse_qty("quantity", &form.quantity)?,
            reason: form.reason,
            work_order_id: None,
        };
        move_stock(&state, &user, id.clone(), movement).await
    }
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/parts/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

async fn update_part(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<PartFields>,
) -> Response {
    let done = async {
        let patch = form.patch()?;
        edit_part(&state, &user, id.clone(), patch).await
    }
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/parts/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

#[derive(Debug, Deserialize)]
struct RequisitionListQuery {
    page: Option<u32>,
}

async fn requisitions(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(q): Query<RequisitionListQuery>,
) -> Response {
    let page_no = q.page.unwrap_or(1).max(1);
    let query = RequisitionQuery {
        status: None,
        limit: Some(PAGE_SIZE),
        offset: Some((page_no - 1).saturating_mul(PAGE_SIZE)),
    };
    let list = match requisition_page(&state, query).await {
        Ok(l) => l,
        Err(e) => return fail(&state, &user, e),
    };
    let all = match all_parts(&state).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let pages = list.total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    let may_manage = role_of(&user).is_ok_and(Role::may_manage_parts);
    let body = html! {
        p { a href="/parts" { "← Spare parts" } }
        h1 { "Requisitions" }
        @if may_manage {
            form method="post" action="/requisitions/draft-from-minimum" {
                button type="submit" { "Draft a requisition of every part below minimum stock" }
            }
        }
        p {}
        (requisition_table(&list.items, &all, |r| Some(format!("/requisitions/{}", r.id))))
        nav.pager aria-label="Pages" {
            @if page_no > 1 { a href={ "/requisitions?page=" (page_no - 1) } rel="prev" { "← Newer" } }
            span.muted { "Page " (page_no) " of " (pages) " · " (list.total) " in all" }
            @if u64::from(page_no) < pages { a href={ "/requisitions?page=" (page_no + 1) } rel="next" { "Older →" } }
        }
    };
    render(&state, &user, "Requisitions", body)
}

async fn create_draft_from_minimum(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
) -> Response {
    match draft_from_minimum(&state, &user).await {
        Ok(r) => Redirect::to(&format!("/requisitions/{}", r.id)).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

async fn requisition_view(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let r = match requisition(&state, id).await {
        Ok(r) => r,
        Err(e) => return fail(&state, &user, e),
    };
    let all = match all_parts(&state).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let editable =
        r.status == RequisitionStatus::Draft && role_of(&user).is_ok_and(Role::may_manage_parts);
    let base = format!("/requisitions/{}", r.id);
    let part_of = |id: &str| all.iter().find(|p| p.id == id);
    let body = html! {
        p { a href="/requisitions" { "← Requisitions" } }
        h1 { "Requisition of " (when(r.created_at)) }
        div.card {
            dl.facts {
                dt { "Status" } dd { (requisition_status(r.status)) }
                dt { "Drafted by" } dd { (r.created_by) }
                @for s in &r.submissions { dt { "Submitted" } dd { "by " (s.by) " on " (when(s.at)) } }
                @for d in &r.decisions {
                    dt { @if d.approved { "Approved" } @else { "Turned down" } }
                    dd { "by " (d.by) " on " (when(d.at)) @if !d.note.is_empty() { ": " (d.note) } }
                }
                dt { "Note" } dd { (r.note) }
            }
        }
        h2 { "Lines" }
        @if editable {
            form.stack method="post" action={ (base) "/edit" } {
                table {
                    thead { tr { th { "Part" } th { "In stock" } th { "Quantity to order" } } }
                    tbody {
                        @for l in &r.lines {
                            tr {
                                td { (part_cell(part_of(&l.part_id), &l.part_id)) }
                                td { @if let Some(p) = part_of(&l.part_id) { (stock(p)) } }
                                td { input name={ "line:" (l.part_id) } aria-label="Quantity to order" inputmode="decimal" value=(qty(l.quantity)); }
                            }
                        }
                    }
                }
                p.muted { "A quantity of 0 removes the line." }
                label { "Add a part"
                    select name="add_part" {
                        option value="" { "—" }
                        @for p in &all { option value=(p.id) { (p.number) " " (p.name) } }
                    }
                }
                label { "Quantity of the added part" input name="add_quantity" inputmode="decimal"; }
                label { "Note" textarea name="note" maxlength="2000" { (r.note) } }
                div { button type="submit" { "Save" } }
            }
            h2 { "Submit" }
            form method="post" action={ (base) "/submit" } {
                button type="submit" { "Submit to the office (final)" }
            }
        } @else {
            table {
                thead { tr { th { "Part" } th { "Quantity" } } }
                tbody {
                    @for l in &r.lines {
                        tr {
                            td { (part_cell(part_of(&l.part_id), &l.part_id)) }
                            td { (qty(l.quantity)) @if let Some(p) = part_of(&l.part_id) { " " (p.unit) } }
                        }
                    }
                }
            }
        }
    };
    render(&state, &user, "Requisition", body)
}

/// The vessel's parts (the first 500 by number), to name requisition lines
/// and fill the pickers.
pub async fn all_parts(state: &EdgeState) -> Result<Vec<Part>, AppError> {
    let q = PartQuery {
        limit: Some(500),
        ..PartQuery::default()
    };
    Ok(part_page(state, q).await?.items)
}

fn part_cell(part: Option<&Part>, id: &str) -> Markup {
    html! {
        @match part {
            Some(p) => { a href={ "/parts/" (p.id) } { (p.number) } " " (p.name) }
            None => { span.muted { (id) } }
        }
    }
}

/// Reads the requisition edit form: a `line:<part id>` quantity per line
/// (0 or empty drops it), an optional part to add and the note.
fn requisition_patch(form: &HashMap<String, String>) -> Result<RequisitionPatch, AppError> {
    let mut lines = Vec::new();
    for (k, v) in form {
        let Some(part_id) = k.strip_prefix("line:") else {
            continue;
        };
        let quantity = if v.trim().is_empty() {
            0.0
        } else {
            parse_qty("quantity", v)?
        };
        if quantity > 0.0 {
            lines.push(RequisitionLine {
                part_id: part_id.to_owned(),
                quantity,
            });
        }
    }
    if let Some(p) = form.get("add_part").filter(|p| !p.is_empty()) {
        let quantity = parse_qty(
            "add_quantity",
            form.get("add_quantity").map_or("", String::as_str),
        )?;
        match lines.iter_mut().find(|l| &l.part_id == p) {
            Some(l) => l.quantity += quantity,
            None => lines.push(RequisitionLine {
                part_id: p.clone(),
                quantity,
            }),
        }
    }
    Ok(RequisitionPatch {
        note: form.get("note").cloned(),
        lines: Some(lines),
    })
}

async fn update_requisition(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let done = async {
        let patch = requisition_patch(&form)?;
        edit_requisition(&state, &user, id.clone(), patch).await
    }
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/requisitions/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

async fn submit_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    match submit(&state, &user, id.clone()).await {
        Ok(_) => Redirect::to(&format!("/requisitions/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

/// The options of the parts-used fields of the record-work form: every
/// location of every part that holds stock, as `part id|location`.
pub fn stock_options(parts: &[Part]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in parts {
        for s in p.stock.iter().filter(|s| s.quantity > 0.0) {
            out.push((
                format!("{}|{}", p.id, s.location),
                format!(
                    "{} {} — {} ({} {})",
                    p.number,
                    p.name,
                    s.location,
                    qty(s.quantity),
                    p.unit
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(urlencode("ER store 3/a"), "ER%20store%203%2Fa");
    }

    #[test]
    fn the_requisition_form_reads_lines_and_an_added_part() {
        let form: HashMap<String, String> = [
            ("line:p-1", "3"),
            ("line:p-2", "0"),
            ("add_part", "p-3"),
            ("add_quantity", "1.5"),
            ("note", "Next port"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut patch = requisition_patch(&form).unwrap();
        let lines = patch.lines.as_mut().unwrap();
        lines.sort_by(|a, b| a.part_id.cmp(&b.part_id));
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[1].part_id.as_str(), lines[1].quantity), ("p-3", 1.5));
        assert_eq!(patch.note.as_deref(), Some("Next port"));
    }
}
