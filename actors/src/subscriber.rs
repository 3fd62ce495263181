//! What a screen subscribes to and what it is sent.
//!
//! The domain pushes into a subscriber's bounded queue and never waits: when the queue is full
//! the subscriber is dropped and told why through its overflow signal, so a slow screen can
//! never slow an actor. The session that owns the queue turns pushes into frames.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::event::{Envelope, EventFrames, Published};
use crate::ids::{ItemId, StationId, TableId};
use crate::journal::Journal;
use crate::menu::BranchConfig;
use crate::order::{Order, Ticket};

/// A stream of a branch a screen can follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One station's tickets (a kitchen display).
    Station(StationId),
    /// One table's orders (a waiter's tablet).
    Table(TableId),
    /// Everything in the branch (managers, expo overviews).
    Branch,
}

impl Topic {
    /// Whether an event belongs on this topic. The menu changed, or an item 86'd or back,
    /// goes to every topic: every tablet, QR menu and kitchen screen offers or refuses it at
    /// once.
    pub fn matches(&self, event: &Published) -> bool {
        if everyone(event.kind) {
            return true;
        }
        // A branch's devices and pairings are for managers' REST calls (the journal), not
        // for screens.
        if event.kind.starts_with("device_") || event.kind.starts_with("pairing_") {
            return false;
        }
        match self {
            Topic::Branch => true,
            Topic::Table(t) => {
                event.table.as_ref() == Some(t) || event.moved_to.as_ref() == Some(t)
            }
            Topic::Station(s) => event.stations.contains(s),
        }
    }
}

/// Whether every screen of the branch is sent events of this kind.
pub fn everyone(kind: &str) -> bool {
    matches!(
        kind,
        "branch_configured" | "item_eighty_sixed" | "item_restored"
    )
}

/// The state of a topic at a position; events after that position follow it.
#[derive(Debug, Clone)]
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
        event: Arc<Published>,
        /// Sent as it was committed; false when replayed to a screen that resumes.
        live: bool,
    },
    /// A station's all-day counts, when they change (and when a screen joins): not part of
    /// the journal, so not positioned, and never replayed.
    AllDay {
        station: StationId,
        items: Arc<[AllDayItem]>,
    },
    /// What is left of every limited item, when it changes (and when a screen joins): not
    /// part of the journal's order, so not positioned, and never replayed.
    Stock { items: Arc<[(ItemId, u32)]> },
}

/// One item's count on a station's live tickets (fired, not yet bumped): its all-day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllDayItem {
    pub item: ItemId,
    pub name: String,
    /// Portions, over every live ticket, voided lines left out.
    pub quantity: u32,
    /// Live tickets that have it.
    pub tickets: u32,
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
    events: VecDeque<Arc<Published>>,
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

    pub fn record(&mut self, envelope: Arc<Published>) {
        if self.events.len() == self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = old.position;
            }
        }
        self.events.push_back(envelope);
    }

    /// Puts `older` (the events up to the floor, contiguous) in front of the history.
    fn backfill(&mut self, older: &[Arc<Published>], keep: impl Fn(&Published) -> bool) {
        let (Some(first), Some(last)) = (older.first(), older.last()) else {
            return;
        };
        if last.position != self.floor || first.position == 0 {
            return;
        }
        let newer = std::mem::take(&mut self.events);
        self.floor = first.position - 1;
        self.events = older.iter().filter(|e| keep(e)).cloned().collect();
        self.events.extend(newer);
        while self.events.len() > self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = old.position;
            }
        }
    }

    /// The events after `after`, when the history still holds all of them.
    pub fn since(&self, after: u64, head: u64) -> Option<impl Iterator<Item = &Arc<Published>>> {
        (after >= self.floor && after <= head)
            .then(|| self.events.iter().filter(move |e| e.position > after))
    }
}

/// Resumes older than this many positions are not read back from the journal.
const MAX_JOURNAL_RESUME: u64 = 10_000;

/// What a topic holder must do after a screen asked to join.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// The screen has its snapshot or its missed events and is live.
    Live,
    /// The screen's queue is closed: it is gone.
    Gone,
    /// What it missed is no longer in the history: read the journal after `after` up to
    /// `head`, then call [`Audience::caught_up`].
    FromJournal {
        /// Names this catch-up (a session may have several) in [`Audience::caught_up`].
        ticket: u64,
        after: u64,
        head: u64,
    },
}

/// A screen waiting for its missed events to come back from the journal; live events that
/// arrive meanwhile wait here.
#[derive(Debug)]
struct CatchingUp {
    ticket: u64,
    topic: Topic,
    subscriber: Subscriber,
    after: u64,
    head: u64,
    waiting: Vec<Arc<Published>>,
}

/// The screens of one topic holder (a station, or a branch's tables and overview), its recent
/// history, and the screens catching up from the journal.
#[derive(Debug)]
pub struct Audience {
    live: Vec<(Topic, Subscriber)>,
    catching_up: Vec<CatchingUp>,
    next_ticket: u64,
    history: History,
}

impl Audience {
    pub fn new(history: usize, position: u64) -> Self {
        Self {
            live: Vec::new(),
            catching_up: Vec::new(),
            next_ticket: 0,
            history: History::new(history, position),
        }
    }

    /// Puts events older than its history in front of it: `older` are the holder's events
    /// (those `keep` says belong to it are kept) up to the position its history starts after,
    /// read back from the journal after a restart, so screens that reconnect are served from
    /// memory rather than each from the journal. Anything else is ignored.
    pub fn backfill(&mut self, older: &[Arc<Published>], keep: impl Fn(&Published) -> bool) {
        self.history.backfill(older, keep);
    }

    /// The position this audience's history starts after.
    pub fn history_floor(&self) -> u64 {
        self.history.floor
    }

    /// Screens connected, catching up or live.
    pub fn len(&self) -> usize {
        self.live.len() + self.catching_up.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends a committed event to every screen whose topic it belongs to.
    pub fn deliver(&mut self, envelope: &Arc<Published>) {
        self.history.record(envelope.clone());
        self.live.retain(|(topic, sub)| {
            !topic.matches(envelope)
                || sub.push(Push::Event {
                    topic: topic.clone(),
                    event: envelope.clone(),
                    live: true,
                })
        });
        for c in self
            .catching_up
            .iter_mut()
            .filter(|c| c.topic.matches(envelope))
        {
            c.waiting.push(envelope.clone());
        }
    }

    /// A screen joins: the events after `after` from the history when it covers them, else
    /// a snapshot (marked as a reset when the resume cannot be served), or a read of the
    /// journal when what it missed is older than the history but not too old.
    pub fn join(
        &mut self,
        subscriber: Subscriber,
        topic: Topic,
        after: Option<u64>,
        head: u64,
        snapshot: impl FnOnce() -> Snapshot,
    ) -> Joined {
        if let Some(after) = after {
            let missed: Option<Vec<Arc<Published>>> = self
                .history
                .since(after, head)
                .map(|missed| missed.filter(|e| topic.matches(e)).cloned().collect());
            if let Some(missed) = missed {
                // More than the queue takes at once would close the screen as slow.
                if missed.len() < subscriber.room() {
                    crate::metrics::resume_served("history");
                    let pushed = missed.into_iter().all(|e| {
                        subscriber.push(Push::Event {
                            topic: topic.clone(),
                            event: e,
                            live: false,
                        })
                    });
                    return self.keep(pushed, topic, subscriber);
                }
            } else if after < head && head - after <= MAX_JOURNAL_RESUME {
                self.next_ticket += 1;
                let ticket = self.next_ticket;
                self.catching_up.push(CatchingUp {
                    ticket,
                    topic,
                    subscriber,
                    after,
                    head,
                    waiting: Vec::new(),
                });
                return Joined::FromJournal {
                    ticket,
                    after,
                    head,
                };
            }
            crate::metrics::resume_reset();
        }
        let snapshot = Arc::new(snapshot());
        let reset = after.is_some();
        let pushed = subscriber.push(Push::Snapshot {
            topic: topic.clone(),
            snapshot,
            reset,
        });
        self.keep(pushed, topic, subscriber)
    }

    fn keep(&mut self, pushed: bool, topic: Topic, subscriber: Subscriber) -> Joined {
        if pushed {
            self.live.push((topic, subscriber));
            Joined::Live
        } else {
            Joined::Gone
        }
    }

    /// The journal's answer for a screen catching up: its missed events (then what arrived
    /// meanwhile), or a reset snapshot when the read failed or is more than its queue takes.
    pub fn caught_up(
        &mut self,
        ticket: u64,
        read: Result<Vec<Arc<Published>>, ()>,
        snapshot: Option<Snapshot>,
    ) {
        let Some(i) = self.catching_up.iter().position(|c| c.ticket == ticket) else {
            return;
        };
        let c = self.catching_up.swap_remove(i);
        let missed: Option<Vec<Arc<Published>>> = read.ok().map(|events| {
            events
                .into_iter()
                .filter(|e| e.position > c.after && e.position <= c.head && c.topic.matches(e))
                .chain(c.waiting.iter().cloned())
                .collect()
        });
        let pushed = match missed {
            Some(missed) if missed.len() < c.subscriber.room() => {
                crate::metrics::resume_served("journal");
                missed.into_iter().all(|e| {
                    c.subscriber.push(Push::Event {
                        topic: c.topic.clone(),
                        event: e,
                        live: false,
                    })
                })
            }
            _ => {
                crate::metrics::resume_reset();
                snapshot.is_some_and(|snapshot| {
                    let snapshot = Arc::new(snapshot);
                    c.subscriber.push(Push::Snapshot {
                        topic: c.topic.clone(),
                        snapshot,
                        reset: true,
                    })
                })
            }
        };
        self.keep(pushed, c.topic, c.subscriber);
    }

    /// The topic of a screen catching up from the journal.
    pub fn catching_up_on(&self, ticket: u64) -> Option<&Topic> {
        self.catching_up
            .iter()
            .find(|c| c.ticket == ticket)
            .map(|c| &c.topic)
    }

    /// Sends every live screen a push that is not an event (nothing to keep or replay).
    pub fn tell(&mut self, push: &Push) {
        self.live.retain(|(_, sub)| sub.push(push.clone()));
    }

    /// A screen leaves.
    pub fn leave(&mut self, subscriber: u64) {
        self.live.retain(|(_, s)| s.id != subscriber);
        self.catching_up.retain(|c| c.subscriber.id != subscriber);
    }
}

/// Reads back from the journal what a screen missed: the branch's events after `after` up to
/// `head`, as screens are sent them.
pub async fn read_missed(
    journal: Arc<dyn Journal>,
    branch: String,
    after: u64,
    head: u64,
    frames: EventFrames,
) -> Result<Vec<Arc<Published>>, ()> {
    let read = read_events(journal, branch, after, head).await?;
    Ok(read.iter().map(|e| e.publish(&frames)).collect())
}

/// The branch's events after `after` up to `head`, decoded.
pub async fn read_events(
    journal: Arc<dyn Journal>,
    branch: String,
    after: u64,
    head: u64,
) -> Result<Vec<Arc<Envelope>>, ()> {
    let limit = usize::try_from(head.saturating_sub(after)).map_err(|_| ())?;
    let stored = journal
        .read_branch(&branch, after, limit)
        .await
        .map_err(|_| ())?;
    stored
        .into_iter()
        .map(|s| crate::stored::envelope(&s).map(Arc::new).map_err(|_| ()))
        .collect()
}
