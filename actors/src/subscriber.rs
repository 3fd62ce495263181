//! What a screen subscribes to and what it is sent.
//!
//! The domain pushes into a subscriber's bounded queue and never waits: when the queue is full
//! the subscriber is dropped and told why through its overflow signal, so a slow screen can
//! never slow an actor. The session that owns the queue turns pushes into frames.

use std::collections::VecDeque;
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
    /// The topic's state. `reset` when the client asked to resume from a position this
    /// replica can no longer replay: drop what you had and start from this.
    Snapshot {
        topic: Topic,
        snapshot: Arc<Snapshot>,
        reset: bool,
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

    /// How many pushes the queue can take right now.
    pub fn room(&self) -> usize {
        self.tx.capacity()
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

/// The recent events of a topic holder, so a screen that reconnects gets exactly what it
/// missed instead of a fresh snapshot.
#[derive(Debug)]
pub struct History {
    events: VecDeque<Arc<Envelope>>,
    capacity: usize,
    /// Every event at or below this position has left the history (or was never in it).
    floor: u64,
}

impl History {
    /// A history that starts at `position`: it can replay what comes after it.
    pub fn new(capacity: usize, position: u64) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            floor: position,
        }
    }

    pub fn record(&mut self, envelope: Arc<Envelope>) {
        if self.events.len() == self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = old.position;
            }
        }
        self.events.push_back(envelope);
    }

    /// The events after `after`, when the history still holds all of them.
    pub fn since(&self, after: u64, head: u64) -> Option<impl Iterator<Item = &Arc<Envelope>>> {
        (after >= self.floor && after <= head)
            .then(|| self.events.iter().filter(move |e| e.position > after))
    }
}

/// Starts a subscription: the events after `after` from the history when it covers them,
/// else a snapshot (marked as a reset when a resume was asked for). False when the subscriber
/// is already gone.
pub fn start(
    subscriber: &Subscriber,
    topic: &Topic,
    after: Option<u64>,
    history: &History,
    head: u64,
    snapshot: impl FnOnce() -> Snapshot,
) -> bool {
    if let Some(after) = after {
        if let Some(missed) = history.since(after, head) {
            let missed: Vec<&Arc<Envelope>> = missed.filter(|e| topic.matches(e)).collect();
            // More than the queue takes at once would close the screen as slow: it gets a
            // snapshot instead.
            if missed.len() < subscriber.room() {
                crate::metrics::resume_served("history");
                return missed.into_iter().all(|e| {
                    subscriber.push(Push::Event {
                        topic: topic.clone(),
                        envelope: e.clone(),
                    })
                });
            }
        }
        crate::metrics::resume_reset();
    }
    let snapshot = Arc::new(snapshot());
    subscriber.push(Push::Snapshot {
        topic: topic.clone(),
        snapshot,
        reset: after.is_some(),
    })
}
