//! Pieces of the OpenAPI schemas that a derive cannot say: the rule every free text in a body
//! follows (names, notes, modifiers, reasons), as `menu::check_name` and `order::check_text`
//! enforce it.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

/// No control character (`char::is_control`: U+0000–U+001F, U+007F–U+009F), and at least one
/// character that is neither a control nor whitespace as `str::trim` sees it (Unicode
/// `White_Space`).
pub(crate) const TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$";

/// A text of 1 to `max` characters that is not blank and holds no control character.
pub(crate) fn text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(TEXT_PATTERN))
}

/// The same text, or null.
pub fn optional_text(max: usize) -> RefOr<Schema> {
    text(max)
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .into()
}

/// At most `max_items` such texts.
pub(crate) fn texts(max: usize, max_items: usize) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(text(max))
        .max_items(Some(max_items))
        .into()
}
