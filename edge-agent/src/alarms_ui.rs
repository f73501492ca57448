//! The alarm pages: the alarm list with a plain form per action, the alarm
//! history, and the dashboard's active-alarms card. No JavaScript needed.
//!
//! Stable hooks for browser tests: each alarm row is `id="alarm-<id>"` with
//! the classes `alarm`, `state-<state>` and `kind-<kind>`; its buttons are
//! `button.ack` and `button.create-fault`; history rows are
//! `id="alarm-event-<id>"` (see [`keelson_web::alarms`]).

use crate::EdgeState;
use crate::alarms::{
    AlarmView, FaultFromAlarm, HistoryQuery, acknowledge, history_page, list_views,
    log_fault_from_alarm,
};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keelson_web::alarms::{history_table, kind_label, number, state_label, when};
use keelson_web::layout::page;
use keelson_web::session::page_error;
use keelson_web::{AppError, CurrentUser, PageUser};
use maud::{Markup, html};
use serde::Deserialize;

/// Entries per page of the alarm history.
const HISTORY_PAGE: u32 = 50;

/// The alarm page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/alarms", get(alarms_page))
        .route("/alarms/history", get(history))
        .route("/alarms/{id}/ack", post(ack))
        .route("/alarms/{id}/fault", post(fault))
}

fn fail(state: &EdgeState, user: &CurrentUser, e: AppError) -> Response {
    page_error(&state.site, Some(user), e)
}

/// The alarm's level as a coloured label.
fn level(a: &AlarmView) -> Markup {
    let class = match a.priority {
        3 => "sev-high",
        2 => "sev-medium",
        _ => "sev-low",
    };
    html! { span class={ "pill level " (class) } { (kind_label(&a.kind)) } }
}

/// The alarm list as a table; `actions` adds the acknowledge and
/// create-fault forms.
fn alarm_table(list: &[AlarmView], actions: bool) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted #no-alarms { "No alarms." }
        } @else {
            table #alarm-list {
                thead { tr {
                    th { "Level" } th { "Tag" } th { "Value" } th.opt { "Now" }
                    th { "Since" } th { "State" }
                    @if actions { th { "Actions" } }
                } }
                tbody {
                    @for a in list {
                        tr id={ "alarm-" (a.id) } class={ "alarm state-" (a.state) " kind-" (a.kind) } {
                            td { (level(a)) }
                            td.tag { a href={ "/tags/" (a.tag) } { (a.tag) } }
                            td.value {
                                (number(a.value, &a.unit))
                                @if let Some(limit) = a.limit {
                                    br; small.muted { "limit " (limit) }
                                }
                            }
                            td.opt.current { (number(a.current, &a.unit)) }
                            td.since { (when(a.raised_at)) }
                            td.state { (state_label(&a.state)) }
                            @if actions {
                                td.actions {
                                    @if a.state != "active_acknowledged" {
                                        form method="post" action={ "/alarms/" (a.id) "/ack" } {
                                            button.ack type="submit" { "Acknowledge" }
                                        }
                                    }
                                    @if let Some(fault) = &a.fault_id {
                                        a.fault-link href={ "/faults/" (fault) } { "Fault logged" }
                                    } @else {
                                        form method="post" action={ "/alarms/" (a.id) "/fault" } {
                                            label { "Fault title "
                                                input type="text" name="title" maxlength="200"
                                                    placeholder={ (kind_label(&a.kind)) " alarm: " (a.tag) };
                                            }
                                            " "
                                            button.create-fault.secondary type="submit" { "Create fault" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The dashboard's card of active alarms, most urgent first.
pub fn active_alarms_card(list: &[AlarmView]) -> Markup {
    let unacked = list
        .iter()
        .filter(|a| a.state != "active_acknowledged")
        .count();
    html! {
        div.card #active-alarms {
            @if list.is_empty() {
                "No active alarms."
            } @else {
                p { strong { (list.len()) " in the list" } ", " (unacked) " unacknowledged" }
                (alarm_table(list, false))
            }
            " " a href="/alarms" { "Alarms" } " · " a href="/alarms/history" { "History" }
        }
    }
}

async fn alarms_page(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    let list = match list_views(&state).await {
        Ok(list) => list,
        Err(e) => return fail(&state, &user, e),
    };
    let body = html! {
        h1 { "Alarms" }
        p.muted {
            "Active alarms, and alarms that returned to normal but wait for an acknowledgement. "
            a href="/alarms/history" { "History" }
        }
        (alarm_table(&list, true))
    };
    Html(page(&state.site, "Alarms", Some(&user), body).into_string()).into_response()
}

#[derive(Debug, Deserialize)]
struct HistoryParams {
    page: Option<u32>,
}

async fn history(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Query(params): Query<HistoryParams>,
) -> Response {
    let page_no = params.page.unwrap_or(1).max(1);
    let q = HistoryQuery {
        alarm_id: None,
        limit: Some(HISTORY_PAGE),
        offset: Some((page_no - 1).saturating_mul(HISTORY_PAGE)),
    };
    let data = match history_page(&state, q).await {
        Ok(d) => d,
        Err(e) => return fail(&state, &user, e),
    };
    let body = html! {
        h1 { "Alarm history" }
        (history_table(&data.events, |f| format!("/faults/{f}")))
        (keelson_web::views::pager(page_no, data.total, HISTORY_PAGE, |n| format!("/alarms/history?page={n}")))
    };
    Html(page(&state.site, "Alarm history", Some(&user), body).into_string()).into_response()
}

async fn ack(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
) -> Response {
    match acknowledge(&state, &user, id).await {
        Ok(_) => Redirect::to("/alarms").into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

#[derive(Debug, Deserialize)]
struct FaultForm {
    #[serde(default)]
    title: String,
}

async fn fault(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<FaultForm>,
) -> Response {
    let extra = FaultFromAlarm {
        title: Some(form.title),
        description: None,
    };
    match log_fault_from_alarm(&state, &user, id, extra).await {
        Ok(f) => Redirect::to(&format!("/faults/{}", f.id)).into_response(),
        Err(e) => fail(&state, &user, e),
    }
}
