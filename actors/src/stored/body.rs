//! Event bodies as the journal stores them (format 3), and their conversions to and from the
//! domain. Format 3 only adds to format 2 (fields that default when absent, new kinds), so a
//! format-2 body reads as format 3. These types change only with a new format (and an upcast from the one before);
//! the domain's may change freely as long as the conversions here keep up.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::devices::{DeviceRecord, PairingOffer};
use crate::event::{BranchEvent, Event, OrderEvent};
use crate::ids::{CategoryId, ItemId, LineId, OrderId, StationId, TableId, TicketId};
use crate::menu::{
    BranchConfig, Category, MenuItem, ModifierGroup, ModifierOption, Station, StationKind, Table,
    TableKind, Timers,
};
use crate::order::{
    Line, LineStatus, OrderChange, OrderSource, Restock, Ticket, TicketLine, TicketRef,
    TicketStatus,
};

/// The body of an event, by its kind.
pub(super) fn to_value(event: &Event) -> Value {
    let stored = match event {
        Event::Branch(e) => serde_json::to_value(BranchBody::from(e)),
        Event::Order(e) => serde_json::to_value(OrderBody::from(e)),
    };
    stored.expect("stored bodies serialize")
}

/// The domain event of a body of the current format; the kind says which body it is.
pub(super) fn from_value(kind: &str, body: &Value) -> Result<Event, String> {
    let event = match kind {
        "branch_configured" | "item_eighty_sixed" | "item_restored" | "item_count_set"
        | "device_issued" | "device_revoked" | "pairing_offered" | "pairing_redeemed" => {
            BranchBody::deserialize(body).map(|b| Event::Branch(b.into()))
        }
        _ => OrderBody::deserialize(body).map(|b| Event::Order(b.into())),
    };
    let event = event.map_err(|e| e.to_string())?;
    if event.kind() != kind {
        return Err(format!("a {} body stored as {kind}", event.kind()));
    }
    Ok(event)
}

// ---- the branch's configuration stream ----

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BranchBody {
    BranchConfigured {
        config: ConfigBody,
    },
    ItemEightySixed {
        item: ItemId,
    },
    ItemRestored {
        item: ItemId,
    },
    /// Format 3.
    ItemCountSet {
        item: ItemId,
        count: Option<u32>,
    },
    /// Format 3, added with device management.
    DeviceIssued {
        device: DeviceBody,
    },
    /// Format 3, added with device management.
    DeviceRevoked {
        device: String,
        at: DateTime<Utc>,
    },
    /// Format 3, added with device management.
    PairingOffered {
        code_hash: String,
        device: DeviceBody,
        expires_at: DateTime<Utc>,
    },
    /// Format 3, added with device management.
    PairingRedeemed {
        code_hash: String,
    },
}

/// A device a token was issued to, as events and snapshots store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceBody {
    device: String,
    name: String,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    station: Option<StationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<TableId>,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

impl From<&DeviceRecord> for DeviceBody {
    fn from(d: &DeviceRecord) -> Self {
        Self {
            device: d.device.clone(),
            name: d.name.clone(),
            role: d.role.clone(),
            station: d.station.clone(),
            table: d.table.clone(),
            issued_at: d.issued_at,
            expires_at: d.expires_at,
            revoked_at: d.revoked_at,
        }
    }
}

impl From<DeviceBody> for DeviceRecord {
    fn from(d: DeviceBody) -> Self {
        Self {
            device: d.device,
            name: d.name,
            role: d.role,
            station: d.station,
            table: d.table,
            issued_at: d.issued_at,
            expires_at: d.expires_at,
            revoked_at: d.revoked_at,
        }
    }
}

/// A pairing code not yet used, as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferBody {
    code_hash: String,
    device: DeviceBody,
    expires_at: DateTime<Utc>,
}

impl From<&PairingOffer> for OfferBody {
    fn from(o: &PairingOffer) -> Self {
        Self {
            code_hash: o.code_hash.clone(),
            device: (&o.device).into(),
            expires_at: o.expires_at,
        }
    }
}

impl From<OfferBody> for PairingOffer {
    fn from(o: OfferBody) -> Self {
        Self {
            code_hash: o.code_hash,
            device: o.device.into(),
            expires_at: o.expires_at,
        }
    }
}

/// A branch's configuration as stored in its events and snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigBody {
    name: String,
    utc_offset_minutes: i32,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unseen_after_seconds: Option<u16>,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    late_after_seconds: Option<u32>,
    /// Format 3, added with the screens (absent: not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warning_after_seconds: Option<u32>,
    /// Format 3, added with the screens (absent: none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    timers_by_source: BTreeMap<SourceBody, TimersBody>,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    course_pace_seconds: Option<u32>,
    stations: Vec<StationBody>,
    categories: Vec<CategoryBody>,
    items: Vec<ItemBody>,
    tables: Vec<TableBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StationBody {
    id: StationId,
    name: String,
    kind: StationKindBody,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lanes: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StationKindBody {
    Cooking,
    Expo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CategoryBody {
    id: CategoryId,
    name: String,
    stations: Vec<StationId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ItemBody {
    id: ItemId,
    name: String,
    category: CategoryId,
    stations: Vec<StationId>,
    price_cents: u32,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prep_seconds: Option<u32>,
    /// Format 3, added with the screens (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    modifier_groups: Vec<GroupBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct TimersBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warning_after_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    late_after_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GroupBody {
    id: String,
    name: String,
    required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<u8>,
    options: Vec<OptionBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OptionBody {
    name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    price_cents: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    allergen: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn group_body(g: &ModifierGroup) -> GroupBody {
    GroupBody {
        id: g.id.clone(),
        name: g.name.clone(),
        required: g.required,
        max: g.max,
        options: g
            .options
            .iter()
            .map(|o| OptionBody {
                name: o.name.clone(),
                price_cents: o.price_cents,
                allergen: o.allergen,
            })
            .collect(),
    }
}

fn group(g: GroupBody) -> ModifierGroup {
    ModifierGroup {
        id: g.id,
        name: g.name,
        required: g.required,
        max: g.max,
        options: g
            .options
            .into_iter()
            .map(|o| ModifierOption {
                name: o.name,
                price_cents: o.price_cents,
                allergen: o.allergen,
            })
            .collect(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TableBody {
    id: TableId,
    name: String,
    kind: TableKindBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TableKindBody {
    DineIn,
    Counter,
    Takeaway,
    Delivery,
    Qr,
}

impl From<&BranchEvent> for BranchBody {
    fn from(e: &BranchEvent) -> Self {
        match e {
            BranchEvent::BranchConfigured { config } => Self::BranchConfigured {
                config: config.into(),
            },
            BranchEvent::ItemEightySixed { item } => Self::ItemEightySixed { item: item.clone() },
            BranchEvent::ItemRestored { item } => Self::ItemRestored { item: item.clone() },
            BranchEvent::ItemCountSet { item, count } => Self::ItemCountSet {
                item: item.clone(),
                count: *count,
            },
            BranchEvent::DeviceIssued { device } => Self::DeviceIssued {
                device: device.into(),
            },
            BranchEvent::DeviceRevoked { device, at } => Self::DeviceRevoked {
                device: device.clone(),
                at: *at,
            },
            BranchEvent::PairingOffered { offer } => Self::PairingOffered {
                code_hash: offer.code_hash.clone(),
                device: (&offer.device).into(),
                expires_at: offer.expires_at,
            },
            BranchEvent::PairingRedeemed { code_hash } => Self::PairingRedeemed {
                code_hash: code_hash.clone(),
            },
        }
    }
}

impl From<BranchBody> for BranchEvent {
    fn from(b: BranchBody) -> Self {
        match b {
            BranchBody::BranchConfigured { config } => Self::BranchConfigured {
                config: config.into(),
            },
            BranchBody::ItemEightySixed { item } => Self::ItemEightySixed { item },
            BranchBody::ItemRestored { item } => Self::ItemRestored { item },
            BranchBody::ItemCountSet { item, count } => Self::ItemCountSet { item, count },
            BranchBody::DeviceIssued { device } => Self::DeviceIssued {
                device: device.into(),
            },
            BranchBody::DeviceRevoked { device, at } => Self::DeviceRevoked { device, at },
            BranchBody::PairingOffered {
                code_hash,
                device,
                expires_at,
            } => Self::PairingOffered {
                offer: PairingOffer {
                    code_hash,
                    device: device.into(),
                    expires_at,
                },
            },
            BranchBody::PairingRedeemed { code_hash } => Self::PairingRedeemed { code_hash },
        }
    }
}

impl From<&BranchConfig> for ConfigBody {
    fn from(c: &BranchConfig) -> Self {
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
                    let timers = TimersBody {
                        warning_after_seconds: t.warning_after_seconds,
                        late_after_seconds: t.late_after_seconds,
                    };
                    (SourceBody::from(*s), timers)
                })
                .collect(),
            course_pace_seconds: c.course_pace_seconds,
            stations: c
                .stations
                .iter()
                .map(|s| StationBody {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    kind: station_kind_body(s.kind),
                    lanes: s.lanes,
                })
                .collect(),
            categories: c
                .categories
                .iter()
                .map(|k| CategoryBody {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    stations: k.stations.clone(),
                })
                .collect(),
            items: c
                .items
                .iter()
                .map(|i| ItemBody {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    category: i.category.clone(),
                    stations: i.stations.clone(),
                    price_cents: i.price_cents,
                    prep_seconds: i.prep_seconds,
                    modifier_groups: i.modifier_groups.iter().map(group_body).collect(),
                })
                .collect(),
            tables: c
                .tables
                .iter()
                .map(|t| TableBody {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    kind: match t.kind {
                        TableKind::DineIn => TableKindBody::DineIn,
                        TableKind::Counter => TableKindBody::Counter,
                        TableKind::Takeaway => TableKindBody::Takeaway,
                        TableKind::Delivery => TableKindBody::Delivery,
                        TableKind::Qr => TableKindBody::Qr,
                    },
                })
                .collect(),
        }
    }
}

impl From<ConfigBody> for BranchConfig {
    fn from(c: ConfigBody) -> Self {
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
                    let timers = Timers {
                        warning_after_seconds: t.warning_after_seconds,
                        late_after_seconds: t.late_after_seconds,
                    };
                    (OrderSource::from(s), timers)
                })
                .collect(),
            course_pace_seconds: c.course_pace_seconds,
            stations: c
                .stations
                .into_iter()
                .map(|s| Station {
                    id: s.id,
                    name: s.name,
                    kind: station_kind(s.kind),
                    lanes: s.lanes,
                })
                .collect(),
            categories: c
                .categories
                .into_iter()
                .map(|k| Category {
                    id: k.id,
                    name: k.name,
                    stations: k.stations,
                })
                .collect(),
            items: c
                .items
                .into_iter()
                .map(|i| MenuItem {
                    id: i.id,
                    name: i.name,
                    category: i.category,
                    stations: i.stations,
                    price_cents: i.price_cents,
                    prep_seconds: i.prep_seconds,
                    modifier_groups: i.modifier_groups.into_iter().map(group).collect(),
                })
                .collect(),
            tables: c
                .tables
                .into_iter()
                .map(|t| Table {
                    id: t.id,
                    name: t.name,
                    kind: match t.kind {
                        TableKindBody::DineIn => TableKind::DineIn,
                        TableKindBody::Counter => TableKind::Counter,
                        TableKindBody::Takeaway => TableKind::Takeaway,
                        TableKindBody::Delivery => TableKind::Delivery,
                        TableKindBody::Qr => TableKind::Qr,
                    },
                })
                .collect(),
        }
    }
}

fn station_kind_body(kind: StationKind) -> StationKindBody {
    match kind {
        StationKind::Cooking => StationKindBody::Cooking,
        StationKind::Expo => StationKindBody::Expo,
    }
}

fn station_kind(kind: StationKindBody) -> StationKind {
    match kind {
        StationKindBody::Cooking => StationKind::Cooking,
        StationKindBody::Expo => StationKind::Expo,
    }
}

// ---- an order's stream ----

/// Where an order came from (format 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceBody {
    DineIn,
    Counter,
    Takeaway,
    Delivery,
    Qr,
}

impl From<OrderSource> for SourceBody {
    fn from(s: OrderSource) -> Self {
        match s {
            OrderSource::DineIn => Self::DineIn,
            OrderSource::Counter => Self::Counter,
            OrderSource::Takeaway => Self::Takeaway,
            OrderSource::Delivery => Self::Delivery,
            OrderSource::Qr => Self::Qr,
        }
    }
}

impl From<SourceBody> for OrderSource {
    fn from(s: SourceBody) -> Self {
        match s {
            SourceBody::DineIn => Self::DineIn,
            SourceBody::Counter => Self::Counter,
            SourceBody::Takeaway => Self::Takeaway,
            SourceBody::Delivery => Self::Delivery,
            SourceBody::Qr => Self::Qr,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
struct OrderBody {
    order_id: OrderId,
    table: TableId,
    #[serde(flatten)]
    change: ChangeBody,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChangeBody {
    OrderOpened {
        ticket_no: u32,
        day: NaiveDate,
        guests: Option<u16>,
        /// Format 3; absent in older orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<SourceBody>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_ref: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        priority: bool,
    },
    LinesAdded {
        lines: Vec<LineBody>,
    },
    LineVoided {
        line_id: LineId,
        reason: Option<String>,
        tickets: Vec<TicketRefBody>,
        /// Format 3.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restock: Option<RestockBody>,
    },
    CourseFired {
        fire_no: u32,
        course: Option<u8>,
        /// Format 3: the order's source, on every ticket of the fire; absent in older fires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<SourceBody>,
        #[serde(default, skip_serializing_if = "is_false")]
        priority: bool,
        tickets: Vec<FiredTicketBody>,
    },
    TicketStarted {
        ticket_id: TicketId,
        station: StationId,
    },
    TicketBumped {
        ticket_id: TicketId,
        station: StationId,
    },
    TicketRecalled {
        ticket_id: TicketId,
        station: StationId,
    },
    TicketVoided {
        ticket_id: TicketId,
        station: StationId,
    },
    ExpoReady {
        ticket_id: TicketId,
        station: StationId,
        fire_no: u32,
    },
    ExpoWaiting {
        ticket_id: TicketId,
        station: StationId,
        fire_no: u32,
    },
    OrderReady {
        fire_no: u32,
        lines: Vec<LineId>,
    },
    LinesServed {
        lines: Vec<LineId>,
    },
    /// Format 3.
    PriorityChanged {
        priority: bool,
        tickets: Vec<TicketRefBody>,
    },
    /// Format 3: the tickets whole, as they were in the order merged in.
    OrdersMerged {
        from: OrderId,
        from_table: TableId,
        lines: Vec<LineBody>,
        tickets: Vec<TicketBody>,
        fires: u32,
    },
    /// Format 3.
    MergedInto {
        into: OrderId,
    },
    /// Format 3.
    CourseScheduled {
        course: u8,
        at: DateTime<Utc>,
        stations: Vec<StationId>,
    },
    /// Format 3.
    OrderMoved {
        from: TableId,
        to: TableId,
        tickets: Vec<TicketRefBody>,
    },
    /// Format 3.
    TicketUnseen {
        ticket_id: TicketId,
        station: StationId,
        expo: StationId,
        waited_seconds: u32,
    },
    /// Format 3.
    TicketSeen {
        ticket_id: TicketId,
        station: StationId,
        expo: StationId,
    },
    OrderClosed {},
}

/// A line of an order as stored in its events and snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineBody {
    id: LineId,
    item: ItemId,
    name: String,
    quantity: u16,
    modifiers: Vec<String>,
    note: Option<String>,
    seat: Option<u16>,
    course: u8,
    status: LineStatusBody,
    fire_no: Option<u32>,
    /// Format 3.
    #[serde(default, skip_serializing_if = "is_false")]
    counted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineStatusBody {
    Held,
    Fired,
    Started,
    Ready,
    Served,
    Voided,
}

/// Portions a void gives back to a limited count (format 3).
#[derive(Serialize, Deserialize)]
struct RestockBody {
    item: ItemId,
    quantity: u16,
}

#[derive(Serialize, Deserialize)]
struct TicketRefBody {
    ticket_id: TicketId,
    station: StationId,
}

/// A ticket as its fire makes it: what the fire event does not already say.
#[derive(Serialize, Deserialize)]
struct FiredTicketBody {
    id: TicketId,
    ticket_no: u32,
    station: StationId,
    kind: StationKindBody,
    lines: Vec<FiredLineBody>,
    fired_at: DateTime<Utc>,
    /// Format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    starts_at: Option<DateTime<Utc>>,
}

/// A line on a ticket as its fire prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiredLineBody {
    line_id: LineId,
    item: ItemId,
    name: String,
    quantity: u16,
    modifiers: Vec<String>,
    note: Option<String>,
    seat: Option<u16>,
    course: u8,
}

impl From<&OrderEvent> for OrderBody {
    fn from(e: &OrderEvent) -> Self {
        Self {
            order_id: e.order_id,
            table: e.table.clone(),
            change: ChangeBody::from(&e.change),
        }
    }
}

impl From<OrderBody> for OrderEvent {
    fn from(b: OrderBody) -> Self {
        let change = b.change.into_change(b.order_id, &b.table);
        Self {
            order_id: b.order_id,
            table: b.table,
            change,
        }
    }
}

impl From<&OrderChange> for ChangeBody {
    fn from(c: &OrderChange) -> Self {
        let refs = |tickets: &[TicketRef]| {
            tickets
                .iter()
                .map(|t| TicketRefBody {
                    ticket_id: t.ticket_id,
                    station: t.station.clone(),
                })
                .collect()
        };
        match c {
            OrderChange::OrderOpened {
                ticket_no,
                day,
                guests,
                source,
                external_ref,
                priority,
            } => Self::OrderOpened {
                ticket_no: *ticket_no,
                day: *day,
                guests: *guests,
                source: source.map(SourceBody::from),
                external_ref: external_ref.clone(),
                priority: *priority,
            },
            OrderChange::LinesAdded { lines } => Self::LinesAdded {
                lines: lines.iter().map(LineBody::from).collect(),
            },
            OrderChange::LineVoided {
                line_id,
                reason,
                tickets,
                restock,
            } => Self::LineVoided {
                line_id: *line_id,
                reason: reason.clone(),
                tickets: refs(tickets),
                restock: restock.as_ref().map(|r| RestockBody {
                    item: r.item.clone(),
                    quantity: r.quantity,
                }),
            },
            OrderChange::CourseFired {
                fire_no,
                course,
                priority,
                tickets,
            } => Self::CourseFired {
                fire_no: *fire_no,
                course: *course,
                source: tickets.first().and_then(|t| t.source).map(SourceBody::from),
                priority: *priority,
                tickets: tickets
                    .iter()
                    .map(|t| FiredTicketBody {
                        id: t.id,
                        ticket_no: t.ticket_no,
                        station: t.station.clone(),
                        kind: station_kind_body(t.kind),
                        lines: t.lines.iter().map(FiredLineBody::from).collect(),
                        fired_at: t.fired_at,
                        starts_at: t.starts_at,
                    })
                    .collect(),
            },
            OrderChange::TicketStarted { ticket_id, station } => Self::TicketStarted {
                ticket_id: *ticket_id,
                station: station.clone(),
            },
            OrderChange::TicketBumped { ticket_id, station } => Self::TicketBumped {
                ticket_id: *ticket_id,
                station: station.clone(),
            },
            OrderChange::TicketRecalled { ticket_id, station } => Self::TicketRecalled {
                ticket_id: *ticket_id,
                station: station.clone(),
            },
            OrderChange::TicketVoided { ticket_id, station } => Self::TicketVoided {
                ticket_id: *ticket_id,
                station: station.clone(),
            },
            OrderChange::ExpoReady {
                ticket_id,
                station,
                fire_no,
            } => Self::ExpoReady {
                ticket_id: *ticket_id,
                station: station.clone(),
                fire_no: *fire_no,
            },
            OrderChange::ExpoWaiting {
                ticket_id,
                station,
                fire_no,
            } => Self::ExpoWaiting {
                ticket_id: *ticket_id,
                station: station.clone(),
                fire_no: *fire_no,
            },
            OrderChange::OrderReady { fire_no, lines } => Self::OrderReady {
                fire_no: *fire_no,
                lines: lines.clone(),
            },
            OrderChange::LinesServed { lines } => Self::LinesServed {
                lines: lines.clone(),
            },
            OrderChange::PriorityChanged { priority, tickets } => Self::PriorityChanged {
                priority: *priority,
                tickets: refs(tickets),
            },
            OrderChange::OrdersMerged {
                from,
                from_table,
                lines,
                tickets,
                fires,
            } => Self::OrdersMerged {
                from: *from,
                from_table: from_table.clone(),
                lines: lines.iter().map(LineBody::from).collect(),
                tickets: tickets.iter().map(TicketBody::from).collect(),
                fires: *fires,
            },
            OrderChange::MergedInto { into } => Self::MergedInto { into: *into },
            OrderChange::CourseScheduled {
                course,
                at,
                stations,
            } => Self::CourseScheduled {
                course: *course,
                at: *at,
                stations: stations.clone(),
            },
            OrderChange::OrderMoved { from, to, tickets } => Self::OrderMoved {
                from: from.clone(),
                to: to.clone(),
                tickets: refs(tickets),
            },
            OrderChange::TicketUnseen {
                ticket_id,
                station,
                expo,
                waited_seconds,
            } => Self::TicketUnseen {
                ticket_id: *ticket_id,
                station: station.clone(),
                expo: expo.clone(),
                waited_seconds: *waited_seconds,
            },
            OrderChange::TicketSeen {
                ticket_id,
                station,
                expo,
            } => Self::TicketSeen {
                ticket_id: *ticket_id,
                station: station.clone(),
                expo: expo.clone(),
            },
            OrderChange::OrderClosed {} => Self::OrderClosed {},
        }
    }
}

impl ChangeBody {
    /// The domain change; a fire's tickets get back what the event says of them.
    fn into_change(self, order_id: OrderId, table: &TableId) -> OrderChange {
        let refs = |tickets: Vec<TicketRefBody>| {
            tickets
                .into_iter()
                .map(|t| TicketRef {
                    ticket_id: t.ticket_id,
                    station: t.station,
                })
                .collect()
        };
        match self {
            Self::OrderOpened {
                ticket_no,
                day,
                guests,
                source,
                external_ref,
                priority,
            } => OrderChange::OrderOpened {
                ticket_no,
                day,
                guests,
                source: source.map(OrderSource::from),
                external_ref,
                priority,
            },
            Self::LinesAdded { lines } => OrderChange::LinesAdded {
                lines: lines.into_iter().map(Line::from).collect(),
            },
            Self::LineVoided {
                line_id,
                reason,
                tickets,
                restock,
            } => OrderChange::LineVoided {
                line_id,
                reason,
                tickets: refs(tickets),
                restock: restock.map(|r| Restock {
                    item: r.item,
                    quantity: r.quantity,
                }),
            },
            Self::CourseFired {
                fire_no,
                course,
                source,
                priority,
                tickets,
            } => OrderChange::CourseFired {
                fire_no,
                course,
                priority,
                tickets: tickets
                    .into_iter()
                    .map(|t| Ticket {
                        id: t.id,
                        order_id,
                        table: table.clone(),
                        ticket_no: t.ticket_no,
                        station: t.station,
                        kind: station_kind(t.kind),
                        fire_no,
                        course,
                        lines: t
                            .lines
                            .into_iter()
                            .map(|l| l.into_ticket_line(false))
                            .collect(),
                        status: TicketStatus::New,
                        fired_at: t.fired_at,
                        started_at: None,
                        bumped_at: None,
                        parts_ready: false,
                        source: source.map(OrderSource::from),
                        priority,
                        unseen: false,
                        moved_from: None,
                        starts_at: t.starts_at,
                    })
                    .collect(),
            },
            Self::TicketStarted { ticket_id, station } => {
                OrderChange::TicketStarted { ticket_id, station }
            }
            Self::TicketBumped { ticket_id, station } => {
                OrderChange::TicketBumped { ticket_id, station }
            }
            Self::TicketRecalled { ticket_id, station } => {
                OrderChange::TicketRecalled { ticket_id, station }
            }
            Self::TicketVoided { ticket_id, station } => {
                OrderChange::TicketVoided { ticket_id, station }
            }
            Self::ExpoReady {
                ticket_id,
                station,
                fire_no,
            } => OrderChange::ExpoReady {
                ticket_id,
                station,
                fire_no,
            },
            Self::ExpoWaiting {
                ticket_id,
                station,
                fire_no,
            } => OrderChange::ExpoWaiting {
                ticket_id,
                station,
                fire_no,
            },
            Self::OrderReady { fire_no, lines } => OrderChange::OrderReady { fire_no, lines },
            Self::LinesServed { lines } => OrderChange::LinesServed { lines },
            Self::PriorityChanged { priority, tickets } => OrderChange::PriorityChanged {
                priority,
                tickets: refs(tickets),
            },
            Self::OrdersMerged {
                from,
                from_table,
                lines,
                tickets,
                fires,
            } => OrderChange::OrdersMerged {
                from,
                from_table,
                lines: lines.into_iter().map(Line::from).collect(),
                tickets: tickets.into_iter().map(Ticket::from).collect(),
                fires,
            },
            Self::MergedInto { into } => OrderChange::MergedInto { into },
            Self::CourseScheduled {
                course,
                at,
                stations,
            } => OrderChange::CourseScheduled {
                course,
                at,
                stations,
            },
            Self::OrderMoved { from, to, tickets } => OrderChange::OrderMoved {
                from,
                to,
                tickets: refs(tickets),
            },
            Self::TicketUnseen {
                ticket_id,
                station,
                expo,
                waited_seconds,
            } => OrderChange::TicketUnseen {
                ticket_id,
                station,
                expo,
                waited_seconds,
            },
            Self::TicketSeen {
                ticket_id,
                station,
                expo,
            } => OrderChange::TicketSeen {
                ticket_id,
                station,
                expo,
            },
            Self::OrderClosed {} => OrderChange::OrderClosed {},
        }
    }
}

impl From<&Line> for LineBody {
    fn from(l: &Line) -> Self {
        Self {
            id: l.id,
            item: l.item.clone(),
            name: l.name.clone(),
            quantity: l.quantity,
            modifiers: l.modifiers.clone(),
            note: l.note.clone(),
            seat: l.seat,
            course: l.course,
            status: match l.status {
                LineStatus::Held => LineStatusBody::Held,
                LineStatus::Fired => LineStatusBody::Fired,
                LineStatus::Started => LineStatusBody::Started,
                LineStatus::Ready => LineStatusBody::Ready,
                LineStatus::Served => LineStatusBody::Served,
                LineStatus::Voided => LineStatusBody::Voided,
            },
            fire_no: l.fire_no,
            counted: l.counted,
        }
    }
}

impl From<LineBody> for Line {
    fn from(l: LineBody) -> Self {
        Self {
            id: l.id,
            item: l.item,
            name: l.name,
            quantity: l.quantity,
            modifiers: l.modifiers,
            note: l.note,
            seat: l.seat,
            course: l.course,
            status: match l.status {
                LineStatusBody::Held => LineStatus::Held,
                LineStatusBody::Fired => LineStatus::Fired,
                LineStatusBody::Started => LineStatus::Started,
                LineStatusBody::Ready => LineStatus::Ready,
                LineStatusBody::Served => LineStatus::Served,
                LineStatusBody::Voided => LineStatus::Voided,
            },
            fire_no: l.fire_no,
            counted: l.counted,
        }
    }
}

impl From<&TicketLine> for FiredLineBody {
    fn from(l: &TicketLine) -> Self {
        Self {
            line_id: l.line_id,
            item: l.item.clone(),
            name: l.name.clone(),
            quantity: l.quantity,
            modifiers: l.modifiers.clone(),
            note: l.note.clone(),
            seat: l.seat,
            course: l.course,
        }
    }
}

impl FiredLineBody {
    pub(super) fn into_ticket_line(self, voided: bool) -> TicketLine {
        TicketLine {
            line_id: self.line_id,
            item: self.item,
            name: self.name,
            quantity: self.quantity,
            modifiers: self.modifiers,
            note: self.note,
            seat: self.seat,
            course: self.course,
            voided,
        }
    }
}

// ---- what snapshots store beyond the events ----

/// A ticket as a snapshot stores it, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketBody {
    id: TicketId,
    order_id: OrderId,
    table: TableId,
    ticket_no: u32,
    station: StationId,
    kind: StationKindBody,
    fire_no: u32,
    course: Option<u8>,
    lines: Vec<SnapshotLineBody>,
    status: TicketStatusBody,
    fired_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    bumped_at: Option<DateTime<Utc>>,
    parts_ready: bool,
    /// Snapshot format 2; absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<SourceBody>,
    #[serde(default, skip_serializing_if = "is_false")]
    priority: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    unseen: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    moved_from: Option<TableId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    starts_at: Option<DateTime<Utc>>,
}

/// A line on a ticket in a snapshot: as fired, and whether it was voided since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotLineBody {
    #[serde(flatten)]
    line: FiredLineBody,
    voided: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TicketStatusBody {
    New,
    Started,
    Bumped,
    Voided,
}

impl From<&Ticket> for TicketBody {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id,
            order_id: t.order_id,
            table: t.table.clone(),
            ticket_no: t.ticket_no,
            station: t.station.clone(),
            kind: station_kind_body(t.kind),
            fire_no: t.fire_no,
            course: t.course,
            lines: t
                .lines
                .iter()
                .map(|l| SnapshotLineBody {
                    line: l.into(),
                    voided: l.voided,
                })
                .collect(),
            status: match t.status {
                TicketStatus::New => TicketStatusBody::New,
                TicketStatus::Started => TicketStatusBody::Started,
                TicketStatus::Bumped => TicketStatusBody::Bumped,
                TicketStatus::Voided => TicketStatusBody::Voided,
            },
            fired_at: t.fired_at,
            started_at: t.started_at,
            bumped_at: t.bumped_at,
            parts_ready: t.parts_ready,
            source: t.source.map(SourceBody::from),
            priority: t.priority,
            unseen: t.unseen,
            moved_from: t.moved_from.clone(),
            starts_at: t.starts_at,
        }
    }
}

impl From<TicketBody> for Ticket {
    fn from(t: TicketBody) -> Self {
        Self {
            id: t.id,
            order_id: t.order_id,
            table: t.table,
            ticket_no: t.ticket_no,
            station: t.station,
            kind: station_kind(t.kind),
            fire_no: t.fire_no,
            course: t.course,
            lines: t
                .lines
                .into_iter()
                .map(|l| l.line.into_ticket_line(l.voided))
                .collect(),
            status: match t.status {
                TicketStatusBody::New => TicketStatus::New,
                TicketStatusBody::Started => TicketStatus::Started,
                TicketStatusBody::Bumped => TicketStatus::Bumped,
                TicketStatusBody::Voided => TicketStatus::Voided,
            },
            fired_at: t.fired_at,
            started_at: t.started_at,
            bumped_at: t.bumped_at,
            parts_ready: t.parts_ready,
            source: t.source.map(OrderSource::from),
            priority: t.priority,
            unseen: t.unseen,
            moved_from: t.moved_from,
            starts_at: t.starts_at,
        }
    }
}
