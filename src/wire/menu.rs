//! A branch's configuration as managers send it and every device reads it.

use std::collections::BTreeMap;

use rail_actors::ids::{CategoryId, ItemId, StationId, TableId};
use rail_actors::menu;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema;

/// What a station does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    /// Prepares food or drink (grill, fryer, cold, bar, pastry).
    #[default]
    Cooking,
    /// The expeditor: sees every ticket of an order and sends it out.
    Expo,
}

/// A kitchen station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Station {
    #[schema(value_type = schema::StationId)]
    pub id: StationId,
    #[schema(schema_with = schema::name)]
    pub name: String,
    #[serde(default)]
    pub kind: StationKind,
    /// Tickets it works on at once, 1 to 50 (4 when not given): fire by prep time shares the
    /// work ahead of it between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 50)]
    pub lanes: Option<u16>,
}

/// A menu category and the stations its items go to unless an item says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    #[schema(value_type = schema::CategoryId)]
    pub id: CategoryId,
    #[schema(schema_with = schema::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schema::routes)]
    pub stations: Vec<StationId>,
}

/// A menu item. Its own `stations`, when given, replace its category's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    #[schema(value_type = schema::ItemId)]
    pub id: ItemId,
    #[schema(schema_with = schema::name)]
    pub name: String,
    #[schema(value_type = schema::CategoryId)]
    pub category: CategoryId,
    #[serde(default)]
    #[schema(schema_with = schema::routes)]
    pub stations: Vec<StationId>,
    #[serde(default)]
    pub price_cents: u32,
    /// Seconds it takes to prepare, 1 to 7200, until the kitchen's own times are learned: a
    /// fire holds its quicker tickets so that all finish together (`starts_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 7200)]
    pub prep_seconds: Option<u32>,
    /// The choices a line of it offers (at most 10 groups). A line names the options it
    /// chooses among its `modifiers`; a line that leaves a required group unchosen is refused
    /// (`422 modifier_required`), as is one that chooses more than a group's `max`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 10)]
    pub modifier_groups: Vec<ModifierGroup>,
}

/// A set of options a line of an item chooses from ("Doneness": rare, medium, well done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifierGroup {
    /// Unique within the item: 1 to 40 letters, digits, `-` or `_`.
    #[schema(min_length = 1, max_length = 40, pattern = "^[A-Za-z0-9_-]{1,40}$")]
    pub id: String,
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// A line of the item must choose at least one of its options.
    #[serde(default)]
    pub required: bool,
    /// At most this many of its options on one line (any number when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 30)]
    pub max: Option<u8>,
    #[schema(min_items = 1, max_items = 30)]
    pub options: Vec<ModifierOption>,
}

/// One choice of a modifier group: a line names it among its modifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifierOption {
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// What it adds to the line's price.
    #[serde(default)]
    pub price_cents: u32,
    /// It tells the kitchen of an allergy: kitchen screens highlight it.
    #[serde(default)]
    pub allergen: bool,
}

/// How long a ticket may be out before screens warn, and before it is late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 14400)]
    pub warning_after_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 14400)]
    pub late_after_seconds: Option<u32>,
}

impl From<&menu::ModifierGroup> for ModifierGroup {
    fn from(g: &menu::ModifierGroup) -> Self {
        Self {
            id: g.id.clone(),
            name: g.name.clone(),
            required: g.required,
            max: g.max,
            options: g
                .options
                .iter()
                .map(|o| ModifierOption {
                    name: o.name.clone(),
                    price_cents: o.price_cents,
                    allergen: o.allergen,
                })
                .collect(),
        }
    }
}

impl From<ModifierGroup> for menu::ModifierGroup {
    fn from(g: ModifierGroup) -> Self {
        Self {
            id: g.id,
            name: g.name,
            required: g.required,
            max: g.max,
            options: g
                .options
                .into_iter()
                .map(|o| menu::ModifierOption {
                    name: o.name,
                    price_cents: o.price_cents,
                    allergen: o.allergen,
                })
                .collect(),
        }
    }
}

/// Where orders are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    #[default]
    DineIn,
    Counter,
    Takeaway,
    Delivery,
    Qr,
}

/// A table, or a virtual one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Table {
    #[schema(value_type = schema::TableId)]
    pub id: TableId,
    #[schema(schema_with = schema::name)]
    pub name: String,
    #[serde(default)]
    pub kind: TableKind,
}

/// Everything a manager sets for one branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchConfig {
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// Offset of the branch's local time from UTC, used when no `time_zone` is given; the
    /// ticket number restarts each local day.
    #[serde(default)]
    #[schema(minimum = -720, maximum = 840)]
    pub utc_offset_minutes: i32,
    /// The branch's IANA time zone (`Europe/Istanbul`). When given, ticket numbers restart at
    /// its local midnight, daylight-saving changes included, and `utc_offset_minutes` is not
    /// used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Europe/Istanbul", min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
    /// Seconds a fired ticket may wait for a screen of its station to acknowledge it (a
    /// `seen` frame) before expo and managers are told (`ticket_unseen`); 10 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 600)]
    pub unseen_after_seconds: Option<u16>,
    /// Seconds from fire to bump after which a ticket is late in speed of service (`GET
    /// .../stations/{station}/speed`, `rail_tickets_late_total`) and when screens show it late; 480 (8 minutes) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 14400)]
    pub late_after_seconds: Option<u32>,
    /// Seconds from fire after which screens show a ticket as getting old; 300 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 14400)]
    pub warning_after_seconds: Option<u32>,
    /// Other warning and late times for the orders of a source (`delivery`, `takeaway`, ...):
    /// screens colour those tickets by them and speed of service counts them late by them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, Timers>)]
    pub timers_by_source: BTreeMap<super::OrderSource, Timers>,
    /// Course pacing: when expo sends a course, the order's next held course fires by itself
    /// this many seconds later (shown as `next_course` and a `course_scheduled` event until
    /// then); without it, courses wait for the waiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 7200)]
    pub course_pace_seconds: Option<u32>,
    /// Exactly one expo station and at least one cooking station.
    #[schema(min_items = 2, max_items = 64)]
    pub stations: Vec<Station>,
    #[schema(max_items = 500)]
    pub categories: Vec<Category>,
    #[schema(max_items = 5000)]
    pub items: Vec<MenuItem>,
    #[schema(max_items = 2000)]
    pub tables: Vec<Table>,
}

pub fn station_kind(kind: menu::StationKind) -> StationKind {
    match kind {
        menu::StationKind::Cooking => StationKind::Cooking,
        menu::StationKind::Expo => StationKind::Expo,
    }
}

impl From<&menu::BranchConfig> for BranchConfig {
    fn from(c: &menu::BranchConfig) -> Self {
        Self {
            name: c.name.clone(),
            utc_offset_minutes: c.utc_offset_minutes,
            time_zone: c.time_zone.clone(),
            unseen_after_seconds: c.unseen_after_seconds,
            late_after_seconds: c.late_after_seconds,
            warning_after_seconds: c.warning_after_seconds,
            timers_by_source: c
                .timers_by_source
                .iter()
                .map(|(s, t)| {
                    let timers = Timers {
                        warning_after_seconds: t.warning_after_seconds,
                        late_after_seconds: t.late_after_seconds,
                    };
                    ((*s).into(), timers)
                })
                .collect(),
            course_pace_seconds: c.course_pace_seconds,
            stations: c
                .stations
                .iter()
                .map(|s| Station {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    kind: station_kind(s.kind),
                    lanes: s.lanes,
                })
                .collect(),
            categories: c
                .categories
                .iter()
                .map(|k| Category {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    stations: k.stations.clone(),
                })
                .collect(),
            items: c
                .items
                .iter()
                .map(|i| MenuItem {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    category: i.category.clone(),
                    stations: i.stations.clone(),
                    price_cents: i.price_cents,
                    prep_seconds: i.prep_seconds,
                    modifier_groups: i.modifier_groups.iter().map(Into::into).collect(),
                })
                .collect(),
            tables: c
                .tables
                .iter()
                .map(|t| Table {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    kind: match t.kind {
                        menu::TableKind::DineIn => TableKind::DineIn,
                        menu::TableKind::Counter => TableKind::Counter,
                        menu::TableKind::Takeaway => TableKind::Takeaway,
                        menu::TableKind::Delivery => TableKind::Delivery,
                        menu::TableKind::Qr => TableKind::Qr,
                    },
                })
                .collect(),
        }
    }
}

impl From<BranchConfig> for menu::BranchConfig {
    fn from(c: BranchConfig) -> Self {
        Self {
            name: c.name,
            utc_offset_minutes: c.utc_offset_minutes,
            time_zone: c.time_zone,
            unseen_after_seconds: c.unseen_after_seconds,
            late_after_seconds: c.late_after_seconds,
            warning_after_seconds: c.warning_after_seconds,
            timers_by_source: c
                .timers_by_source
                .into_iter()
                .map(|(s, t)| {
                    let timers = menu::Timers {
                        warning_after_seconds: t.warning_after_seconds,
                        late_after_seconds: t.late_after_seconds,
                    };
                    (s.into(), timers)
                })
                .collect(),
            course_pace_seconds: c.course_pace_seconds,
            stations: c
                .stations
                .into_iter()
                .map(|s| menu::Station {
                    id: s.id,
                    name: s.name,
                    kind: match s.kind {
                        StationKind::Cooking => menu::StationKind::Cooking,
                        StationKind::Expo => menu::StationKind::Expo,
                    },
                    lanes: s.lanes,
                })
                .collect(),
            categories: c
                .categories
                .into_iter()
                .map(|k| menu::Category {
                    id: k.id,
                    name: k.name,
                    stations: k.stations,
                })
                .collect(),
            items: c
                .items
                .into_iter()
                .map(|i| menu::MenuItem {
                    id: i.id,
                    name: i.name,
                    category: i.category,
                    stations: i.stations,
                    price_cents: i.price_cents,
                    prep_seconds: i.prep_seconds,
                    modifier_groups: i.modifier_groups.into_iter().map(Into::into).collect(),
                })
                .collect(),
            tables: c
                .tables
                .into_iter()
                .map(|t| menu::Table {
                    id: t.id,
                    name: t.name,
                    kind: match t.kind {
                        TableKind::DineIn => menu::TableKind::DineIn,
                        TableKind::Counter => menu::TableKind::Counter,
                        TableKind::Takeaway => menu::TableKind::Takeaway,
                        TableKind::Delivery => menu::TableKind::Delivery,
                        TableKind::Qr => menu::TableKind::Qr,
                    },
                })
                .collect(),
        }
    }
}
