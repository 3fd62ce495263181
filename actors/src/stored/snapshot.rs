//! Snapshots as the journal stores them (format 2), and the branch state they hold. Format 2
//! only adds to format 1, every addition defaulting when absent (see `super`'s list), so a
//! format-1 snapshot reads as format 2.
//!
//! A snapshot that cannot be read (another format, a body that does not decode, a position
//! that disagrees with the journal's) is never used and never silent: it is logged, counted in
//! `rail_snapshots_unreadable_total`, and recovery reads the events instead; the next snapshot
//! replaces it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::body::{ConfigBody, DeviceBody, LineBody, OfferBody, SourceBody, TicketBody};
use crate::devices::{DeviceRecord, PairingOffer};
use crate::ids::{BranchId, ItemId, OrderId, StationId, TableId};
use crate::journal::SavedSnapshot;
use crate::menu::{Branch, BranchConfig};
use crate::order::Order;

/// The snapshot format this build writes; it reads this one and format 1.
pub const SNAPSHOT_FORMAT: u32 = 2;

/// A branch as of a position: what a snapshot holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchSnapshot {
    pub position: u64,
    pub config_seq: u64,
    pub config: Option<BranchConfig>,
    pub eighty_sixed: Vec<ItemId>,
    /// The open orders, each with the seq and position of its last event.
    pub orders: Vec<Order>,
    /// What is left of each limited item.
    pub stock: Vec<(ItemId, u32)>,
    /// The kitchen's measured prep times per station and item, oldest first.
    pub prep: Vec<(StationId, ItemId, Vec<f64>)>,
    /// The branch's devices, and its pairing codes not yet used.
    pub devices: Vec<DeviceRecord>,
    pub offers: Vec<PairingOffer>,
}

impl BranchSnapshot {
    /// The snapshot of a branch's configuration and open orders as of `position`.
    pub fn new<'a>(
        branch: Option<&Branch>,
        config_seq: u64,
        position: u64,
        orders: impl IntoIterator<Item = &'a Order>,
    ) -> Self {
        Self {
            position,
            config_seq,
            config: branch.map(|b| b.config().clone()),
            eighty_sixed: branch
                .map(|b| b.eighty_sixed().iter().cloned().collect())
                .unwrap_or_default(),
            orders: orders.into_iter().cloned().collect(),
            stock: Vec::new(),
            prep: Vec::new(),
            devices: Vec::new(),
            offers: Vec::new(),
        }
        .with_devices(branch)
    }

    fn with_devices(mut self, branch: Option<&Branch>) -> Self {
        if let Some(b) = branch {
            (self.devices, self.offers) = b.devices().saved(Utc::now());
        }
        self
    }

    /// The same, with the kitchen's measured prep times.
    pub fn with_prep(mut self, prep: Vec<(StationId, ItemId, Vec<f64>)>) -> Self {
        self.prep = prep;
        self
    }

    /// The same, with what is left of the limited items.
    pub fn with_stock(mut self, stock: Vec<(ItemId, u32)>) -> Self {
        self.stock = stock;
        self
    }
}

/// A snapshot's body in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotBody {
    version: u32,
    position: u64,
    config_seq: u64,
    config: Option<ConfigBody>,
    eighty_sixed: Vec<ItemId>,
    orders: Vec<OrderBody>,
    /// Format 2; none in format 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stock: Vec<StockBody>,
    /// Format 2; none in format 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    prep: Vec<PrepBody>,
    /// Format 2, added with device management.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    devices: Vec<DeviceBody>,
    /// Format 2, added with device management.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    offers: Vec<OfferBody>,
}

/// An item's measured prep times at a station, oldest first, in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PrepBody {
    station: StationId,
    item: ItemId,
    seconds: Vec<f64>,
}

/// What is left of a limited item, in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StockBody {
    item: ItemId,
    left: u32,
}

/// An open order as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderBody {
    id: OrderId,
    table: TableId,
    ticket_no: u32,
    day: NaiveDate,
    guests: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<SourceBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_ref: Option<String>,
    #[serde(default)]
    priority: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scheduled: Option<ScheduledBody>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    merged_from: Vec<OrderId>,
    opened_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    lines: Vec<LineBody>,
    tickets: Vec<TicketBody>,
    fires: u32,
    seq: u64,
    position: u64,
}

/// A course that fires by itself, in a snapshot (format 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ScheduledBody {
    course: u8,
    at: DateTime<Utc>,
}

/// The snapshot as the journal keeps it.
pub fn encode_snapshot(snapshot: &BranchSnapshot) -> SavedSnapshot {
    let body = SnapshotBody {
        version: SNAPSHOT_FORMAT,
        position: snapshot.position,
        config_seq: snapshot.config_seq,
        config: snapshot.config.as_ref().map(ConfigBody::from),
        eighty_sixed: snapshot.eighty_sixed.clone(),
        devices: snapshot.devices.iter().map(DeviceBody::from).collect(),
        offers: snapshot.offers.iter().map(OfferBody::from).collect(),
        prep: snapshot
            .prep
            .iter()
            .map(|(station, item, seconds)| PrepBody {
                station: station.clone(),
                item: item.clone(),
                seconds: seconds.clone(),
            })
            .collect(),
        stock: snapshot
            .stock
            .iter()
            .map(|(item, left)| StockBody {
                item: item.clone(),
                left: *left,
            })
            .collect(),
        orders: snapshot
            .orders
            .iter()
            .map(|o| OrderBody {
                id: o.id,
                table: o.table.clone(),
                ticket_no: o.ticket_no,
                day: o.day,
                guests: o.guests,
                source: o.source.map(SourceBody::from),
                external_ref: o.external_ref.clone(),
                priority: o.priority,
                scheduled: o.scheduled.map(|s| ScheduledBody {
                    course: s.course,
                    at: s.at,
                }),
                merged_from: o.merged_from.clone(),
                opened_at: o.opened_at,
                closed_at: o.closed_at,
                lines: o.lines.values().map(LineBody::from).collect(),
                tickets: o.tickets.iter().map(TicketBody::from).collect(),
                fires: o.fires,
                seq: o.seq,
                position: o.position,
            })
            .collect(),
    };
    SavedSnapshot {
        position: snapshot.position,
        body: serde_json::to_vec(&body).expect("a snapshot serializes"),
    }
}

/// Reads a saved snapshot; None (logged and counted) when it cannot be used.
pub fn decode_snapshot(branch: &BranchId, saved: &SavedSnapshot) -> Option<BranchSnapshot> {
    let unreadable = |reason: &'static str, detail: String| {
        tracing::warn!(%branch, position = saved.position, reason, detail, "snapshot not used; recovery reads the events instead");
        crate::metrics::snapshot_unreadable(reason);
        None
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version = match serde_json::from_slice::<Version>(&saved.body) {
        Ok(v) => v.version,
        Err(e) => return unreadable("undecodable", e.to_string()),
    };
    if version != SNAPSHOT_FORMAT && version != 1 {
        return unreadable(
            "format",
            format!("format {version}, this build reads {SNAPSHOT_FORMAT}"),
        );
    }
    let body = match serde_json::from_slice::<SnapshotBody>(&saved.body) {
        Ok(body) => body,
        Err(e) => return unreadable("undecodable", e.to_string()),
    };
    if body.position != saved.position {
        return unreadable(
            "position",
            format!("body at {}, stored at {}", body.position, saved.position),
        );
    }
    Some(BranchSnapshot {
        position: body.position,
        config_seq: body.config_seq,
        config: body.config.map(BranchConfig::from),
        eighty_sixed: body.eighty_sixed,
        devices: body.devices.into_iter().map(Into::into).collect(),
        offers: body.offers.into_iter().map(Into::into).collect(),
        stock: body.stock.into_iter().map(|s| (s.item, s.left)).collect(),
        prep: body
            .prep
            .into_iter()
            .map(|p| (p.station, p.item, p.seconds))
            .collect(),
        orders: body
            .orders
            .into_iter()
            .map(|o| Order {
                id: o.id,
                table: o.table,
                ticket_no: o.ticket_no,
                day: o.day,
                guests: o.guests,
                source: o.source.map(Into::into),
                external_ref: o.external_ref,
                priority: o.priority,
                scheduled: o.scheduled.map(|s| crate::order::ScheduledCourse {
                    course: s.course,
                    at: s.at,
                }),
                merged_from: o.merged_from,
                opened_at: o.opened_at,
                closed_at: o.closed_at,
                lines: o
                    .lines
                    .into_iter()
                    .map(|l| {
                        let line = crate::order::Line::from(l);
                        (line.id, line)
                    })
                    .collect(),
                tickets: o.tickets.into_iter().map(Into::into).collect(),
                fires: o.fires,
                seq: o.seq,
                position: o.position,
            })
            .collect(),
    })
}
