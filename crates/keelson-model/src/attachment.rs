//! Attachments: photos and other files attached to a fault or a work order.
//!
//! A record holds only an attachment's metadata; the bytes live beside the
//! database, named by their SHA-256, and travel to the shore after the
//! metadata. What kind of file an attachment is comes from its leading
//! bytes, never from the name or the type a browser declared: a file must
//! be one of the types in [`ContentType`], and a declared type that
//! disagrees with the bytes is refused.

use crate::fault::{ValidationError, check_text};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest file name kept, in characters.
pub const MAX_FILE_NAME: usize = 200;
/// Longest caption, in characters.
pub const MAX_CAPTION: usize = 500;
/// Largest file any record may name, whatever a site's own limit: a
/// sanity bound on what a peer may claim.
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 30;

/// A file attached to a fault or a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Unique id of the attachment (a UUID).
    pub id: String,
    /// The file's name as the user's device gave it, without any folder.
    pub file_name: String,
    /// The file's type, as found in its leading bytes.
    pub content_type: ContentType,
    /// The file's size in bytes.
    pub size: u64,
    /// The SHA-256 of the file's bytes, 64 lowercase hex digits; the name
    /// the bytes are stored under on both sites.
    pub sha256: String,
    /// What the photo or file shows; may be empty.
    pub caption: String,
    /// Who attached it.
    pub author: String,
    /// When it was attached.
    pub at: DateTime<Utc>,
}

/// What a user attaches, once the file is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// The file's name as sent; folders and control characters are
    /// dropped by [`NewAttachment::validated`].
    pub file_name: String,
    /// The type its bytes were found to be.
    pub content_type: ContentType,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256 in lowercase hex.
    pub sha256: String,
    /// The caption; may be empty.
    pub caption: String,
}

impl NewAttachment {
    /// Cleans the file name and checks every field.
    pub fn validated(self) -> Result<NewAttachment, ValidationError> {
        validate_sha256(&self.sha256)?;
        validate_size(self.size)?;
        let caption = validate_caption(&self.caption)?;
        Ok(NewAttachment {
            file_name: clean_file_name(&self.file_name),
            caption,
            ..self
        })
    }
}

/// The file types an attachment may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentType {
    /// A JPEG photo.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// A PNG image.
    #[serde(rename = "image/png")]
    Png,
    /// A WebP image.
    #[serde(rename = "image/webp")]
    Webp,
    /// A GIF image.
    #[serde(rename = "image/gif")]
    Gif,
    /// A PDF document.
    #[serde(rename = "application/pdf")]
    Pdf,
    /// Plain UTF-8 text.
    #[serde(rename = "text/plain")]
    Text,
}

impl ContentType {
    /// Every allowed type.
    pub const ALL: [ContentType; 6] = [
        ContentType::Jpeg,
        ContentType::Png,
        ContentType::Webp,
        ContentType::Gif,
        ContentType::Pdf,
        ContentType::Text,
    ];

    /// The MIME type.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Jpeg => "image/jpeg",
            ContentType::Png => "image/png",
            ContentType::Webp => "image/webp",
            ContentType::Gif => "image/gif",
            ContentType::Pdf => "application/pdf",
            ContentType::Text => "text/plain",
        }
    }

    /// The value of a `Content-Type` header serving a file of this type.
    pub fn header_value(self) -> &'static str {
        match self {
            ContentType::Text => "text/plain; charset=utf-8",
            other => other.as_str(),
        }
    }

    /// Whether a browser shows it as a picture (served inline, shown as a
    /// thumbnail).
    pub fn is_image(self) -> bool {
        matches!(
            self,
            ContentType::Jpeg | ContentType::Png | ContentType::Webp | ContentType::Gif
        )
    }

    /// The type with this MIME name.
    pub fn from_mime(mime: &str) -> Option<ContentType> {
        ContentType::ALL.into_iter().find(|t| t.as_str() == mime)
    }

    /// The type a file's bytes are, if it is one of the allowed ones. Binary
    /// types are known by their magic numbers; text is UTF-8 without control
    /// characters other than tab, line feed, carriage return and form feed.
    pub fn sniff(bytes: &[u8]) -> Option<ContentType> {
        if let Some(kind) = infer::get(bytes) {
            return ContentType::from_mime(kind.mime_type());
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let plain = !text.is_empty()
            && !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'));
        plain.then_some(ContentType::Text)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// The bytes are none of the allowed types.
    #[error(
        "files of this type cannot be attached (declared {declared}); allowed are JPEG, PNG, WebP and GIF images, PDF and plain text"
    )]
    Unsupported {
        /// The type the sender declared.
        declared: String,
    },
    /// The bytes are another type than the sender declared.
    #[error("the file was sent as {declared} but its content is {found}")]
    Mismatch {
        /// The type the sender declared.
        declared: String,
        /// The type the bytes are.
        found: ContentType,
    },
}

/// Finds the type of a file from its bytes and checks it against the type
/// its sender declared. No declared type, or the generic
/// `application/octet-stream`, declares nothing; `image/jpg` is taken for
/// `image/jpeg`, and parameters such as `charset` are ignored.
pub fn check_content(declared: Option<&str>, bytes: &[u8]) -> Result<ContentType, ContentError> {
    if bytes.is_empty() {
        return Err(ContentError::Empty);
    }
    let declared = declared
        .map(|d| {
            d.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|d| !d.is_empty() && d != "application/octet-stream");
    let Some(found) = ContentType::sniff(bytes) else {
        return Err(ContentError::Unsupported {
            declared: declared.unwrap_or_else(|| "no type".into()),
        });
    };
    match declared {
        Some(d) if d != found.as_str() && !(d == "image/jpg" && found == ContentType::Jpeg) => {
            Err(ContentError::Mismatch { declared: d, found })
        }
        _ => Ok(found),
    }
}

/// The last component of a path as a browser may send it (some send the
/// whole path, with either slash), without control characters, trimmed and
/// cut to [`MAX_FILE_NAME`] characters; `attachment` when nothing is left.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "attachment".into()
    } else {
        cleaned.to_owned()
    }
}

/// Checks a stored file name: what [`clean_file_name`] leaves unchanged.
pub fn validate_file_name(name: &str) -> Result<(), ValidationError> {
    if clean_file_name(name) == name {
        Ok(())
    } else {
        Err(ValidationError::new(
            "file_name",
            format!(
                "must be 1 to {MAX_FILE_NAME} characters without folders or control characters"
            ),
        ))
    }
}

/// Checks a caption and returns it trimmed; an empty caption is allowed.
pub fn validate_caption(caption: &str) -> Result<String, ValidationError> {
    if caption.trim().is_empty() {
        Ok(String::new())
    } else {
        check_text("caption", caption, 1, MAX_CAPTION)
    }
}

/// Checks a SHA-256 in lowercase hex. Both sites use it as a file name, so
/// nothing else may pass.
pub fn validate_sha256(sha256: &str) -> Result<(), ValidationError> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ValidationError::new(
            "sha256",
            "must be 64 lowercase hex digits",
        ))
    }
}

/// Checks an attachment's size: at least a byte, at most
/// [`MAX_ATTACHMENT_BYTES`].
pub fn validate_size(size: u64) -> Result<(), ValidationError> {
    if (1..=MAX_ATTACHMENT_BYTES).contains(&size) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "size",
            format!("must be 1 to {MAX_ATTACHMENT_BYTES} bytes"),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0";
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

    #[test]
    fn types_are_found_in_the_leading_bytes() {
        assert_eq!(ContentType::sniff(PNG), Some(ContentType::Png));
        assert_eq!(ContentType::sniff(JPEG), Some(ContentType::Jpeg));
        assert_eq!(ContentType::sniff(PDF), Some(ContentType::Pdf));
        assert_eq!(ContentType::sniff(GIF), Some(ContentType::Gif));
        assert_eq!(ContentType::sniff(WEBP), Some(ContentType::Webp));
        assert_eq!(
            ContentType::sniff("Lube oil 3.2 bar\r\n\tok – ÿ\n".as_bytes()),
            Some(ContentType::Text)
        );
        // An executable, an archive, binary noise and text with a NUL are
        // none of the allowed types.
        assert_eq!(ContentType::sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0"), None);
        assert_eq!(ContentType::sniff(b"PK\x03\x04\x14\0\0\0\x08\0"), None);
        assert_eq!(ContentType::sniff(&[0xde, 0xad, 0xbe, 0xef, 0xff]), None);
        assert_eq!(ContentType::sniff(b"text\0with a nul"), None);
    }

    #[test]
    fn declared_types_must_match_the_bytes() {
        assert_eq!(
            check_content(Some("image/png"), PNG).unwrap(),
            ContentType::Png
        );
        assert_eq!(check_content(None, PNG).unwrap(), ContentType::Png);
        assert_eq!(
            check_content(Some("application/octet-stream"), JPEG).unwrap(),
            ContentType::Jpeg
        );
        assert_eq!(
            check_content(Some("image/jpg"), JPEG).unwrap(),
            ContentType::Jpeg
        );
        assert_eq!(
            check_content(Some("Text/Plain; charset=utf-8"), b"hello").unwrap(),
            ContentType::Text
        );
        assert_eq!(
            check_content(Some("image/png"), b"not a picture at all"),
            Err(ContentError::Mismatch {
                declared: "image/png".into(),
                found: ContentType::Text
            })
        );
        assert_eq!(
            check_content(Some("image/png"), JPEG),
            Err(ContentError::Mismatch {
                declared: "image/png".into(),
                found: ContentType::Jpeg
            })
        );
        assert!(matches!(
            check_content(Some("image/png"), b"\x7fELF\x02\x01\x01\0\0\0"),
            Err(ContentError::Unsupported { .. })
        ));
        assert_eq!(
            check_content(Some("image/png"), b""),
            Err(ContentError::Empty)
        );
    }

    #[test]
    fn file_names_lose_folders_and_control_characters() {
        assert_eq!(clean_file_name("pump.jpg"), "pump.jpg");
        assert_eq!(clean_file_name("C:\\fakepath\\pump.jpg"), "pump.jpg");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(clean_file_name(" .. "), "attachment");
        assert_eq!(clean_file_name(""), "attachment");
        assert_eq!(
            clean_file_name(&"x".repeat(500)).chars().count(),
            MAX_FILE_NAME
        );
        assert!(validate_file_name("pump.jpg").is_ok());
        assert!(validate_file_name("a/b.jpg").is_err());
        assert!(validate_sha256(&"ab".repeat(32)).is_ok());
        assert!(validate_sha256(&"AB".repeat(32)).is_err());
        assert!(validate_sha256("../x").is_err());
    }

    #[test]
    fn content_types_are_named_by_their_mime_names() {
        for t in ContentType::ALL {
            assert_eq!(ContentType::from_mime(t.as_str()), Some(t));
        }
        assert_eq!(ContentType::from_mime("application/zip"), None);
    }
}
