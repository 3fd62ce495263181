//! What the OpenAPI document says of values a derive cannot describe: the identifiers (each a
//! named schema, with the rule its type enforces) and the free texts of a body (names, notes,
//! modifiers, reasons), as the domain checks them (`ids::check_slug`, `menu::check_name`,
//! `order::check_text`).

use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};

/// No control character (`char::is_control`: U+0000–U+001F, U+007F–U+009F), and at least one
/// character that is neither a control nor whitespace as `str::trim` sees it (Unicode
/// `White_Space`).
pub const TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$";

/// The slug rule of `ids::check_slug` as a regular expression.
const SLUG_PATTERN: &str = "^[a-z0-9_][a-z0-9_-]{0,63}$";
const SLUG_MAX: usize = 64;

/// The longest name of a station, category, item, table or branch (`menu::NAME_MAX`).
pub const NAME_MAX: usize = 100;

/// A text of 1 to `max` characters that is not blank and holds no control character.
pub fn text(max: usize) -> ObjectBuilder {
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
pub fn texts(max: usize, max_items: usize) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(text(max))
        .max_items(Some(max_items))
        .into()
}

/// A name as `menu::check_name` takes it.
pub fn name() -> RefOr<Schema> {
    text(NAME_MAX).into()
}

/// The stations a category or an item routes to: no station twice.
///
/// A `schema_with` field does not register its schemas; `StationId` is registered by
/// `Station::id`, which every configuration holds.
pub fn routes() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("StationId"))
        .unique_items(true)
        .into()
}

fn slug(kind: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(SLUG_MAX))
        .pattern(Some(SLUG_PATTERN))
        .description(Some(format!(
            "The {kind}'s id: 1 to {SLUG_MAX} lowercase letters, digits, '-' and '_', \
             not starting with '-'."
        )))
        .into()
}

fn uuid(kind: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(format!("The {kind}'s id, a UUID the engine made.")))
        .into()
}

macro_rules! id_schema {
    ($name:ident, $make:ident, $kind:literal) => {
        /// The schema of the domain identifier of the same name.
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $make($kind)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_schema!(BranchId, slug, "branch");
id_schema!(StationId, slug, "station");
id_schema!(ItemId, slug, "item");
id_schema!(CategoryId, slug, "category");
id_schema!(TableId, slug, "table");
id_schema!(OrderId, uuid, "order");
id_schema!(TicketId, uuid, "ticket");
