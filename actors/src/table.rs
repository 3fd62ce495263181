//! TableActor: the single writer of the orders at one table.
//!
//! A command is decided against the in-memory order, its events are appended to the journal,
//! and only once the journal has committed them are they applied and the caller answered.
//! While an append is in flight the table takes no other command, so decisions never race.
//!
//! A command may carry an idempotency key. The key is stored with the command's events in the
//! same transaction; a retry with the same key gets the order as that first command left it
//! (rebuilt from the journal up to its events), and the same key with another command is
//! refused.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use crate::error::CommandError;
use crate::event::{order_stream, Event, OrderEvent};
use crate::ids::{BranchId, OrderId, TableId};
use crate::journal::{
    append_recorded, AppendRequest, Journal, JournalError, KeyRecord, StoredEvent, StoredKey,
};
use crate::menu::Branch;
use crate::order::{Order, OrderChange, OrderCommand};
use crate::prep::Timing;
use crate::stored;

/// Keys this table remembers, to answer a quick retry without the journal (an older retry is
/// refused by the journal's copy of its key and answered from there). Kept small: a replica
/// holds thousands of tables, and a retry comes within seconds of its command.
const RECENT_KEYS: usize = 32;

/// Opens a new order at this table and carries out `then` on it (adding its lines, firing
/// them), all in one append.
#[derive(Message)]
#[rtype(result = "Result<Opened, CommandError>")]
pub struct OpenOrderAt {
    pub order_id: OrderId,
    /// The `order_opened` change, numbered.
    pub opened: OrderChange,
    pub then: Vec<OrderCommand>,
    pub branch: Arc<Branch>,
    /// What a fire among `then` is timed with.
    pub timing: Timing,
    pub idempotency: Option<KeyRecord>,
    pub span: tracing::Span,
}

/// Carries out a command on one of this table's orders.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct ExecuteOrder {
    pub order_id: OrderId,
    pub command: OrderCommand,
    pub branch: Arc<Branch>,
    /// What a fire is timed with (fire by prep time).
    pub timing: Timing,
    pub idempotency: Option<KeyRecord>,
    pub span: tracing::Span,
}

/// Answers once the command the table has in hand is done (a table takes one at a time).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Idle;

impl Handler<Idle> for TableActor {
    type Result = ();

    fn handle(&mut self, _: Idle, _: &mut Context<Self>) {}
}

/// Holds an order for a merge: it takes no other command until `Thaw` (or its close), and
/// is answered as it is now.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct Freeze(pub OrderId);

/// The merge that held the order did not happen: it takes commands again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Thaw(pub OrderId);

impl Handler<Freeze> for TableActor {
    type Result = Result<Arc<Order>, CommandError>;

    fn handle(&mut self, msg: Freeze, _: &mut Context<Self>) -> Self::Result {
        if self.stale.contains(&msg.0) || self.frozen.contains(&msg.0) {
            // Its last append failed (the next command reads it back first), or another
            // merge holds it.
            return Err(CommandError::Conflict);
        }
        let order = self
            .orders
            .get(&msg.0)
            .cloned()
            .ok_or(CommandError::UnknownOrder(msg.0))?;
        self.frozen.insert(msg.0);
        Ok(order)
    }
}

impl Handler<Thaw> for TableActor {
    type Result = ();

    fn handle(&mut self, msg: Thaw, _: &mut Context<Self>) {
        self.frozen.remove(&msg.0);
    }
}

/// An order moved to this table: its table actor writes it from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AdoptOrder(pub Arc<Order>);

impl Handler<AdoptOrder> for TableActor {
    type Result = ();

    fn handle(&mut self, msg: AdoptOrder, _: &mut Context<Self>) {
        let order = msg.0;
        if order.table != self.table || order.is_closed() {
            return;
        }
        self.moved_away.remove(&order.id);
        let newer = self.orders.get(&order.id).is_none_or(|o| o.seq < order.seq);
        if newer {
            self.orders.insert(order.id, order);
        }
    }
}

/// Reads one open order of this table.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct ReadOrder(pub OrderId);

/// The single writer of one table's orders.
pub struct TableActor {
    branch: BranchId,
    table: TableId,
    journal: Arc<dyn Journal>,
    /// Shared with the answers: an order is copied only when a change finds an answer still
    /// holding it.
    orders: HashMap<OrderId, Arc<Order>>,
    /// Orders whose last append failed: the journal may hold more than memory does.
    stale: HashSet<OrderId>,
    /// Orders moved to another table: their table actor writes them now.
    moved_away: HashSet<OrderId>,
    /// Orders being merged into another: they take no command but the one closing them.
    frozen: HashSet<OrderId>,
    /// Idempotency keys this table stored, as the journal holds them.
    recent_keys: HashMap<String, StoredKey>,
    /// With replicas, the lease epoch its appends are decided under.
    epoch: Option<u64>,
}

impl TableActor {
    pub fn new(
        branch: BranchId,
        table: TableId,
        journal: Arc<dyn Journal>,
        orders: Vec<Order>,
    ) -> Self {
        let orders = orders.into_iter().map(|o| (o.id, Arc::new(o))).collect();
        Self {
            branch,
            table,
            journal,
            orders,
            stale: HashSet::new(),
            moved_away: HashSet::new(),
            frozen: HashSet::new(),
            recent_keys: HashMap::new(),
            epoch: None,
        }
    }

    /// Its appends carry this lease epoch (with replicas).
    pub fn under_epoch(mut self, epoch: Option<u64>) -> Self {
        self.epoch = epoch;
        self
    }

    /// Journals the changes for one order, then applies them and answers with the order.
    fn commit(
        &mut self,
        order_id: OrderId,
        expected_seq: u64,
        changes: Vec<OrderChange>,
        idempotency: Option<KeyRecord>,
        span: tracing::Span,
    ) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>> {
        let kinds: Vec<&'static str> = changes.iter().map(OrderChange::kind).collect();
        let now = Utc::now();
        let closes_stream = changes.iter().any(|c| {
            matches!(
                c,
                OrderChange::OrderClosed {} | OrderChange::MergedInto { .. }
            )
        });
        let events = changes
            .into_iter()
            .map(|change| {
                Event::Order(OrderEvent {
                    order_id,
                    table: self.table.clone(),
                    change,
                })
            })
            .map(|e| stored::encode(e, now))
            .collect();
        let request = AppendRequest {
            branch: self.branch.to_string(),
            stream: order_stream(&order_id),
            expected_seq,
            events,
            closes_stream,
            idempotency: idempotency.clone(),
            epoch: self.epoch,
        };
        let journal = self.journal.clone();
        let append = async move { append_recorded(journal.as_ref(), request).await };
        let append = tracing::Instrument::instrument(append, span.clone());
        Box::pin(append.into_actor(self).map(move |result, act, _| match result {
            Ok(stored) => {
                let _request = span.enter();
                tracing::debug!(%order_id, events = ?kinds, "committed");
                if let (Some(k), Some(last)) = (idempotency, stored.last()) {
                    act.remember_key(k, last);
                }
                act.apply(order_id, &stored).ok_or(CommandError::Conflict)
            }
            Err(JournalError::DuplicateKey(_)) => {
                // The key was stored before (a retry, or another request): this append
                // changed nothing, and `once` answers from the stored key.
                act.stale.insert(order_id);
                Err(CommandError::Conflict)
            }
            Err(e) => {
                let _request = span.enter();
                // The journal may or may not hold the append: read it back before the next
                // command on this order.
                tracing::warn!(error = %e, %order_id, "append failed; the order reloads first");
                act.stale.insert(order_id);
                Err(match e {
                    JournalError::Conflict { .. } | JournalError::DuplicateKey(_) => {
                        CommandError::Conflict
                    }
                    JournalError::Unavailable(_) => CommandError::JournalUnavailable,
 JournalError::Fenced(_) => CommandError::NotOwner,
                })
            }
        }))
    }

    fn apply(&mut self, order_id: OrderId, stored: &[StoredEvent]) -> Option<Arc<Order>> {
        if stored
            .iter()
            .any(|s| s.kind == "merged_into" || s.kind == "order_closed")
        {
            self.frozen.remove(&order_id);
        }
        let before = self.orders.remove(&order_id).map(Arc::unwrap_or_clone);
        if let Some(order) = stored::replay_order(before, stored) {
            self.orders.insert(order_id, Arc::new(order));
        }
        let order = self.orders.get(&order_id)?.clone();
        if order.is_closed() {
            self.orders.remove(&order_id);
        }
        if order.table != self.table {
            self.orders.remove(&order_id);
            self.moved_away.insert(order_id);
        }
        Some(order)
    }

    fn remember_key(&mut self, record: KeyRecord, last: &StoredEvent) {
        if self.recent_keys.len() >= RECENT_KEYS {
            self.recent_keys.clear();
        }
        let stored = StoredKey {
            fingerprint: record.fingerprint,
            stream: last.stream.clone(),
            seq: last.seq,
        };
        self.recent_keys.insert(record.key, stored);
    }

    /// Runs a command once per idempotency key: a key seen before answers with the order as
    /// its first command left it; an unknown key (or none) runs the command.
    ///
    /// Most keys are new, so a key this table does not remember is not looked up first: the
    /// command runs, and the journal, which stores the key in the same transaction as the
    /// events, refuses a key used before. Only a command that fails (refused against the
    /// order as it is now, or its key already stored) reads the key back, and answers as the
    /// first command did when it was a retry.
    fn once(
        &mut self,
        key: Option<KeyRecord>,
        run: impl FnOnce(&mut Self) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>>
            + 'static,
    ) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>> {
        let Some(key) = key else { return run(self) };
        if let Some(stored) = self.recent_keys.get(&key.key).cloned() {
            return self.answer_again(&key, stored);
        }
        Box::pin(run(self).then(move |result, act, _| match result {
            Err(e) if !matches!(e, CommandError::JournalUnavailable) => act.replay_or(key, e),
            result => Box::pin(fut::ready(result)),
        }))
    }

    /// The first answer to a key the journal holds, or `error` when it holds none.
    fn replay_or(
        &mut self,
        key: KeyRecord,
        error: CommandError,
    ) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>> {
        let journal = self.journal.clone();
        let branch = self.branch.to_string();
        let name = key.key.clone();
        let lookup = async move { journal.idempotency_key(&branch, &name).await };
        Box::pin(
            lookup
                .into_actor(self)
                .then(move |found, act, _| match found {
                    Ok(Some(stored)) => act.answer_again(&key, stored),
                    Ok(None) => Box::pin(fut::ready(Err(error))),
                    Err(_) => Box::pin(fut::ready(Err(CommandError::JournalUnavailable))),
                }),
        )
    }

    /// The first answer to a key: the order rebuilt up to the events its command appended.
    fn answer_again(
        &mut self,
        key: &KeyRecord,
        stored: StoredKey,
    ) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>> {
        if stored.fingerprint != key.fingerprint {
            return Box::pin(fut::ready(Err(CommandError::IdempotencyKeyReused)));
        }
        crate::metrics::idempotent_replay();
        let in_memory = self.orders.values().find(|o| {
            order_stream(&o.id) == stored.stream
                && o.seq == stored.seq
                && !self.stale.contains(&o.id)
        });
        if let Some(order) = in_memory {
            return Box::pin(fut::ready(Ok(order.clone())));
        }
        Box::pin(fut::wrap_future(order_as_of(self.journal.clone(), stored)))
    }
}

/// The order as the command that stored a key left it: rebuilt from the journal up to the
/// last event that command appended.
pub(crate) async fn order_as_of(
    journal: Arc<dyn Journal>,
    stored: StoredKey,
) -> Result<Arc<Order>, CommandError> {
    let events = journal
        .load_stream(&stored.stream)
        .await
        .map_err(|_| CommandError::JournalUnavailable)?;
    let upto = events.iter().take_while(|s| s.seq <= stored.seq).count();
    let order = crate::stored::replay_order(None, &events[..upto]);
    order.map(Arc::new).ok_or(CommandError::Conflict)
}

/// The first answer to a key this branch stored, if it stored it: refused when the key was
/// used for another request.
pub(crate) async fn first_answer(
    journal: Arc<dyn Journal>,
    branch: &str,
    key: &KeyRecord,
) -> Result<Option<Arc<Order>>, CommandError> {
    let stored = journal
        .idempotency_key(branch, &key.key)
        .await
        .map_err(|_| CommandError::JournalUnavailable)?;
    match stored {
        None => Ok(None),
        Some(s) if s.fingerprint != key.fingerprint => Err(CommandError::IdempotencyKeyReused),
        Some(s) => {
            crate::metrics::idempotent_replay();
            order_as_of(journal, s).await.map(Some)
        }
    }
}

impl Actor for TableActor {
    type Context = Context<Self>;
}

/// What opening an order answers: the order as its open left it, and whether it is still open
/// at this table (a retried open of an order since closed is answered, but not open).
pub struct Opened {
    pub order: Arc<Order>,
    pub open: bool,
}

impl Handler<OpenOrderAt> for TableActor {
    type Result = AtomicResponse<Self, Result<Opened, CommandError>>;

    fn handle(&mut self, msg: OpenOrderAt, _: &mut Context<Self>) -> Self::Result {
        let (order_id, key) = (msg.order_id, msg.idempotency);
        let span = tracing::debug_span!(parent: &msg.span, "table.open_order", table = %self.table, %order_id);
        let decided = Order::decide_open(
            order_id,
            self.table.clone(),
            msg.opened,
            &msg.then,
            &msg.branch,
            &msg.timing,
            Utc::now(),
        );
        let run = {
            let key = key.clone();
            move |act: &mut Self| match decided {
                Ok(changes) => act.commit(order_id, 0, changes, key, span),
                Err(e) => Box::pin(fut::ready(Err(e))),
            }
        };
        let opened = self.once(key, run).map(|result, act, _| {
            result.map(|order| Opened {
                open: act.orders.contains_key(&order.id),
                order,
            })
        });
        AtomicResponse::new(Box::pin(opened))
    }
}

impl TableActor {
    /// Decides a command against the order and commits what it changes.
    fn execute(
        &mut self,
        msg: ExecuteOrder,
    ) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>> {
        let merging = self.frozen.contains(&msg.order_id)
            && !matches!(msg.command, OrderCommand::MergeInto { .. });
        let decided = match self.orders.get(&msg.order_id) {
            // Being merged into another order: the client tries again (and finds it merged).
            Some(_) if merging => Err(CommandError::Conflict),
            // Moved to another table since the command was sent: the client tries again.
            None if self.moved_away.contains(&msg.order_id) => Err(CommandError::Conflict),
            None => Err(CommandError::UnknownOrder(msg.order_id)),
            Some(order) => order
                .decide_timed(&msg.command, &msg.branch, &msg.timing, Utc::now())
                .map(|changes| (order.seq, changes)),
        };
        match decided {
            Ok((seq, changes)) => {
                let span = tracing::debug_span!(parent: &msg.span, "table.change_order", table = %self.table, order_id = %msg.order_id);
                self.commit(msg.order_id, seq, changes, msg.idempotency, span)
            }
            Err(e) => Box::pin(fut::ready(Err(e))),
        }
    }
}

impl TableActor {
    /// Runs a command, first rebuilding its order from the journal if an append failed.
    fn execute_fresh(
        &mut self,
        msg: ExecuteOrder,
    ) -> ResponseActFuture<Self, Result<Arc<Order>, CommandError>> {
        if !self.stale.contains(&msg.order_id) {
            return self.execute(msg);
        }
        let journal = self.journal.clone();
        let order_id = msg.order_id;
        let stream = order_stream(&order_id);
        let reload = async move { journal.load_stream(&stream).await };
        Box::pin(
            reload
                .into_actor(self)
                .then(move |loaded, act, _| match loaded {
                    Ok(events) => {
                        act.stale.remove(&order_id);
                        act.orders.remove(&order_id);
                        if !events.is_empty() {
                            act.apply(order_id, &events);
                        }
                        act.execute(msg)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %order_id, "reload failed");
                        Box::pin(fut::ready(Err(CommandError::JournalUnavailable)))
                    }
                }),
        )
    }
}

impl Handler<ExecuteOrder> for TableActor {
    type Result = AtomicResponse<Self, Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: ExecuteOrder, _: &mut Context<Self>) -> Self::Result {
        let key = msg.idempotency.clone();
        AtomicResponse::new(self.once(key, move |act| act.execute_fresh(msg)))
    }
}

impl Handler<ReadOrder> for TableActor {
    type Result = Result<Arc<Order>, CommandError>;

    fn handle(&mut self, msg: ReadOrder, _: &mut Context<Self>) -> Self::Result {
        self.orders
            .get(&msg.0)
            .cloned()
            .ok_or(CommandError::UnknownOrder(msg.0))
    }
}
