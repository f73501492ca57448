//! Attachments as both sites show and serve them: the list with image
//! thumbnails and links, the upload form, and the response that serves a
//! file.

use crate::layout::{human_bytes, when};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keelson_model::Attachment;
use keelson_store::FileMeta;
use maud::{Markup, html};

/// The types the upload form offers; the server checks the bytes anyway.
pub const ACCEPT: &str = "image/*,application/pdf,text/plain";

/// A record's attachments: a thumbnail for each image and a link for every
/// file. `href` gives a file's address, or `None` while the file itself has
/// not arrived (ashore, before the files lane brought it). With an
/// `action`, the upload form follows, for files of at most `max_bytes`.
pub fn attachment_list(
    list: &[Attachment],
    href: impl Fn(&Attachment) -> Option<String>,
    action: Option<(&str, u64)>,
) -> Markup {
    html! {
        h2 { "Photos and files (" (list.len()) ")" }
        @if list.is_empty() {
            p.muted { "No photos or files yet." }
        }
        ul.attachments {
            @for a in list {
                li {
                    @match href(a) {
                        Some(url) => {
                            @if a.content_type.is_image() {
                                a href=(url) { img src=(url) width="192" alt=(caption_or_name(a)) loading="lazy"; }
                            }
                            a href=(url) { (a.file_name) }
                        }
                        None => { (a.file_name) " " span.muted { "(the file is still on its way from the vessel)" } }
                    }
                    @if !a.caption.is_empty() { div { (a.caption) } }
                    div.meta { (human_bytes(a.size)) " · " (a.author) " · " (when(a.at)) }
                }
            }
        }
        @if let Some((action, max_bytes)) = action {
            form.stack method="post" action=(action) enctype="multipart/form-data" {
                label { "Add a photo or file (JPEG, PNG, WebP, GIF, PDF or text, at most " (human_bytes(max_bytes)) ")"
                    input type="file" name="file" required accept=(ACCEPT); }
                label { "Caption" input name="caption" maxlength="500"; }
                div { button type="submit" { "Attach" } }
            }
        }
    }
}

fn caption_or_name(a: &Attachment) -> &str {
    if a.caption.is_empty() {
        &a.file_name
    } else {
        &a.caption
    }
}

/// Serves a stored file with its checked type. Browsers are told not to
/// guess another type (`nosniff`), images are shown inline and everything
/// else is offered as a download, and the file may be cached for good:
/// its address is its hash.
pub fn file_response(meta: &FileMeta, bytes: Vec<u8>) -> Response {
    let disposition = format!(
        "{}; filename=\"{}\"",
        if meta.content_type.is_image() {
            "inline"
        } else {
            "attachment"
        },
        header_safe_name(&meta.file_name)
    );
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(meta.content_type.header_value()),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A file name fit for a quoted header parameter: printable ASCII other
/// than quotes and backslashes; anything else becomes `_`.
fn header_safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_model::ContentType;

    #[test]
    fn files_are_served_with_their_type_and_never_sniffed() {
        let meta = FileMeta {
            content_type: ContentType::Pdf,
            size: 4,
            file_name: "Manual \"ME\" ü.pdf".into(),
        };
        let resp = file_response(&meta, b"%PDF".to_vec());
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "application/pdf");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            h[header::CONTENT_DISPOSITION],
            "attachment; filename=\"Manual _ME_ _.pdf\""
        );
        let meta = FileMeta {
            content_type: ContentType::Png,
            ..meta
        };
        let resp = file_response(&meta, vec![1]);
        assert!(
            resp.headers()[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap_or_default()
                .starts_with("inline;")
        );
    }
}
