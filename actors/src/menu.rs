//! A branch's configuration: its stations, menu, routing rules and tables, and its 86 list.
//!
//! The configuration is validated once when it is set; afterwards routing an item is a lookup.
//! These types read from JSON for fixtures and tools (tests, benchmarks); what devices send and
//! read is `src/wire`'s, converted at the edge.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::error::{invalid, CommandError};
use crate::ids::{CategoryId, ItemId, StationId, TableId};

const NAME_MAX: usize = 100;
/// Seconds a ticket may wait unacknowledged by its station's screens, unless the branch says.
pub const DEFAULT_UNSEEN_AFTER: u16 = 10;
/// Seconds from fire to bump after which a ticket counts as late, unless the branch says.
pub const DEFAULT_LATE_AFTER: u32 = 480;
/// Seconds from fire after which a screen warns that a ticket is getting old.
pub const DEFAULT_WARNING_AFTER: u32 = 300;
/// Modifier groups an item may have, and options a group may offer.
const MAX_GROUPS: usize = 10;
const MAX_OPTIONS: usize = 30;
/// Tickets a station works on at once, unless it says.
pub const DEFAULT_LANES: u16 = 4;

/// What a station does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    /// Prepares food or drink (grill, fryer, cold, bar, pastry).
    #[default]
    Cooking,
    /// The expeditor: sees every ticket of an order and sends it out.
    Expo,
}

/// A kitchen station.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    #[serde(default)]
    pub kind: StationKind,
    /// Tickets it works on at once (its work ahead is shared between them); 4 by default.
    #[serde(default)]
    pub lanes: Option<u16>,
}

/// A menu category and the stations its items go to unless an item says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    #[serde(default)]
    pub stations: Vec<StationId>,
}

/// A menu item. Its own `stations`, when given, replace its category's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    pub id: ItemId,
    pub name: String,
    pub category: CategoryId,
    #[serde(default)]
    pub stations: Vec<StationId>,
    #[serde(default)]
    pub price_cents: u32,
    /// Seconds it takes to prepare, until the kitchen's own times are learned: a fire holds
    /// its quicker tickets so that all finish together.
    #[serde(default)]
    pub prep_seconds: Option<u32>,
    /// The choices a line of it offers ("Doneness": rare, medium, well done). A line names
    /// its chosen options among its modifiers; a required group must be chosen from.
    #[serde(default)]
    pub modifier_groups: Vec<ModifierGroup>,
}

/// A set of options a line of an item chooses from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifierGroup {
    pub id: String,
    pub name: String,
    /// A line of the item must choose at least one of its options.
    #[serde(default)]
    pub required: bool,
    /// At most this many of its options on one line (all of them when not given).
    #[serde(default)]
    pub max: Option<u8>,
    pub options: Vec<ModifierOption>,
}

/// One choice of a modifier group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifierOption {
    pub name: String,
    #[serde(default)]
    pub price_cents: u32,
    /// Choosing it tells the kitchen of an allergy: screens highlight it.
    #[serde(default)]
    pub allergen: bool,
}

impl ModifierGroup {
    fn validate(&self, item: &ItemId) -> Result<(), CommandError> {
        let ok_id = !self.id.is_empty()
            && self.id.len() <= 40
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_id {
            return Err(invalid(format!(
                "item '{item}': a modifier group id is 1 to 40 letters, digits, '-' or '_'"
            )));
        }
        check_name("modifier group", &self.name)?;
        if self.options.is_empty() || self.options.len() > MAX_OPTIONS {
            return Err(invalid(format!(
                "item '{item}', group '{}': 1 to {MAX_OPTIONS} options",
                self.id
            )));
        }
        for option in &self.options {
            check_name("modifier option", &option.name)?;
        }
        unique("option", self.options.iter().map(|o| &o.name))?;
        if let Some(max) = self.max {
            if max == 0 || usize::from(max) > self.options.len() {
                return Err(invalid(format!(
                    "item '{item}', group '{}': max must be 1 to its number of options",
                    self.id
                )));
            }
        }
        Ok(())
    }

    /// Refuses a line's modifiers that miss this required group or choose too many of it.
    fn check(&self, item: &ItemId, modifiers: &[String]) -> Result<(), CommandError> {
        let chosen = self
            .options
            .iter()
            .filter(|o| modifiers.iter().any(|m| m == &o.name))
            .count();
        if self.required && chosen == 0 {
            return Err(CommandError::ModifierRequired {
                item: item.clone(),
                group: self.name.clone(),
            });
        }
        if let Some(max) = self.max {
            if chosen > usize::from(max) {
                return Err(invalid(format!(
                    "item '{item}': at most {max} of '{}'",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

impl MenuItem {
    /// Refuses a line's modifiers unless every required group is chosen from, each within its
    /// `max`.
    pub fn check_modifiers(&self, modifiers: &[String]) -> Result<(), CommandError> {
        self.modifier_groups
            .iter()
            .try_for_each(|g| g.check(&self.id, modifiers))
    }
}

/// How long a ticket may be out before screens warn and before it is late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    #[serde(default)]
    pub warning_after_seconds: Option<u32>,
    #[serde(default)]
    pub late_after_seconds: Option<u32>,
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderSource {
    DineIn,
    Counter,
    Takeaway,
    Delivery,
    Qr,
}

impl OrderSource {
    /// How many sources there are.
    pub const COUNT: usize = 5;

    /// Its place among the sources, for tables indexed by source.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DineIn => "dine_in",
            Self::Counter => "counter",
            Self::Takeaway => "takeaway",
            Self::Delivery => "delivery",
            Self::Qr => "qr",
        }
    }
}

impl From<TableKind> for OrderSource {
    /// An order's source when it names none: its table's kind.
    fn from(kind: TableKind) -> Self {
        match kind {
            TableKind::DineIn => Self::DineIn,
            TableKind::Counter => Self::Counter,
            TableKind::Takeaway => Self::Takeaway,
            TableKind::Delivery => Self::Delivery,
            TableKind::Qr => Self::Qr,
        }
    }
}

/// Where orders are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub id: TableId,
    pub name: String,
    #[serde(default)]
    pub kind: TableKind,
}

/// Everything a manager sets for one branch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchConfig {
    pub name: String,
    /// Offset of the branch's local time from UTC, for a branch without a time zone (the
    /// configurations written before time zones).
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// The branch's IANA time zone (`Europe/Istanbul`); when set it decides the local day
    /// (ticket numbers restart at local midnight, daylight-saving changes included) and
    /// `utc_offset_minutes` is not used.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Seconds a ticket may wait for a screen of its station to acknowledge it before expo
    /// and managers are told (`DEFAULT_UNSEEN_AFTER` when not set).
    #[serde(default)]
    pub unseen_after_seconds: Option<u16>,
    /// Seconds from fire to bump after which a ticket is late, for speed of service
    /// (`DEFAULT_LATE_AFTER` when not set).
    #[serde(default)]
    pub late_after_seconds: Option<u32>,
    /// Seconds from fire after which screens warn that a ticket is getting old
    /// (`DEFAULT_WARNING_AFTER` when not set).
    #[serde(default)]
    pub warning_after_seconds: Option<u32>,
    /// Other warning and late times for orders of a source (delivery drivers wait longer).
    #[serde(default)]
    pub timers_by_source: BTreeMap<OrderSource, Timers>,
    /// Course pacing: when expo sends a course, the order's next held course fires by itself
    /// this many seconds later (none: courses wait for the waiter).
    #[serde(default)]
    pub course_pace_seconds: Option<u32>,
    /// Exactly one expo station and at least one cooking station.
    pub stations: Vec<Station>,
    pub categories: Vec<Category>,
    pub items: Vec<MenuItem>,
    pub tables: Vec<Table>,
}

/// An IANA time zone name, or why it is not one.
fn parse_zone(name: &str) -> Result<Tz, CommandError> {
    name.parse::<Tz>().map_err(|_| {
        invalid(format!(
            "time_zone '{name}' is not an IANA time zone name (such as Europe/Istanbul)"
        ))
    })
}

fn check_name(what: &str, name: &str) -> Result<(), CommandError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > NAME_MAX {
        return Err(invalid(format!(
            "{what} name must be 1 to {NAME_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} name must not hold control characters"
        )));
    }
    Ok(())
}

fn unique<'a, T: std::hash::Hash + Eq + std::fmt::Display + 'a>(
    what: &str,
    ids: impl Iterator<Item = &'a T>,
) -> Result<(), CommandError> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(invalid(format!("{what} '{id}' is listed twice")));
        }
    }
    Ok(())
}

impl BranchConfig {
    /// Checks the whole configuration; a branch only ever holds a valid one.
    pub fn validate(&self) -> Result<(), CommandError> {
        check_name("branch", &self.name)?;
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(invalid("utc_offset_minutes must be between -720 and 840"));
        }
        if let Some(zone) = &self.time_zone {
            parse_zone(zone)?;
        }
        if matches!(self.unseen_after_seconds, Some(0) | Some(601..)) {
            return Err(invalid("unseen_after_seconds must be 1 to 600"));
        }
        if matches!(self.late_after_seconds, Some(0) | Some(14_401..)) {
            return Err(invalid("late_after_seconds must be 1 to 14400"));
        }
        if matches!(self.warning_after_seconds, Some(0) | Some(14_401..)) {
            return Err(invalid("warning_after_seconds must be 1 to 14400"));
        }
        for (source, timers) in &self.timers_by_source {
            let bad = |s: Option<u32>| matches!(s, Some(0) | Some(14_401..));
            if bad(timers.warning_after_seconds) || bad(timers.late_after_seconds) {
                return Err(invalid(format!(
                    "timers_by_source.{}: seconds must be 1 to 14400",
                    source.as_str()
                )));
            }
        }
        if matches!(self.course_pace_seconds, Some(0) | Some(7_201..)) {
            return Err(invalid("course_pace_seconds must be 1 to 7200"));
        }
        if self.stations.len() > 64 || self.categories.len() > 500 {
            return Err(invalid("at most 64 stations and 500 categories"));
        }
        if self.items.len() > 5000 || self.tables.len() > 2000 {
            return Err(invalid("at most 5000 items and 2000 tables"));
        }
        unique("station", self.stations.iter().map(|s| &s.id))?;
        unique("category", self.categories.iter().map(|c| &c.id))?;
        unique("item", self.items.iter().map(|i| &i.id))?;
        unique("table", self.tables.iter().map(|t| &t.id))?;
        for s in &self.stations {
            check_name("station", &s.name)?;
            if matches!(s.lanes, Some(0) | Some(51..)) {
                return Err(invalid(format!(
                    "station '{}': lanes must be 1 to 50",
                    s.id
                )));
            }
        }
        for t in &self.tables {
            check_name("table", &t.name)?;
        }
        let expo = self
            .stations
            .iter()
            .filter(|s| s.kind == StationKind::Expo)
            .count();
        if expo != 1 {
            return Err(invalid("a branch needs exactly one expo station"));
        }
        let cooking: HashSet<&StationId> = self
            .stations
            .iter()
            .filter(|s| s.kind == StationKind::Cooking)
            .map(|s| &s.id)
            .collect();
        if cooking.is_empty() {
            return Err(invalid("a branch needs at least one cooking station"));
        }
        let check_routes = |owner: &str, stations: &[StationId]| -> Result<(), CommandError> {
            unique("station", stations.iter())?;
            for s in stations {
                if !cooking.contains(s) {
                    return Err(invalid(format!(
                        "{owner} routes to '{s}', which is not a cooking station of this branch"
                    )));
                }
            }
            Ok(())
        };
        let mut categories = HashMap::new();
        for c in &self.categories {
            check_name("category", &c.name)?;
            check_routes(&format!("category '{}'", c.id), &c.stations)?;
            categories.insert(&c.id, c);
        }
        for item in &self.items {
            check_name("item", &item.name)?;
            if matches!(item.prep_seconds, Some(0) | Some(7_201..)) {
                return Err(invalid(format!(
                    "item '{}': prep_seconds must be 1 to 7200",
                    item.id
                )));
            }
            check_routes(&format!("item '{}'", item.id), &item.stations)?;
            if item.modifier_groups.len() > MAX_GROUPS {
                return Err(invalid(format!(
                    "item '{}': at most {MAX_GROUPS} modifier groups",
                    item.id
                )));
            }
            unique("modifier group", item.modifier_groups.iter().map(|g| &g.id))?;
            for group in &item.modifier_groups {
                group.validate(&item.id)?;
            }
            let Some(category) = categories.get(&item.category) else {
                return Err(invalid(format!(
                    "item '{}' names unknown category '{}'",
                    item.id, item.category
                )));
            };
            if item.stations.is_empty() && category.stations.is_empty() {
                return Err(invalid(format!(
                    "item '{}' routes to no station: give it or its category stations",
                    item.id
                )));
            }
        }
        Ok(())
    }
}

/// From how long between fire and bump a ticket is late: the branch's time, or its source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateAfter {
    pub default: std::time::Duration,
    by_source: [Option<std::time::Duration>; OrderSource::COUNT],
}

impl Default for LateAfter {
    fn default() -> Self {
        Self {
            default: std::time::Duration::from_secs(DEFAULT_LATE_AFTER.into()),
            by_source: [None; OrderSource::COUNT],
        }
    }
}

impl LateAfter {
    /// The late time of a ticket of this source (orders from before sources: the branch's).
    pub fn of(&self, source: Option<OrderSource>) -> std::time::Duration {
        source
            .and_then(|s| self.by_source[s.index()])
            .unwrap_or(self.default)
    }
}

/// A menu item with the stations it is routed to, resolved once.
#[derive(Debug, Clone)]
pub struct RoutedItem {
    pub item: MenuItem,
    pub stations: Vec<StationId>,
}

/// A branch's live configuration: validated config, routing index and the 86 list.
#[derive(Debug, Clone)]
pub struct Branch {
    config: BranchConfig,
    items: HashMap<ItemId, RoutedItem>,
    tables: HashMap<TableId, Table>,
    stations: HashMap<StationId, Station>,
    expo: StationId,
    eighty_sixed: BTreeSet<ItemId>,
    /// Items with a limited count: the lines that take them reserve it.
    limited: BTreeSet<ItemId>,
    zone: Option<Tz>,
    /// Some item has a prep time.
    prep_times: bool,
    /// The devices tokens were issued to, and pairing codes not yet used.
    devices: crate::devices::DeviceBook,
}

impl Branch {
    /// Builds the live branch from a configuration, which must validate.
    pub fn new(config: BranchConfig) -> Result<Self, CommandError> {
        config.validate()?;
        let categories: HashMap<_, _> = config.categories.iter().map(|c| (&c.id, c)).collect();
        let items = config
            .items
            .iter()
            .map(|item| {
                let stations = if item.stations.is_empty() {
                    categories[&item.category].stations.clone()
                } else {
                    item.stations.clone()
                };
                let routed = RoutedItem {
                    item: item.clone(),
                    stations,
                };
                (item.id.clone(), routed)
            })
            .collect();
        let tables = config
            .tables
            .iter()
            .map(|t| (t.id.clone(), t.clone()))
            .collect();
        let stations: HashMap<_, _> = config
            .stations
            .iter()
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        let expo = config
            .stations
            .iter()
            .find(|s| s.kind == StationKind::Expo)
            .map(|s| s.id.clone())
            .expect("validated: one expo station");
        let zone = config.time_zone.as_deref().map(parse_zone).transpose()?;
        let prep_times = config.items.iter().any(|i| i.prep_seconds.is_some());
        Ok(Self {
            config,
            items,
            tables,
            stations,
            expo,
            eighty_sixed: BTreeSet::new(),
            limited: BTreeSet::new(),
            zone,
            prep_times,
            devices: Default::default(),
        })
    }

    /// Replaces the configuration, keeping the 86 list and the limited counts for items still
    /// on the menu.
    pub fn reconfigure(&mut self, config: BranchConfig) -> Result<(), CommandError> {
        let mut next = Branch::new(config)?;
        next.eighty_sixed = self
            .eighty_sixed
            .iter()
            .filter(|i| next.items.contains_key(*i))
            .cloned()
            .collect();
        next.limited = self
            .limited
            .iter()
            .filter(|i| next.items.contains_key(*i))
            .cloned()
            .collect();
        next.devices = std::mem::take(&mut self.devices);
        *self = next;
        Ok(())
    }

    pub fn devices(&self) -> &crate::devices::DeviceBook {
        &self.devices
    }

    pub fn devices_mut(&mut self) -> &mut crate::devices::DeviceBook {
        &mut self.devices
    }

    pub fn config(&self) -> &BranchConfig {
        &self.config
    }

    /// How long a ticket may wait for a screen of its station to acknowledge it.
    pub fn unseen_after(&self) -> std::time::Duration {
        let seconds = self
            .config
            .unseen_after_seconds
            .unwrap_or(DEFAULT_UNSEEN_AFTER);
        std::time::Duration::from_secs(seconds.into())
    }

    /// How long after expo sends a course the next one fires by itself, when paced.
    pub fn course_pace(&self) -> Option<chrono::TimeDelta> {
        self.config
            .course_pace_seconds
            .map(|s| chrono::TimeDelta::seconds(s.into()))
    }

    /// From how long between fire and bump a ticket is late, for every source.
    pub fn late_after(&self) -> LateAfter {
        let default = self.config.late_after_seconds.unwrap_or(DEFAULT_LATE_AFTER);
        let mut late = LateAfter {
            default: std::time::Duration::from_secs(default.into()),
            by_source: [None; OrderSource::COUNT],
        };
        for (source, timers) in &self.config.timers_by_source {
            late.by_source[source.index()] = timers
                .late_after_seconds
                .map(|s| std::time::Duration::from_secs(s.into()));
        }
        late
    }

    /// The branch's local date at an instant: by its time zone, else by its fixed offset.
    pub fn local_day(&self, at: DateTime<Utc>) -> NaiveDate {
        match self.zone {
            Some(zone) => at.with_timezone(&zone).date_naive(),
            None => (at + Duration::minutes(self.config.utc_offset_minutes.into())).date_naive(),
        }
    }

    pub fn item(&self, id: &ItemId) -> Result<&RoutedItem, CommandError> {
        self.items
            .get(id)
            .ok_or_else(|| CommandError::UnknownItem(id.clone()))
    }

    pub fn table(&self, id: &TableId) -> Result<&Table, CommandError> {
        self.tables
            .get(id)
            .ok_or_else(|| CommandError::UnknownTable(id.clone()))
    }

    pub fn station(&self, id: &StationId) -> Result<&Station, CommandError> {
        self.stations
            .get(id)
            .ok_or_else(|| CommandError::UnknownStation(id.clone()))
    }

    pub fn stations(&self) -> impl Iterator<Item = &Station> {
        self.config.stations.iter()
    }

    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.config.tables.iter()
    }

    /// Whether any item has a prep time (fire by prep time).
    pub fn has_prep_times(&self) -> bool {
        self.prep_times
    }

    /// Tickets a station works on at once.
    pub fn lanes(&self, station: &StationId) -> u16 {
        self.stations
            .get(station)
            .and_then(|s| s.lanes)
            .unwrap_or(DEFAULT_LANES)
    }

    pub fn expo(&self) -> &StationId {
        &self.expo
    }

    pub fn is_86(&self, item: &ItemId) -> bool {
        self.eighty_sixed.contains(item)
    }

    pub fn eighty_sixed(&self) -> &BTreeSet<ItemId> {
        &self.eighty_sixed
    }

    /// Whether the item has a limited count, which lines taking it reserve.
    pub fn is_limited(&self, item: &ItemId) -> bool {
        self.limited.contains(item)
    }

    pub fn limited(&self) -> &BTreeSet<ItemId> {
        &self.limited
    }

    pub fn set_limited(&mut self, item: &ItemId, limited: bool) {
        if limited {
            self.limited.insert(item.clone());
        } else {
            self.limited.remove(item);
        }
    }

    pub fn set_86(&mut self, item: &ItemId, out: bool) {
        if out {
            self.eighty_sixed.insert(item.clone());
        } else {
            self.eighty_sixed.remove(item);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_config() -> BranchConfig {
        serde_json::from_value(serde_json::json!({
            "name": "Test Kitchen",
            "stations": [
                {"id": "grill", "name": "Grill"},
                {"id": "fryer", "name": "Fryer"},
                {"id": "cold", "name": "Cold"},
                {"id": "expo", "name": "Expo", "kind": "expo"}
            ],
            "categories": [
                {"id": "mains", "name": "Mains", "stations": ["grill"]},
                {"id": "sides", "name": "Sides", "stations": ["fryer"]},
                {"id": "starters", "name": "Starters", "stations": ["cold"]}
            ],
            "items": [
                {"id": "burger", "name": "Burger", "category": "mains", "stations": ["grill", "fryer"]},
                {"id": "steak", "name": "Steak", "category": "mains"},
                {"id": "fries", "name": "Fries", "category": "sides"},
                {"id": "salad", "name": "Salad", "category": "starters"}
            ],
            "tables": [
                {"id": "t1", "name": "Table 1"},
                {"id": "t2", "name": "Table 2"},
                {"id": "counter", "name": "Counter", "kind": "counter"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn routes_items_by_item_then_category() {
        let b = Branch::new(sample_config()).unwrap();
        let burger = b.item(&ItemId::parse("burger").unwrap()).unwrap();
        assert_eq!(burger.stations.len(), 2);
        let steak = b.item(&ItemId::parse("steak").unwrap()).unwrap();
        assert_eq!(steak.stations, vec![StationId::parse("grill").unwrap()]);
        assert_eq!(b.expo().as_str(), "expo");
    }

    #[test]
    fn the_local_day_follows_the_time_zone_across_daylight_saving() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut c = sample_config();
        c.time_zone = Some("Europe/Istanbul".into());
        let istanbul = Branch::new(c).unwrap();
        assert_eq!(
            istanbul.local_day(at("2026-12-01T20:59:59Z")),
            day("2026-12-01")
        );
        assert_eq!(
            istanbul.local_day(at("2026-12-01T21:00:00Z")),
            day("2026-12-02")
        );

        // London is UTC in winter and UTC+1 in summer: local midnight moves with it.
        let mut c = sample_config();
        c.time_zone = Some("Europe/London".into());
        let london = Branch::new(c).unwrap();
        assert_eq!(
            london.local_day(at("2026-01-15T23:30:00Z")),
            day("2026-01-15")
        );
        assert_eq!(
            london.local_day(at("2026-07-15T23:30:00Z")),
            day("2026-07-16")
        );
        // The night the clocks go forward (29 March 2026, 01:00 UTC) and back (25 October).
        assert_eq!(
            london.local_day(at("2026-03-28T23:59:00Z")),
            day("2026-03-28")
        );
        assert_eq!(
            london.local_day(at("2026-03-29T23:00:00Z")),
            day("2026-03-30")
        );
        assert_eq!(
            london.local_day(at("2026-10-24T22:59:00Z")),
            day("2026-10-24")
        );
        assert_eq!(
            london.local_day(at("2026-10-24T23:00:00Z")),
            day("2026-10-25")
        );
        assert_eq!(
            london.local_day(at("2026-10-25T23:59:00Z")),
            day("2026-10-25")
        );

        // Without a zone the fixed offset decides, as configurations before zones did.
        let mut c = sample_config();
        c.utc_offset_minutes = 180;
        let fixed = Branch::new(c).unwrap();
        assert_eq!(
            fixed.local_day(at("2026-12-01T21:00:00Z")),
            day("2026-12-02")
        );

        let mut c = sample_config();
        c.time_zone = Some("Mars/Olympus".into());
        assert!(matches!(Branch::new(c), Err(CommandError::Invalid(_))));
    }

    #[test]
    fn refuses_broken_configs() {
        let mut c = sample_config();
        c.stations.retain(|s| s.kind != StationKind::Expo);
        assert!(matches!(
            Branch::new(c).unwrap_err(),
            CommandError::Invalid(_)
        ));

        let mut c = sample_config();
        c.items[0].stations = vec![StationId::parse("expo").unwrap()];
        assert!(Branch::new(c).is_err());

        let mut c = sample_config();
        c.categories[0].stations.clear();
        assert!(Branch::new(c).is_err(), "steak would route nowhere");

        let mut c = sample_config();
        c.tables.push(c.tables[0].clone());
        assert!(Branch::new(c).is_err());
    }
}
