//! Pieces of pages the ship and the shore both show: faults and comments.

use crate::layout::when;
use keelson_model::{Fault, Severity, Status};
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
        }
    }
}

/// A fault's comment thread with a form to add one (`action` is the form's
/// target; `None` shows the thread only).
pub fn comments(f: &Fault, action: Option<&str>) -> Markup {
    html! {
        h2 { "Comments (" (f.comments.len()) ")" }
        @if f.comments.is_empty() {
            p.muted { "No comments yet." }
        }
        ul.comments {
            @for c in &f.comments {
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
