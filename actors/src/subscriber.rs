//! What a screen subscribes to and what it is sent.
//!
//! The domain pushes into a subscriber's bounded queue and never waits: when the queue is full
//! the subscriber is dropped and told why through its overflow signal, so a slow screen can
//! never slow an actor. The session that owns the queue turns pushes into frames.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use crate::event::Envelope;
use crate::ids::{ItemId, StationId, TableId};
use crate::menu::BranchConfig;
use crate::order::{Order, Ticket};

/// A stream of a branch a screen can follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Topic {
    /// One station's tickets (a kitchen display).
    Station(StationId),
    /// One table's orders (a waiter's tablet).
    Table(TableId),
    /// Everything in the branch (managers, expo overviews).
    Branch,
}

impl Topic {
    /// Whether an event belongs on this topic.
    pub fn matches(&self, envelope: &Envelope) -> bool {
        match self {
            Topic::Branch => true,
            Topic::Table(t) => envelope.table() == Some(t),
            Topic::Station(s) => envelope.event.stations().contains(&s),
        }
    }
}

/// The state of a topic at a position; events after that position follow it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Snapshot {
    Station {
        station: StationId,
        position: u64,
        tickets: Vec<Ticket>,
    },
    Table {
        table: TableId,
        position: u64,
        orders: Vec<Order>,
    },
    Branch {
        position: u64,
        config: BranchConfig,
        eighty_sixed: Vec<ItemId>,
        orders: Vec<Order>,
    },
}

/// What a subscriber is sent.
#[derive(Debug, Clone)]
pub enum Push {
    Snapshot {
        topic: Topic,
        snapshot: Arc<Snapshot>,
    },
    Event {
        topic: Topic,
        envelope: Arc<Envelope>,
    },
}

/// The domain's handle on one subscription's queue.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: u64,
    tx: mpsc::Sender<Push>,
    overflow: Arc<Notify>,
}

impl Subscriber {
    pub fn new(id: u64, tx: mpsc::Sender<Push>, overflow: Arc<Notify>) -> Self {
        Self { id, tx, overflow }
    }

    /// Queues a push without waiting. False when the subscriber is gone or too slow; the
    /// caller then forgets it.
    pub fn push(&self, push: Push) -> bool {
        match self.tx.try_send(push) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::ws_push_dropped();
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
