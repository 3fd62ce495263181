//! What a station's counters say: its all-day (REST and the `all_day` frame) and its speed of
//! service.

use rail_actors::ids::{ItemId, StationId};
use rail_actors::station::{Pace as DomainPace, SpeedOfService};
use rail_actors::subscriber::AllDayItem;
use serde::Serialize;
use utoipa::ToSchema;

use super::schema;

/// One item's count on a station's live tickets (fired, not yet bumped).
#[derive(Debug, Serialize, ToSchema)]
pub struct AllDayLine<'a> {
    #[schema(value_type = schema::ItemId)]
    pub item: &'a ItemId,
    pub name: &'a str,
    /// Portions over every live ticket, voided lines left out.
    pub quantity: u32,
    /// Live tickets that have it.
    pub tickets: u32,
}

impl<'a> From<&'a AllDayItem> for AllDayLine<'a> {
    fn from(a: &'a AllDayItem) -> Self {
        Self {
            item: &a.item,
            name: &a.name,
            quantity: a.quantity,
            tickets: a.tickets,
        }
    }
}

/// A station's all-day: every item on its live tickets, most portions first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllDay<'a> {
    #[schema(value_type = schema::StationId)]
    pub station: &'a StationId,
    pub items: Vec<AllDayLine<'a>>,
}

impl<'a> AllDay<'a> {
    pub fn new(station: &'a StationId, items: &'a [AllDayItem]) -> Self {
        Self {
            station,
            items: items.iter().map(AllDayLine::from).collect(),
        }
    }
}

/// Bumps over a window: how many, how long from fire to bump, how many late, and recalls.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pace {
    /// Tickets bumped (a ticket bumped again after a recall counts again).
    pub tickets: u32,
    /// Mean seconds from fire to bump; null without bumps.
    pub average_seconds: Option<f64>,
    /// The 90th percentile (nearest rank) of seconds from fire to bump; null without bumps.
    pub p90_seconds: Option<f64>,
    /// Bumped at or after the branch's `late_after_seconds` from their fire.
    pub late: u32,
    /// Bumped tickets recalled to the screen.
    pub recalls: u32,
}

impl From<&DomainPace> for Pace {
    fn from(p: &DomainPace) -> Self {
        Self {
            tickets: p.tickets,
            average_seconds: p.average_seconds,
            p90_seconds: p.p90_seconds,
            late: p.late,
            recalls: p.recalls,
        }
    }
}

/// One item's speed of service at a station.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPace<'a> {
    #[schema(value_type = schema::ItemId)]
    pub item: &'a ItemId,
    pub name: &'a str,
    #[serde(flatten)]
    pub pace: Pace,
}

/// How fast a station went from fire to bump over a window, overall and per item.
#[derive(Debug, Serialize, ToSchema)]
pub struct Speed<'a> {
    #[schema(value_type = schema::StationId)]
    pub station: &'a StationId,
    pub window_minutes: u64,
    #[serde(flatten)]
    pub overall: Pace,
    /// Per item, most tickets first.
    pub items: Vec<ItemPace<'a>>,
}

impl<'a> Speed<'a> {
    pub fn new(station: &'a StationId, speed: &'a SpeedOfService) -> Self {
        Self {
            station,
            window_minutes: speed.window.as_secs() / 60,
            overall: (&speed.overall).into(),
            items: speed
                .items
                .iter()
                .map(|(item, name, pace)| ItemPace {
                    item,
                    name,
                    pace: pace.into(),
                })
                .collect(),
        }
    }
}
