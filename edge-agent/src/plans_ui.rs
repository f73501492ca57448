//! The ship LAN pages for counters and maintenance plans: the counters and
//! plans on an equipment page with forms to add them, take a reading and
//! correct a total, the plan list with a state filter, a plan's page with
//! its postponement form, and the due list. Every form is a plain HTML form
//! posting to a page route, so all of it works without JavaScript.

use crate::counters_api::{add_correction, add_counter, add_reading};
use crate::plans_api::{PlanQuery, add_plan, due_plans, plan_page, postpone, scheduled_plan};
use crate::{EdgeState, role_of};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, TimeZone, Utc};
use keelson_model::{
    Counter, NewCorrection, NewCounter, NewPlan, NewPostponement, PlanState, Role, SensorRule,
};
use keelson_records::ScheduledPlan;
use keelson_web::form::{self, DAYS};
use keelson_web::layout::{page, when};
use keelson_web::session::page_error;
use keelson_web::{AppError, CurrentUser, PageUser};
use maud::{Markup, html};
use serde::Deserialize;

/// The page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/plans", get(plans).post(create_plan_form))
        .route("/plans/{id}", get(plan_view))
        .route("/plans/{id}/postpone", post(add_postponement))
        .route("/due", get(due))
        .route("/counters", post(create_counter_form))
        .route("/counters/{id}/readings", post(add_reading_form))
        .route("/counters/{id}/corrections", post(add_correction_form))
}

/// A form's number field: `None` when left empty, a 400 naming the field
/// and an example when it is not a number.
fn number(field: &str, value: &str, example: &str) -> Result<Option<f64>, AppError> {
    form::optional(field, value, &format!("a number such as {example}"))
}

/// A form's number field that must be filled in.
fn required_number(field: &str, value: &str, example: &str) -> Result<f64, AppError> {
    form::required(field, value, &format!("a number such as {example}"))
}

/// Answers a form post: a redirect to the page `to` names for what the
/// post made, or the error page.
fn answer<T>(
    state: &EdgeState,
    user: &CurrentUser,
    result: Result<T, AppError>,
    to: impl FnOnce(&T) -> String,
) -> Response {
    match result {
        Ok(made) => Redirect::to(&to(&made)).into_response(),
        Err(e) => fail(state, user, e),
    }
}

/// Where a counter's forms lead back to: its equipment's page.
fn equipment_of(c: &Counter) -> String {
    format!("/equipment/{}", c.equipment_id)
}

/// A form's whole-days field, like [`number`].
fn days(field: &str, value: &str) -> Result<Option<u32>, AppError> {
    form::optional(field, value, DAYS)
}

/// A form's date field (`YYYY-MM-DD`), as midnight UTC of that day.
fn date(field: &str, value: &str) -> Result<Option<chrono::DateTime<Utc>>, AppError> {
    match value.trim() {
        "" => Ok(None),
        d => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Some(Utc.from_utc_datetime(&d)))
            .ok_or_else(|| {
                AppError::BadRequest(format!("{field}: must be a date such as 2026-12-31"))
            }),
    }
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

/// The counters section of an equipment page: each counter with a reading
/// form for everyone on board and a correction form for those who manage
/// counters, then a form to add one.
pub fn counters_section(equipment_id: &str, counters: &[Counter], role: Option<Role>) -> Markup {
    let may_manage = role.is_some_and(Role::may_manage_counters);
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
                @if may_manage {
                    details {
                        summary { "Correct the total" }
                        form.stack method="post" action={ "/counters/" (c.id) "/corrections" } {
                            label { "Corrected total (" (c.unit) ")"
                                input name="value" required inputmode="decimal"; }
                            label { "Reason" input name="reason" required maxlength="1000"; }
                            div { button type="submit" { "Correct total" } }
                        }
                    }
                }
            }
        }
        @if may_manage {
            details {
                summary { "Add a counter" }
                form.stack method="post" action="/counters" {
                    input type="hidden" name="equipment_id" value=(equipment_id);
                    label { "Name" input name="name" maxlength="200" placeholder="Running hours"; }
                    label { "Unit" input name="unit" maxlength="200" placeholder="hours"; }
                    label { "Starting total (0 for a new component)"
                        input name="start_total" inputmode="decimal" value="0"; }
                    label { "Count from a sensor: tag (optional)"
                        input name="sensor_tag" maxlength="200" placeholder="e.g. me_rpm"; }
                    label { "Running while the tag is above"
                        input name="sensor_threshold" inputmode="decimal" placeholder="e.g. 30"; }
                    div { button type="submit" { "Add counter" } }
                }
            }
        }
    }
}

/// The plans section of an equipment page, with a form to add a plan for
/// those who manage plans; an hours plan follows one of `counters`.
pub fn plans_section(
    equipment_id: &str,
    plans: &[ScheduledPlan],
    counters: &[Counter],
    role: Option<Role>,
) -> Markup {
    html! {
        h2 { "Maintenance plans" }
        (plan_table(plans))
        @if role.is_some_and(Role::may_manage_plans) {
            details {
                summary { "Add a plan" }
                form.stack method="post" action="/plans" {
                    input type="hidden" name="equipment_id" value=(equipment_id);
                    label { "What is to be done"
                        input name="title" required maxlength="200"; }
                    label { "Instructions"
                        textarea name="instructions" maxlength="10000" {} }
                    label { "Every (days)"
                        input name="interval_days" inputmode="numeric" placeholder="e.g. 90"; }
                    @if !counters.is_empty() {
                        label { "Every (hours)"
                            input name="interval_hours" inputmode="decimal" placeholder="e.g. 2000"; }
                        label { "Counter"
                            select name="counter_id" {
                                option value="" { "None" }
                                @for c in counters {
                                    option value=(c.id) { (c.name) " (" (format!("{:.0}", c.total)) " " (c.unit) ")" }
                                }
                            }
                        }
                    }
                    p.muted { "Give days, hours or both: with both the job falls due at whichever comes first." }
                    label { "Tolerance (days either side)"
                        input name="tolerance_days" inputmode="numeric" value="0"; }
                    @if !counters.is_empty() {
                        label { "Tolerance (hours either side)"
                            input name="tolerance_hours" inputmode="decimal" value="0"; }
                    }
                    label { "Last done on (optional)" input type="date" name="last_done_at"; }
                    @if !counters.is_empty() {
                        label { "Last done at (hours, optional)"
                            input name="last_done_hours" inputmode="decimal"; }
                    }
                    div { button type="submit" { "Add plan" } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct CounterForm {
    equipment_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    start_total: String,
    #[serde(default)]
    sensor_tag: String,
    #[serde(default)]
    sensor_threshold: String,
}

impl CounterForm {
    fn parse(self) -> Result<NewCounter, AppError> {
        let threshold = number("sensor_threshold", &self.sensor_threshold, "30")?;
        let sensor = match (self.sensor_tag.trim(), threshold) {
            ("", None) => None,
            ("", Some(_)) => {
                return Err(AppError::BadRequest(
                    "sensor_tag: name the tag the threshold applies to".into(),
                ));
            }
            (_, None) => {
                return Err(AppError::BadRequest(
                    "sensor_threshold: give the value above which the equipment runs".into(),
                ));
            }
            (tag, Some(threshold)) => Some(SensorRule {
                tag: tag.to_owned(),
                threshold,
            }),
        };
        Ok(NewCounter {
            equipment_id: self.equipment_id,
            name: self.name,
            unit: self.unit,
            start_total: number("start_total", &self.start_total, "12500")?.unwrap_or(0.0),
            sensor,
        })
    }
}

async fn create_counter_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Form(form): Form<CounterForm>,
) -> Response {
    let result = async { add_counter(&state, &user, form.parse()?).await }.await;
    answer(&state, &user, result, equipment_of)
}

#[derive(Debug, Deserialize)]
struct CorrectionForm {
    value: String,
    reason: String,
}

async fn add_correction_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(form): Form<CorrectionForm>,
) -> Response {
    let result = async {
        let correction = NewCorrection {
            value: required_number("value", &form.value, "1250.5")?,
            reason: form.reason,
        };
        add_correction(&state, &user, id, correction).await
    }
    .await;
    answer(&state, &user, result, equipment_of)
}

#[derive(Debug, Deserialize)]
struct PlanForm {
    equipment_id: String,
    title: String,
    #[serde(default)]
    instructions: String,
    #[serde(default)]
    interval_days: String,
    #[serde(default)]
    interval_hours: String,
    #[serde(default)]
    counter_id: String,
    #[serde(default)]
    tolerance_days: String,
    #[serde(default)]
    tolerance_hours: String,
    #[serde(default)]
    last_done_at: String,
    #[serde(default)]
    last_done_hours: String,
}

impl PlanForm {
    fn parse(self) -> Result<NewPlan, AppError> {
        Ok(NewPlan {
            equipment_id: self.equipment_id,
            title: self.title,
            instructions: self.instructions,
            interval_days: days("interval_days", &self.interval_days)?,
            interval_hours: number("interval_hours", &self.interval_hours, "2000")?,
            counter_id: Some(self.counter_id.trim().to_owned()).filter(|c| !c.is_empty()),
            tolerance_days: days("tolerance_days", &self.tolerance_days)?.unwrap_or(0),
            tolerance_hours: number("tolerance_hours", &self.tolerance_hours, "50")?.unwrap_or(0.0),
            last_done_at: date("last_done_at", &self.last_done_at)?,
            last_done_hours: number("last_done_hours", &self.last_done_hours, "12000")?,
        })
    }
}

async fn create_plan_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Form(form): Form<PlanForm>,
) -> Response {
    let result = async { add_plan(&state, &user, form.parse()?).await }.await;
    answer(&state, &user, result, |p| format!("/plans/{}", p.id))
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
    let result = async {
        let value = required_number("value", &form.value, "1250.5")?;
        add_reading(&state, &user, id, value).await
    }
    .await;
    answer(&state, &user, result, equipment_of)
}

#[derive(Debug, Deserialize)]
struct PlanFilter {
    q: Option<String>,
    state: Option<String>,
    page: Option<u32>,
}

/// Plans on one page of the plan list.
const PLANS_PER_PAGE: u32 = 50;

async fn plans(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(f): Query<PlanFilter>,
) -> Response {
    let wanted = match crate::ui::choice::<PlanState>(f.state.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&state, &user, e.into()),
    };
    let search = f.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let page_no = f.page.unwrap_or(1).max(1);
    let q = PlanQuery {
        q: Some(search.clone()),
        state: wanted,
        limit: Some(PLANS_PER_PAGE),
        offset: Some((page_no - 1).saturating_mul(PLANS_PER_PAGE)),
        ..PlanQuery::default()
    };
    let page = match plan_page(&state, q).await {
        Ok(p) => p,
        Err(e) => return fail(&state, &user, e),
    };
    let link = |n: u32| {
        crate::ui::list_link(
            "/plans",
            &[
                ("state", wanted.map_or("", PlanState::as_str)),
                ("q", &search),
            ],
            n,
        )
    };
    let body = html! {
        h1 { "Maintenance plans" }
        form.row method="get" action="/plans" role="search" {
            label { "Search"
                input type="search" name="q" value=(search) placeholder="Title";
            }
            label { "State"
                select name="state" {
                    option value="" selected[wanted.is_none()] { "Any" }
                    @for s in PlanState::ALL {
                        option value=(s.as_str()) selected[wanted == Some(s)] { (s.label()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        (plan_table(&page.items))
        p.muted { "A plan is added on its equipment's page." }
        (keelson_web::views::pager(page_no, page.total, PLANS_PER_PAGE, link))
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
    let result = async {
        let body = NewPostponement {
            until_date: date("until_date", &form.until_date)?,
            until_hours: number("until_hours", &form.until_hours, "2100")?,
            reason: form.reason,
        };
        postpone(&state, &user, id, body).await
    }
    .await;
    answer(&state, &user, result, |p| format!("/plans/{}", p.id))
}
