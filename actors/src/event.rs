//! Events: what happened, as stored in the journal and streamed to screens.
//!
//! A branch has one configuration stream (`branch/<id>`) and one stream per order
//! (`order/<uuid>`). Every stored event carries its stream, its sequence number in the stream,
//! the branch-wide position subscribers resume from, and the server time it was recorded.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::devices::{DeviceRecord, PairingOffer};
use crate::ids::{BranchId, ItemId, OrderId, StationId, TableId};
use crate::menu::BranchConfig;
use crate::order::OrderChange;

/// A change to a branch's configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum BranchEvent {
    BranchConfigured {
        config: BranchConfig,
    },
    /// The item is out of stock: every POS, tablet and QR menu refuses it.
    ItemEightySixed {
        item: ItemId,
    },
    ItemRestored {
        item: ItemId,
    },
    /// The item's count is set (lines taking it reserve from it; at 0 it is sold out), or,
    /// with none, no longer limited.
    ItemCountSet {
        item: ItemId,
        count: Option<u32>,
    },
    /// A manager issued a token to this device.
    DeviceIssued {
        device: DeviceRecord,
    },
    /// The device's tokens are refused from now on, and its sockets closed.
    DeviceRevoked {
        device: String,
        at: DateTime<Utc>,
    },
    /// A code a new device may exchange once, in time, for a token.
    PairingOffered {
        offer: PairingOffer,
    },
    /// The code was exchanged: its device is issued, and it pairs nothing more.
    PairingRedeemed {
        code_hash: String,
    },
}

/// A change to one order, with the table it is at.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    pub order_id: OrderId,
    pub table: TableId,
    pub change: OrderChange,
}

/// Any domain event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Branch(BranchEvent),
    Order(OrderEvent),
}

impl Event {
    /// The event's type name, as stored beside it.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Branch(BranchEvent::BranchConfigured { .. }) => "branch_configured",
            Event::Branch(BranchEvent::ItemEightySixed { .. }) => "item_eighty_sixed",
            Event::Branch(BranchEvent::ItemRestored { .. }) => "item_restored",
            Event::Branch(BranchEvent::ItemCountSet { .. }) => "item_count_set",
            Event::Branch(BranchEvent::DeviceIssued { .. }) => "device_issued",
            Event::Branch(BranchEvent::DeviceRevoked { .. }) => "device_revoked",
            Event::Branch(BranchEvent::PairingOffered { .. }) => "pairing_offered",
            Event::Branch(BranchEvent::PairingRedeemed { .. }) => "pairing_redeemed",
            Event::Order(o) => o.change.kind(),
        }
    }

    /// The stations whose screens must see this event.
    pub fn stations(&self) -> Vec<&StationId> {
        match self {
            Event::Branch(_) => Vec::new(),
            Event::Order(o) => o.change.stations(),
        }
    }
}

/// How an event is written for screens and tablets: the edge's wire format, given to the
/// engine at start. The branch actor calls it once per event for every screen it goes to.
pub type EventFrames = Arc<dyn Fn(&Envelope) -> Box<str> + Send + Sync>;

/// A committed event with its place in the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub stream: String,
    pub seq: u64,
    pub branch: BranchId,
    pub position: u64,
    pub at: DateTime<Utc>,
    pub event: Arc<Event>,
}

/// An event as screens and tablets are sent it: the envelope serialized once for all of them,
/// with what routing it needs. Histories keep these, not the decoded events, so a replica's
/// memory for resuming screens is about the size of the frames it would send.
#[derive(Debug)]
pub struct Published {
    pub position: u64,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    /// The table of an order event.
    pub table: Option<TableId>,
    /// The table an order moved to (its tablets are told too).
    pub moved_to: Option<TableId>,
    /// The stations whose screens show it.
    pub stations: Box<[StationId]>,
    /// The envelope in the edge's wire format (a JSON object).
    pub json: Box<str>,
}

impl Envelope {
    /// The event as screens are sent it, written once for all of them.
    pub fn publish(&self, frames: &EventFrames) -> Arc<Published> {
        self.publish_also_to(frames, None)
    }

    /// The same, also to the screens of `also` (expo, for its orders' other stations' ticket
    /// events).
    pub fn publish_also_to(
        &self,
        frames: &EventFrames,
        also: Option<&StationId>,
    ) -> Arc<Published> {
        let mut stations: Vec<StationId> = self.event.stations().into_iter().cloned().collect();
        if let Some(s) = also {
            if !stations.contains(s) {
                stations.push(s.clone());
            }
        }
        Arc::new(Published {
            position: self.position,
            at: self.at,
            kind: self.event.kind(),
            table: self.table().cloned(),
            moved_to: match &*self.event {
                Event::Order(OrderEvent {
                    change: OrderChange::OrderMoved { to, .. },
                    ..
                }) => Some(to.clone()),
                // The tablets of the table the merged order was at are told too.
                Event::Order(OrderEvent {
                    change: OrderChange::OrdersMerged { from_table, .. },
                    ..
                }) => Some(from_table.clone()),
                _ => None,
            },
            stations: stations.into(),
            json: frames(self),
        })
    }

    pub fn table(&self) -> Option<&TableId> {
        match &*self.event {
            Event::Order(o) => Some(&o.table),
            Event::Branch(_) => None,
        }
    }
}

pub fn branch_stream(branch: &BranchId) -> String {
    format!("branch/{branch}")
}

pub fn order_stream(order: &OrderId) -> String {
    format!("order/{order}")
}
