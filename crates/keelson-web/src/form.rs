//! Reading the fields of plain HTML forms. A form posts every field as
//! text, and an empty field means "not given", so each reader takes the
//! raw text and answers a 400 that names the field and says what it takes.

use crate::AppError;
use std::str::FromStr;

/// What a whole-days field takes, for [`optional`] and [`required`].
pub const DAYS: &str = "a whole number of days such as 30";

/// The field `field` read as a `T`, or `None` when it was left empty.
/// `takes` completes "must be …", for example "a number such as 1.5".
pub fn optional<T: FromStr>(field: &str, value: &str, takes: &str) -> Result<Option<T>, AppError> {
    match value.trim() {
        "" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("{field}: must be {takes}"))),
    }
}

/// [`optional`] for a field that must be filled in.
pub fn required<T: FromStr>(field: &str, value: &str, takes: &str) -> Result<T, AppError> {
    optional(field, value, takes)?
        .ok_or_else(|| AppError::BadRequest(format!("{field}: must be {takes}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_absent_and_bad_text_names_the_field() {
        assert_eq!(optional::<f64>("hours", "  ", "a number").ok(), Some(None));
        assert_eq!(optional::<u32>("days", " 30 ", "days").ok(), Some(Some(30)));
        let err = required::<f64>("hours", "", "a number such as 1.5").unwrap_err();
        assert_eq!(err.public_detail(), "hours: must be a number such as 1.5");
        let err = optional::<u32>("days", "-1", "a whole number").unwrap_err();
        assert_eq!(err.public_detail(), "days: must be a whole number");
    }
}
