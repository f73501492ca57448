//! The ship LAN pages for counters and maintenance plans: the counters on
//! an equipment page with a reading form, the plan list with a state
//! filter, a plan's page with its postponement form, and the due list.
//! Every form is a plain HTML form posting to a page route, so all of it
//! works without JavaScript.

use crate::counters_api::add_reading;
use crate::plans_api::{PlanQuery, due_plans, plan_page, postpone, scheduled_plan};
use crate::{EdgeState, role_of};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, TimeZone, Utc};
use keelson_model::{Counter, NewPostponement, PlanState, Role};
use keelson_records::ScheduledPlan;
use keelson_web::layout::{page, when};
use keelson_web::session::page_error;
use keelson_web::{AppError, CurrentUser, PageUser};
use maud::{Markup, html};
use serde::Deserialize;

/// The page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/plans", get(plans))
        .route("/plans/{id}", get(plan_view))
        .route("/plans/{id}/postpone", post(add_postponement))
        .route("/due", get(due))
        .route("/counters/{id}/readings", post(add_reading_form))
}

fn render(state: &EdgeState, user: &CurrentUser, title: &str, body: Markup) -> Response {
    Html(page(&state.site, title, Some(user), body).into_string()).into_response()
}

fn fail(state: &EdgeState, user: &CurrentUser, e: AppError) -> Response {
    page_error(&state.site, Some(user), e)
}

fn state_badge(s: PlanState) -> Markup {
    html! { span class={ "badge plan-" (s.as_str()) } { (s.label()) } }
}

fn due_cell(p: &ScheduledPlan) -> Markup {
    html! {
        @if let Some(at) = p.schedule.due_at { (at.format("%Y-%m-%d")) }
        @if p.schedule.due_at.is_some() && p.schedule.due_hours.is_some() { br; }
        @if let Some(h) = p.schedule.due_hours {
            (format!("{h:.0}")) " h"
            @if let Some(now) = p.schedule.hours_now { span.muted { " (now " (format!("{now:.0}")) ")" } }
        }
    }
}

fn plan_table(list: &[ScheduledPlan]) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "No plans." }
        } @else {
            table {
                thead { tr { th { "Plan" } th { "State" } th { "Due" } } }
                tbody {
                    @for p in list {
                        tr {
                            td { a href={ "/plans/" (p.plan.id) } { (p.plan.title) } }
                            td { (state_badge(p.schedule.state)) }
                            td { (due_cell(p)) }
                        }
                    }
                }
            }
        }
    }
}

/// The counters section of an equipment page, with a reading form for
/// everyone on board.
pub fn counters_section(counters: &[Counter], role: Option<Role>) -> Markup {
    html! {
        h2 { "Counters" }
        @if counters.is_empty() {
            p.muted { "No counters." }
        }
        @for c in counters {
            div.card {
                h3 { (c.name) }
                p { "Total: " strong { (format!("{:.1}", c.total)) " " (c.unit) } " · " (when(c.total_at)) }
                @if let Some(rule) = &c.sensor {
                    p.muted { "Counts while " (rule.tag) " > " (rule.threshold) }
                }
                @if role.is_some_and(Role::may_record_readings) {
                    form.stack method="post" action={ "/counters/" (c.id) "/readings" } {
                        label { "New reading (" (c.unit) ")"
                            input name="value" required inputmode="decimal" value=(format!("{:.1}", c.total));
                        }
                        div { button type="submit" { "Record reading" } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct ReadingForm {
    value: String,
}

async fn add_reading_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<ReadingForm>,
) -> Response {
    let Ok(value) = form.value.trim().parse::<f64>() else {
        return fail(
            &state,
            &user,
            AppError::BadRequest("value: must be a number such as 1250.5".into()),
        );
    };
    match add_reading(&state, &user, id, value).await {
        Ok(c) => Redirect::to(&format!("/equipment/{}", c.equipment_id)).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

#[derive(Debug, Deserialize)]
struct PlanFilter {
    state: Option<String>,
    offset: Option<u32>,
}

async fn plans(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(f): Query<PlanFilter>,
) -> Response {
    let wanted = match f.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => match s.parse::<PlanState>() {
            Ok(s) => Some(s),
            Err(e) => return fail(&state, &user, e.into()),
        },
        None => None,
    };
    let q = PlanQuery {
        state: wanted,
        offset: f.offset,
        ..PlanQuery::default()
    };
    let page = match plan_page(&state, q).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let next = page.offset + page.limit;
    let body = html! {
        h1 { "Maintenance plans" }
        form method="get" action="/plans" {
            label { "State "
                select name="state" {
                    option value="" selected[wanted.is_none()] { "Any" }
                    @for s in PlanState::ALL {
                        option value=(s.as_str()) selected[wanted == Some(s)] { (s.label()) }
                    }
                }
            }
            " " button type="submit" { "Filter" }
        }
        (plan_table(&page.items))
        p.muted { (page.total) " plans" }
        @if u64::from(next) < page.total {
            p { a href={ "/plans?state=" (wanted.map_or("", PlanState::as_str)) "&offset=" (next) } { "Next page" } }
        }
    };
    render(&state, &user, "Plans", body)
}

/// Plans on one page of the due list.
const DUE_PER_PAGE: u32 = 50;

#[derive(Debug, Deserialize)]
struct DueQuery {
    page: Option<u32>,
}

async fn due(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(q): Query<DueQuery>,
) -> Response {
    let list = match due_plans(&state).await {
        Ok(l) => l,
        Err(e) => return fail(&state, &user, e),
    };
    let page_no = q.page.unwrap_or(1).max(1);
    let shown: Vec<ScheduledPlan> = list
        .iter()
        .skip((page_no as usize - 1).saturating_mul(DUE_PER_PAGE as usize))
        .take(DUE_PER_PAGE as usize)
        .cloned()
        .collect();
    let body = html! {
        h1 { "Due" }
        p.muted { "Plans due or overdue, overdue first, then by due date." }
        (plan_table(&shown))
        (keelson_web::views::pager(page_no, list.len() as u64, DUE_PER_PAGE, |n| format!("/due?page={n}")))
    };
    render(&state, &user, "Due", body)
}

async fn plan_view(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let p = match scheduled_plan(&state, id).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let may_manage = role_of(&user).is_ok_and(Role::may_manage_plans);
    let plan = &p.plan;
    let body = html! {
        p { a href="/plans" { "← Plans" } }
        h1 { (plan.title) }
        div.card {
            dl.facts {
                dt { "State" } dd { (state_badge(p.schedule.state)) }
                dt { "Due" } dd { (due_cell(&p)) }
                dt { "Equipment" } dd { a href={ "/equipment/" (plan.equipment_id) } { "Equipment" } }
                dt { "Every" } dd {
                    @if let Some(d) = plan.interval_days { (d) " days" }
                    @if plan.interval_days.is_some() && plan.interval_hours.is_some() { " or " }
                    @if let Some(h) = plan.interval_hours { (h) " hours" }
                    @if plan.interval_days.is_some() && plan.interval_hours.is_some() { ", whichever comes first" }
                }
                dt { "Tolerance" } dd { (plan.tolerance_days) " days, " (plan.tolerance_hours) " hours" }
                dt { "Last done" } dd {
                    (when(plan.last_done_at))
                    @if let Some(h) = plan.last_done_hours { " at " (format!("{h:.0}")) " h" }
                }
            }
            @if !plan.instructions.is_empty() { p { (plan.instructions) } }
        }
        h2 { "Postponements" }
        @if plan.postponements.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Until" } th { "Reason" } th { "By" } } }
                tbody {
                    @for x in &plan.postponements {
                        tr {
                            td { (when(x.at)) }
                            td {
                                @if let Some(d) = x.until_date { (d.format("%Y-%m-%d")) " " }
                                @if let Some(h) = x.until_hours { (h) " h" }
                            }
                            td { (x.reason) }
                            td { (x.by) }
                        }
                    }
                }
            }
        }
        @if may_manage {
            h2 { "Postpone" }
            form.stack method="post" action={ "/plans/" (plan.id) "/postpone" } {
                @if plan.interval_days.is_some() {
                    label { "New due date" input type="date" name="until_date"; }
                }
                @if plan.interval_hours.is_some() {
                    label { "New due total (hours)" input name="until_hours" inputmode="decimal"; }
                }
                label { "Reason" input name="reason" required maxlength="10000"; }
                div { button type="submit" { "Postpone" } }
            }
        }
    };
    render(&state, &user, &plan.title, body)
}

#[derive(Debug, Deserialize)]
struct PostponeForm {
    #[serde(default)]
    until_date: String,
    #[serde(default)]
    until_hours: String,
    reason: String,
}

async fn add_postponement(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<PostponeForm>,
) -> Response {
    let until_date = match form.until_date.trim() {
        "" => None,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => d.and_hms_opt(0, 0, 0).map(|d| Utc.from_utc_datetime(&d)),
            Err(_) => {
                return fail(
                    &state,
                    &user,
                    AppError::BadRequest("until_date: must be a date such as 2026-12-31".into()),
                );
            }
        },
    };
    let until_hours = match form.until_hours.trim() {
        "" => None,
        h => match h.parse::<f64>() {
            Ok(h) => Some(h),
            Err(_) => {
                return fail(
                    &state,
                    &user,
                    AppError::BadRequest("until_hours: must be a number such as 2100".into()),
                );
            }
        },
    };
    let body = NewPostponement {
        until_date,
        until_hours,
        reason: form.reason,
    };
    match postpone(&state, &user, id.clone(), body).await {
        Ok(_) => Redirect::to(&format!("/plans/{id}")).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}
