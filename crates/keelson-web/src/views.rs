//! Pieces of pages the ship and the shore both show: faults, work orders,
//! spare parts, requisitions, comments and a record's history.

use crate::layout::when;
use keelson_model::{
    Comment, Fault, HistoryEntry, Part, Requisition, RequisitionStatus, Severity, Status,
    WorkOrder, WorkStatus,
};
use maud::{Markup, html};

/// A fault's severity as a coloured label.
pub fn severity(s: Severity) -> Markup {
    html! { span class={ "pill sev-" (s.as_str()) } { (s.as_str()) } }
}

/// A fault's status as a coloured label.
pub fn status(s: Status) -> Markup {
    html! { span class={ "pill st-" (s.as_str()) } { (s.label()) } }
}

/// A table of faults; `href` gives each fault's page.
pub fn fault_table(faults: &[Fault], href: impl Fn(&Fault) -> String) -> Markup {
    html! {
        @if faults.is_empty() {
            p.muted { "No faults." }
        } @else {
            table {
                thead { tr {
                    th { "Fault" } th { "Severity" } th { "Status" }
                    th.opt { "Equipment" } th.opt { "Reported by" } th.opt { "Updated" }
                } }
                tbody {
                    @for f in faults {
                        tr {
                            td { a href=(href(f)) { (f.title) } }
                            td { (severity(f.severity)) }
                            td { (status(f.status)) }
                            td.opt { (f.equipment) }
                            td.opt { (f.reporter) }
                            td.opt { (when(f.updated_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// A fault's facts and description.
pub fn fault_details(f: &Fault) -> Markup {
    html! {
        div.card {
            dl.facts {
                dt { "Severity" } dd { (severity(f.severity)) }
                dt { "Status" } dd { (status(f.status)) }
                dt { "Equipment" } dd { @if f.equipment.is_empty() { span.muted { "—" } } @else { (f.equipment) } }
                dt { "Reported by" } dd { (f.reporter) " on " (when(f.created_at)) }
                dt { "Last change" } dd { (when(f.updated_at)) }
            }
            @if !f.description.is_empty() {
                h2 { "Description" }
                p style="white-space: pre-wrap" { (f.description) }
            }
            @if !f.cause.is_empty() {
                h2 { "Cause" }
                p style="white-space: pre-wrap" { (f.cause) }
            }
            @if !f.corrective_action.is_empty() {
                h2 { "Corrective action" }
                p style="white-space: pre-wrap" { (f.corrective_action) }
            }
        }
    }
}

/// A fault's comment thread with a form to add one (`action` is the form's
/// target; `None` shows the thread only).
pub fn comments(f: &Fault, action: Option<&str>) -> Markup {
    comment_thread(&f.comments, action)
}

/// A comment thread with a form to add one (`action` is the form's target;
/// `None` shows the thread only).
pub fn comment_thread(comments: &[Comment], action: Option<&str>) -> Markup {
    html! {
        h2 { "Comments (" (comments.len()) ")" }
        @if comments.is_empty() {
            p.muted { "No comments yet." }
        }
        ul.comments {
            @for c in comments {
                li class=@if c.author.ends_with("@shore") { "shore" } {
                    div.meta { strong { (c.author) } " · " (when(c.at)) }
                    div style="white-space: pre-wrap" { (c.text) }
                }
            }
        }
        @if let Some(action) = action {
            form.stack method="post" action=(action) {
                label { "Add a comment" textarea name="text" required maxlength="5000" {} }
                div { button type="submit" { "Post comment" } }
            }
        }
    }
}

/// A work order's status as a coloured label.
pub fn work_status(s: WorkStatus) -> Markup {
    html! { span class={ "pill st-" (s.as_str()) } { (s.label()) } }
}

fn dash(s: &str) -> Markup {
    html! { @if s.is_empty() { span.muted { "—" } } @else { (s) } }
}

/// A work order's facts, description, sign-offs and work log; `equipment`
/// is how the page names (and perhaps links) its equipment.
pub fn work_order_details(w: &WorkOrder, equipment: Markup) -> Markup {
    html! {
        div.card {
            dl.facts {
                dt { "Status" } dd { (work_status(w.status)) }
                dt { "Equipment" } dd { (equipment) }
                dt { "Assignee" } dd { (dash(&w.assignee)) }
                dt { "Hours spent" } dd { (format!("{:.1}", w.hours_spent)) }
                dt { "Opened by" } dd { (w.created_by) " on " (when(w.created_at)) }
                dt { "Last change" } dd { (when(w.updated_at)) }
            }
            @if !w.description.is_empty() {
                h2 { "Description" }
                p style="white-space: pre-wrap" { (w.description) }
            }
            @if !w.work_done.is_empty() {
                h2 { "Work done" }
                p style="white-space: pre-wrap" { (w.work_done) }
            }
        }
        @for s in &w.sign_offs {
            p.flash role="status" {
                strong { "Signed off" } " by " (s.author) " on " (when(s.at))
                @if !s.note.is_empty() { ": " (s.note) }
            }
        }
        h2 { "Work log" }
        @if w.entries.is_empty() {
            p.muted { "No work recorded yet." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Who" } th { "Work" } th { "Hours" } } }
                tbody {
                    @for e in &w.entries {
                        tr {
                            td { (when(e.at)) }
                            td { (e.author) }
                            td style="white-space: pre-wrap" { (e.text) }
                            td { (format!("{:.1}", e.hours)) }
                        }
                    }
                }
            }
        }
    }
}

/// A quantity as a person writes it: up to three decimals, no trailing
/// zeros.
pub fn qty(q: f64) -> String {
    let s = format!("{q:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A part's total stock with its unit, marked when below the minimum.
pub fn stock(p: &Part) -> Markup {
    html! {
        (qty(p.total)) " " (p.unit)
        @if p.below_minimum { " " span.pill.sev-high { "below minimum" } }
    }
}

/// A table of spare parts; `href` is where each part's number links, if
/// anywhere.
pub fn part_table(parts: &[Part], href: impl Fn(&Part) -> Option<String>) -> Markup {
    html! {
        @if parts.is_empty() {
            p.muted { "No spare parts." }
        } @else {
            table {
                thead { tr { th { "Part number" } th { "Name" } th { "Stock" } th.opt { "Minimum" } th.opt { "Locations" } th.opt { "Maker" } } }
                tbody {
                    @for p in parts {
                        tr {
                            td { @match href(p) {
                                Some(h) => { a href=(h) { (p.number) } }
                                None => { (p.number) }
                            } }
                            td { (p.name) }
                            td { (stock(p)) }
                            td.opt { (qty(p.min_stock)) }
                            td.opt {
                                @for (i, s) in p.stock.iter().enumerate() {
                                    @if i > 0 { br; }
                                    (s.location) ": " (qty(s.quantity))
                                }
                            }
                            td.opt { (p.maker) @if !p.maker_ref.is_empty() { " " span.muted { (p.maker_ref) } } }
                        }
                    }
                }
            }
        }
    }
}

/// The spare parts a work order used, from its work entries; `parts` names
/// them where known and `href` links them.
pub fn parts_used(w: &WorkOrder, parts: &[Part], href: impl Fn(&Part) -> String) -> Markup {
    let used: Vec<_> = w
        .entries
        .iter()
        .flat_map(|e| e.parts.iter().map(move |u| (e, u)))
        .collect();
    html! {
        @if !used.is_empty() {
            h2 { "Parts used" }
            table {
                thead { tr { th { "Part" } th { "Quantity" } th.opt { "From" } th.opt { "When" } } }
                tbody {
                    @for (e, u) in used {
                        @let part = parts.iter().find(|p| p.id == u.part_id);
                        tr {
                            td { @match part {
                                Some(p) => { a href=(href(p)) { (p.number) } " " (p.name) }
                                None => { span.muted { (u.part_id) } }
                            } }
                            td { (qty(u.quantity)) @if let Some(p) = part { " " (p.unit) } }
                            td.opt { (u.location) }
                            td.opt { (when(e.at)) " · " (e.author) }
                        }
                    }
                }
            }
        }
    }
}

/// A table of requisitions; `href` is where each links, if anywhere;
/// `parts` names the parts of their lines.
pub fn requisition_table(
    list: &[Requisition],
    parts: &[Part],
    href: impl Fn(&Requisition) -> Option<String>,
) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "No requisitions." }
        } @else {
            table {
                thead { tr { th { "Drafted" } th { "Status" } th { "Lines" } th.opt { "By" } th.opt { "Note" } th.opt { "Office" } } }
                tbody {
                    @for r in list {
                        tr {
                            td { @match href(r) {
                                Some(h) => { a href=(h) { (when(r.created_at)) } }
                                None => { (when(r.created_at)) }
                            } }
                            td { (requisition_status(r.status)) }
                            td {
                                @for (i, l) in r.lines.iter().enumerate() {
                                    @if i > 0 { br; }
                                    (qty(l.quantity)) " × "
                                    @match parts.iter().find(|p| p.id == l.part_id) {
                                        Some(p) => { (p.number) " " (p.name) }
                                        None => { span.muted { (l.part_id) } }
                                    }
                                }
                            }
                            td.opt { (r.created_by) }
                            td.opt { (r.note) }
                            td.opt { @if let Some(d) = r.decisions.last() {
                                (d.by) " on " (when(d.at)) @if !d.note.is_empty() { ": " (d.note) }
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// A requisition's status as a coloured label.
pub fn requisition_status(s: RequisitionStatus) -> Markup {
    let class = match s {
        RequisitionStatus::Draft => "pill st-in_progress",
        RequisitionStatus::Submitted => "pill st-open",
        RequisitionStatus::Approved => "pill st-closed",
        RequisitionStatus::Rejected => "pill st-resolved",
    };
    html! { span class=(class) { (s.label()) } }
}

/// A record's audit trail: every change with who made it and when.
pub fn history(entries: &[HistoryEntry]) -> Markup {
    html! {
        h2 { "History" }
        @if entries.is_empty() {
            p.muted { "No changes recorded." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Who" } th.opt { "Operations" } th.opt { "Change" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { @if let Some(at) = e.at { (when(at)) } @else { span.muted { "unknown" } } }
                            td { @if let Some(a) = &e.author { (a) } @else { span.muted { "unknown" } } }
                            td.opt { (e.ops) }
                            td.opt { code { (e.hash.get(..12).unwrap_or(&e.hash)) } }
                        }
                    }
                }
            }
        }
    }
}

/// The links between the pages of a list: page `page_no` (from 1)
/// of `total` items at `per_page` a page; `link` gives a page's address.
pub fn pager(page_no: u32, total: u64, per_page: u32, link: impl Fn(u32) -> String) -> Markup {
    let pages = total.div_ceil(u64::from(per_page.max(1))).max(1);
    html! {
        nav.pager aria-label="Pages" {
            @if page_no > 1 { a href=(link(page_no - 1)) rel="prev" { "← Previous" } " " }
            span.muted { "Page " (page_no) " of " (pages) " · " (total) " in all" }
            @if u64::from(page_no) < pages { " " a href=(link(page_no + 1)) rel="next" { "Next →" } }
        }
    }
}
