//! The OpenAPI 3.1 document of the ship's REST API, served at
//! `GET /api/v1/openapi.json`.
//!
//! The document is built from one table, [`OPERATIONS`], with a line per
//! method and path. A test (`tests/openapi.rs`) reads the router's source
//! for every `/api/v1` route and checks that the table lists exactly those,
//! and asks the running agent each listed operation to make sure it is
//! routed; so a new endpoint cannot ship undocumented.

use crate::EdgeState;
use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a session.
    Public,
    /// Any logged-in user.
    User,
    /// Only the roles named (by their lowest role; higher ones may too).
    Role(&'static str),
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `get`, `post`, `patch`, `put` or `delete`.
    pub method: &'static str,
    /// The path as routed, with `{name}` parameters.
    pub path: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The JSON body it takes, by component name.
    pub body: Option<&'static str>,
    /// What a success answers with, by component name (`[Name]` for a list).
    pub answer: &'static str,
    /// Query parameters it reads.
    pub query: &'static [(&'static str, &'static str)],
    /// The status of a success: 201 for a POST that makes something, 200
    /// otherwise, unless [`answers`] says another.
    pub status: u16,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    access: Access,
    body: Option<&'static str>,
    answer: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        access,
        body,
        answer,
        query: &[],
        status: if matches!(method.as_bytes(), b"post") {
            201
        } else {
            200
        },
    }
}

/// The same operation answering `status` on success.
const fn answers(o: Operation, status: u16) -> Operation {
    Operation { status, ..o }
}

const fn with_query(o: Operation, query: &'static [(&'static str, &'static str)]) -> Operation {
    Operation { query, ..o }
}

use Access::{Public, Role, User};

/// Every operation under `/api/v1`.
pub const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/api/v1/openapi.json",
        "This document",
        Public,
        None,
        "OpenApi",
    ),
    answers(
        op(
            "post",
            "/api/v1/session",
            "Log in; answers a bearer token and sets the session cookie",
            Public,
            Some("Credentials"),
            "Session",
        ),
        200,
    ),
    op(
        "delete",
        "/api/v1/session",
        "Log out",
        User,
        None,
        "LoggedOut",
    ),
    with_query(
        op(
            "get",
            "/api/v1/faults",
            "Faults, most recently changed first",
            User,
            None,
            "[Fault]",
        ),
        &[
            ("status", "open, in_progress, resolved or closed"),
            ("severity", "low, medium, high or critical"),
            ("q", "text in the title, equipment, reporter or id"),
            ("limit", "at most this many (default 500, at most 1000)"),
            ("offset", "skip this many"),
        ],
    ),
    op(
        "post",
        "/api/v1/faults",
        "Log a fault",
        User,
        Some("NewFault"),
        "Fault",
    ),
    op(
        "get",
        "/api/v1/faults/{id}",
        "One fault",
        User,
        None,
        "Fault",
    ),
    op(
        "patch",
        "/api/v1/faults/{id}",
        "Change a fault's fields, status, cause or corrective action",
        User,
        Some("FaultPatch"),
        "Fault",
    ),
    op(
        "post",
        "/api/v1/faults/{id}/comments",
        "Comment on a fault",
        User,
        Some("NewComment"),
        "Fault",
    ),
    op(
        "get",
        "/api/v1/tags",
        "Every tag with its latest value and quality",
        User,
        None,
        "[TagValue]",
    ),
    with_query(
        op(
            "get",
            "/api/v1/tags/{name}/samples",
            "A tag's trend over a range, at the resolution the range calls for",
            User,
            None,
            "Series",
        ),
        &[
            ("from", "start, RFC 3339 (default 24 hours ago)"),
            ("to", "end, RFC 3339 (default now)"),
            (
                "resolution",
                "raw, minute or hour (default: chosen from the range)",
            ),
            ("limit", "at most this many points"),
        ],
    ),
    op(
        "get",
        "/api/v1/tags/{name}/texts",
        "A text tag's values where they changed",
        User,
        None,
        "[TextValue]",
    ),
    op(
        "get",
        "/api/v1/sync/status",
        "Sync progress: pending bytes per lane, last success, ETA, budget",
        User,
        None,
        "SyncStatus",
    ),
    answers(
        op(
            "post",
            "/api/v1/sync/now",
            "Start a sync session now",
            User,
            None,
            "SyncRequested",
        ),
        202,
    ),
    op(
        "get",
        "/api/v1/alarms",
        "The alarm list: active or unacknowledged alarms",
        User,
        None,
        "[Alarm]",
    ),
    with_query(
        op(
            "get",
            "/api/v1/alarms/history",
            "Alarm and event history, newest first",
            User,
            None,
            "AlarmHistoryPage",
        ),
        &[
            ("alarm_id", "only this alarm's events"),
            ("limit", "page size"),
            ("offset", "skip this many"),
        ],
    ),
    answers(
        op(
            "post",
            "/api/v1/alarms/{id}/ack",
            "Acknowledge an alarm",
            User,
            None,
            "AckResult",
        ),
        200,
    ),
    op(
        "post",
        "/api/v1/alarms/{id}/fault",
        "Log a fault from an alarm",
        User,
        Some("FaultFromAlarm"),
        "Fault",
    ),
    op(
        "get",
        "/api/v1/equipment",
        "The equipment tree, in code order",
        User,
        None,
        "[Equipment]",
    ),
    op(
        "post",
        "/api/v1/equipment",
        "Add a system or component",
        Role("chief_engineer"),
        Some("NewEquipment"),
        "Equipment",
    ),
    op(
        "get",
        "/api/v1/equipment/{id}",
        "One equipment record",
        User,
        None,
        "Equipment",
    ),
    op(
        "patch",
        "/api/v1/equipment/{id}",
        "Change an equipment record",
        Role("chief_engineer"),
        Some("EquipmentPatch"),
        "Equipment",
    ),
    with_query(
        op(
            "get",
            "/api/v1/work-orders",
            "Work orders, a page at a time",
            User,
            None,
            "WorkOrderPage",
        ),
        &[
            ("q", "text in the title, assignee or id"),
            ("status", "only this status"),
            ("equipment_id", "only this equipment's"),
            ("limit", "page size"),
            ("offset", "skip this many"),
        ],
    ),
    op(
        "post",
        "/api/v1/work-orders",
        "Open a work order",
        Role("engineer"),
        Some("NewWorkOrder"),
        "WorkOrder",
    ),
    op(
        "get",
        "/api/v1/work-orders/{id}",
        "One work order",
        User,
        None,
        "WorkOrder",
    ),
    op(
        "patch",
        "/api/v1/work-orders/{id}",
        "Assign, start or complete a work order",
        Role("engineer"),
        Some("WorkOrderPatch"),
        "WorkOrder",
    ),
    op(
        "post",
        "/api/v1/work-orders/{id}/entries",
        "Record work done and hours spent",
        Role("engineer"),
        Some("NewWorkEntry"),
        "WorkOrder",
    ),
    op(
        "post",
        "/api/v1/work-orders/{id}/sign-off",
        "The chief engineer's sign-off, an append-only event",
        Role("chief_engineer"),
        Some("NewSignOff"),
        "WorkOrder",
    ),
    op(
        "post",
        "/api/v1/work-orders/{id}/comments",
        "Comment on a work order",
        User,
        Some("NewComment"),
        "WorkOrder",
    ),
    op(
        "get",
        "/api/v1/records/{id}/history",
        "A record's audit trail, built from its changes",
        User,
        None,
        "History",
    ),
    with_query(
        op(
            "get",
            "/api/v1/counters",
            "Counters (running hours)",
            User,
            None,
            "[Counter]",
        ),
        &[("equipment_id", "only this equipment's")],
    ),
    op(
        "post",
        "/api/v1/counters",
        "Add a counter with its starting total",
        Role("chief_engineer"),
        Some("NewCounter"),
        "Counter",
    ),
    op(
        "get",
        "/api/v1/counters/{id}",
        "One counter with its readings",
        User,
        None,
        "Counter",
    ),
    op(
        "post",
        "/api/v1/counters/{id}/readings",
        "Record a reading; it may not go backwards",
        User,
        Some("NewReading"),
        "Counter",
    ),
    op(
        "post",
        "/api/v1/counters/{id}/corrections",
        "Correct a counter's total, with a reason",
        Role("chief_engineer"),
        Some("NewCorrection"),
        "Counter",
    ),
    with_query(
        op(
            "get",
            "/api/v1/plans",
            "Maintenance plans with their schedules",
            User,
            None,
            "PlanPage",
        ),
        &[
            ("q", "text in the title"),
            ("state", "ok, due or overdue"),
            ("equipment_id", "only this equipment's"),
            ("limit", "page size"),
            ("offset", "skip this many"),
        ],
    ),
    op(
        "post",
        "/api/v1/plans",
        "Add a plan by calendar, running hours or both",
        Role("chief_engineer"),
        Some("NewPlan"),
        "Plan",
    ),
    op(
        "get",
        "/api/v1/plans/{id}",
        "One plan with its schedule",
        User,
        None,
        "ScheduledPlan",
    ),
    op(
        "patch",
        "/api/v1/plans/{id}",
        "Change a plan",
        Role("chief_engineer"),
        Some("PlanPatch"),
        "Plan",
    ),
    op(
        "post",
        "/api/v1/plans/{id}/postpone",
        "Postpone a plan, with a reason",
        Role("chief_engineer"),
        Some("NewPostponement"),
        "Plan",
    ),
    op(
        "get",
        "/api/v1/due",
        "Plans due or overdue, overdue first",
        User,
        None,
        "[ScheduledPlan]",
    ),
    op(
        "post",
        "/api/v1/faults/{id}/attachments",
        "Attach a photo or file to a fault (multipart: `file`, optional `caption`)",
        User,
        Some("Upload"),
        "Attachment",
    ),
    op(
        "post",
        "/api/v1/work-orders/{id}/attachments",
        "Attach a photo or file to a work order (multipart: `file`, optional `caption`)",
        Role("engineer"),
        Some("Upload"),
        "Attachment",
    ),
    op(
        "get",
        "/api/v1/attachments/{sha256}",
        "An attached file's bytes, with its checked content type",
        User,
        None,
        "File",
    ),
    with_query(
        op(
            "get",
            "/api/v1/parts",
            "Spare parts with their stock, a page at a time",
            User,
            None,
            "PartPage",
        ),
        &[
            (
                "q",
                "text in the part number, name, maker or maker's reference",
            ),
            (
                "below_minimum",
                "true: only parts below their minimum stock",
            ),
            ("equipment_id", "only parts that fit this equipment"),
            ("limit", "page size"),
            ("offset", "skip this many"),
        ],
    ),
    op(
        "post",
        "/api/v1/parts",
        "Add a spare part",
        Role("chief_engineer"),
        Some("NewPart"),
        "Part",
    ),
    op(
        "get",
        "/api/v1/parts/{id}",
        "One part with stock per location and its movements",
        User,
        None,
        "Part",
    ),
    op(
        "patch",
        "/api/v1/parts/{id}",
        "Change a part's details",
        Role("chief_engineer"),
        Some("PartPatch"),
        "Part",
    ),
    op(
        "post",
        "/api/v1/parts/{id}/movements",
        "A receipt (engineer), or an adjustment with a reason (chief engineer)",
        Role("engineer"),
        Some("NewMovement"),
        "Part",
    ),
    with_query(
        op(
            "get",
            "/api/v1/requisitions",
            "Requisitions, newest first",
            User,
            None,
            "RequisitionPage",
        ),
        &[
            ("status", "draft or submitted"),
            ("limit", "page size"),
            ("offset", "skip this many"),
        ],
    ),
    op(
        "post",
        "/api/v1/requisitions",
        "Draft a requisition",
        Role("chief_engineer"),
        Some("NewRequisition"),
        "Requisition",
    ),
    op(
        "post",
        "/api/v1/requisitions/draft-from-minimum",
        "Draft a requisition of every part below its minimum stock",
        Role("chief_engineer"),
        None,
        "Requisition",
    ),
    op(
        "get",
        "/api/v1/requisitions/{id}",
        "One requisition",
        User,
        None,
        "Requisition",
    ),
    op(
        "patch",
        "/api/v1/requisitions/{id}",
        "Change a draft requisition",
        Role("chief_engineer"),
        Some("RequisitionPatch"),
        "Requisition",
    ),
    op(
        "post",
        "/api/v1/requisitions/{id}/submit",
        "Submit a draft requisition; final",
        Role("chief_engineer"),
        None,
        "Requisition",
    ),
    op(
        "get",
        "/api/v1/users",
        "The users on board and their roles",
        Role("master"),
        None,
        "[User]",
    ),
    op(
        "post",
        "/api/v1/users",
        "Add a user",
        Role("master"),
        Some("NewUser"),
        "User",
    ),
    op(
        "patch",
        "/api/v1/users/{username}",
        "Change a user's role or password; ends their sessions",
        Role("master"),
        Some("UserPatch"),
        "User",
    ),
    op(
        "delete",
        "/api/v1/users/{username}",
        "Remove a user (not oneself)",
        Role("master"),
        None,
        "Empty",
    ),
];

/// What each component is. The core shapes are spelled out; the others
/// are described by name and are what the matching `GET` returns.
fn components() -> Map<String, Value> {
    let mut c = Map::new();
    let text = |d: &str| json!({"type": "string", "description": d});
    c.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error", "detail"],
            "properties": {
                "error": text("a stable code such as `bad_request` or `forbidden`"),
                "detail": text("what was wrong, for a person"),
            }
        }),
    );
    c.insert(
        "Credentials".into(),
        json!({
            "type": "object",
            "required": ["username", "password"],
            "properties": {"username": text("login name"), "password": text("password")}
        }),
    );
    c.insert(
        "Session".into(),
        json!({
            "type": "object",
            "properties": {
                "token": text("the bearer token for `Authorization: Bearer <token>`"),
                "username": text("who logged in"),
                "role": text("their role"),
            }
        }),
    );
    let severity = json!({"type": "string", "enum": ["low", "medium", "high", "critical"]});
    let status = json!({"type": "string", "enum": ["open", "in_progress", "resolved", "closed"]});
    c.insert(
        "NewFault".into(),
        json!({
            "type": "object",
            "required": ["title", "severity"],
            "properties": {
                "title": text("one line saying what is wrong (1 to 200 characters)"),
                "description": text("what was seen"),
                "equipment": text("the affected equipment"),
                "severity": severity,
            }
        }),
    );
    c.insert(
        "FaultPatch".into(),
        json!({
            "type": "object",
            "description": "Only the fields given change.",
            "properties": {
                "title": text("new title"),
                "description": text("new description"),
                "equipment": text("new equipment"),
                "severity": severity,
                "status": status,
                "cause": text("why it happened (engineer and up)"),
                "corrective_action": text("what was done to put it right (engineer and up); needed before the status becomes resolved"),
            }
        }),
    );
    c.insert(
        "Upload".into(),
        json!({
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "JPEG, PNG, WebP, GIF, PDF or plain text, checked by its content"},
                "caption": text("what the photo or file shows"),
            }
        }),
    );
    c.insert(
        "NewComment".into(),
        json!({
            "type": "object",
            "required": ["text"],
            "properties": {"text": text("the comment")}
        }),
    );
    c.insert("Empty".into(), json!({"description": "No body"}));
    for o in OPERATIONS {
        for name in o
            .body
            .into_iter()
            .chain([o.answer.trim_matches(['[', ']'])])
        {
            c.entry(name.to_owned()).or_insert_with(|| {
                json!({
                    "type": "object",
                    "description": format!("A {name}, as the API's JSON carries it."),
                })
            });
        }
    }
    c
}

fn schema_ref(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(item) => {
            json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}})
        }
        None => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

fn error_response(what: &str) -> Value {
    json!({
        "description": what,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut parameters: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(o.query.iter().map(|(name, what)| {
            json!({"name": name, "in": "query", "required": false, "description": what, "schema": {"type": "string"}})
        }));
        let success = o.status.to_string();
        let mut responses = Map::new();
        if o.answer == "Empty" {
            responses.insert("204".into(), json!({"description": "Done"}));
        } else if o.answer == "File" {
            responses.insert(
                success,
                json!({
                    "description": "The file, with its stored content type",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}
                }),
            );
        } else {
            responses.insert(
                success,
                json!({
                    "description": "Done",
                    "content": {"application/json": {"schema": schema_ref(o.answer)}}
                }),
            );
        }
        responses.insert("400".into(), error_response("The request is malformed"));
        responses.insert(
            "422".into(),
            error_response("A field's value is not allowed"),
        );
        if o.access != Public {
            responses.insert("401".into(), error_response("Not logged in"));
        }
        if let Role(_) = o.access {
            responses.insert(
                "403".into(),
                error_response("The user's role may not do this"),
            );
        }
        if o.path.contains('{') {
            responses.insert("404".into(), error_response("No such item"));
        }
        if o.body.is_some() {
            responses.insert(
                "413".into(),
                error_response("The body is over the size limit"),
            );
        }
        let mut operation = json!({
            "summary": o.summary,
            "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": parameters,
            "responses": responses,
        });
        match o.access {
            Public => operation["security"] = json!([]),
            User => {}
            Role(r) => operation["x-keelson-role"] = json!(r),
        }
        if let Some(body) = o.body {
            let media = if body == "Upload" {
                "multipart/form-data"
            } else {
                "application/json"
            };
            operation["requestBody"] = json!({
                "required": true,
                "content": {media: {"schema": schema_ref(body)}}
            });
        }
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Keelson ship API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of the Keelson edge agent on board. Log in with \
                POST /api/v1/session, then send `Authorization: Bearer <token>`. \
                Errors are JSON: {\"error\": code, \"detail\": text}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components(),
        },
        "paths": paths,
    })
}

/// The route of the document itself.
pub fn router() -> Router<EdgeState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_appears_once_and_every_reference_resolves() {
        let doc = document();
        let mut seen = std::collections::HashSet::new();
        for o in OPERATIONS {
            assert!(
                seen.insert((o.method, o.path)),
                "{} {} twice",
                o.method,
                o.path
            );
            assert!(doc["paths"][o.path][o.method].is_object());
        }
        let text = doc.to_string();
        for name in text.split("#/components/schemas/").skip(1) {
            let name = &name[..name.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} is referenced but not defined"
            );
        }
    }
}
