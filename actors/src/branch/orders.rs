//! Orders: opened at a table with the day's next ticket number, changed and read through the
//! table actor that writes them, and, once closed, read from the journal (a retried command on
//! a closed order gets its first answer again).

use std::sync::Arc;

use actix::prelude::*;
use chrono::{NaiveDate, Utc};
use futures::future::join_all;

use super::messages::{ChangeOrder, GetOrder, MergeOrders, OpenOrder, OpenOrders};
use super::BranchActor;
use crate::error::{invalid, CommandError};
use crate::event::order_stream;
use crate::ids::{OrderId, TableId};
use crate::journal::KeyRecord;
use crate::menu::Branch;
use crate::order::{check_external_ref, LineStatus, Order, OrderChange, OrderCommand, OrderSource};
use crate::stored;
use crate::table::{AdoptOrder, ExecuteOrder, Freeze, OpenOrderAt, ReadOrder, TableActor, Thaw};

impl BranchActor {
    pub(super) fn table(&mut self, table: &TableId) -> Addr<TableActor> {
        if let Some(addr) = self.tables.get(table) {
            return addr.clone();
        }
        let orders = self
            .view
            .values()
            .filter(|o| o.table == *table)
            .cloned()
            .collect();
        let actor = TableActor::new(self.id.clone(), table.clone(), self.journal.clone(), orders)
            .under_epoch(self.epoch);
        let addr = actor.start();
        self.tables.insert(table.clone(), addr.clone());
        addr
    }

    /// Today's date at the branch, for ticket numbers.
    fn today(&self, branch: &Branch) -> NaiveDate {
        branch.local_day(Utc::now())
    }

    /// Hands a command to the table actor that writes its order, or answers a retry of a
    /// command on an order closed since from the journal.
    pub(super) fn change_order(
        &mut self,
        msg: ChangeOrder,
    ) -> ResponseFuture<Result<Arc<Order>, CommandError>> {
        let target = self
            .owning()
            .and_then(|()| self.configured())
            .map(|branch| (branch, self.order_tables.get(&msg.order).cloned()));
        match target {
            Err(e) => Box::pin(async move { Err(e) }),
            Ok((_, None)) => {
                // A closed order: a retry of the command that closed it gets its answer again.
                let read = self.read_closed(msg.order);
                let journal = self.journal.clone();
                let branch = self.id.to_string();
                Box::pin(async move {
                    let order = match read.await {
                        Ok(order) if order.is_closed() => order,
                        Ok(_) => return Err(CommandError::UnknownOrder(msg.order)),
                        // The journal did not answer (a busy database): say so, and the
                        // client retries, rather than calling the order unknown.
                        Err(e) => return Err(e),
                    };
                    let Some(key) = msg.idempotency else {
                        return Err(CommandError::OrderClosed);
                    };
                    match crate::table::first_answer(journal, &branch, &key).await? {
                        Some(first) if first.id == order.id => Ok(first),
                        _ => Err(CommandError::OrderClosed),
                    }
                })
            }
            Ok((branch, Some(table))) => {
                // Lines of limited items reserve their portions first: all or none.
                let reserved = match self
                    .stock
                    .reserve(&branch, std::slice::from_ref(&msg.command))
                {
                    Ok(reserved) => reserved,
                    Err(e) => return Box::pin(self.first_answer_or(msg.idempotency, e)),
                };
                let addr = self.table(&table);
                let timing = self.timing(&branch, std::slice::from_ref(&msg.command));
                let exec = ExecuteOrder {
                    order_id: msg.order,
                    command: msg.command,
                    branch,
                    timing,
                    idempotency: msg.idempotency,
                    span: msg.span,
                };
                let me = self.addr.clone();
                let moves = matches!(exec.command, OrderCommand::MoveTo { .. });
                Box::pin(async move {
                    let answer = addr
                        .send(exec)
                        .await
                        .map_err(|_| CommandError::JournalUnavailable)
                        .and_then(|r| r);
                    if let (false, Some(me)) = (reserved.is_empty(), &me) {
                        let position = answer.as_ref().ok().map(|o| o.position);
                        me.do_send(Reserved { reserved, position });
                    }
                    // The next command for a moved order goes to its new table at once,
                    // whether or not the feed has brought the move yet.
                    if let (true, Some(me), Ok(order)) = (moves, &me, &answer) {
                        me.do_send(Moved(order.clone()));
                    }
                    answer
                })
            }
        }
    }

    /// What the fires among `commands` are timed with: the learned prep times and every
    /// station's backlog now (none to compute for commands that fire nothing).
    fn timing(&self, branch: &Branch, commands: &[OrderCommand]) -> crate::prep::Timing {
        let fires = commands
            .iter()
            .any(|c| matches!(c, OrderCommand::Fire { .. } | OrderCommand::FireNext));
        // Fire by prep time is the branch's once some item has a prep time.
        if !fires || !branch.has_prep_times() {
            return crate::prep::Timing::default();
        }
        self.prep.timing(branch, self.view.values(), Utc::now())
    }

    /// The first answer to a command's key when the journal holds one (a retry of a command
    /// that was done), else `error`.
    fn first_answer_or(
        &self,
        key: Option<KeyRecord>,
        error: CommandError,
    ) -> impl std::future::Future<Output = Result<Arc<Order>, CommandError>> + 'static {
        let journal = self.journal.clone();
        let branch = self.id.to_string();
        async move {
            let Some(key) = key else { return Err(error) };
            match crate::table::first_answer(journal, &branch, &key).await? {
                Some(first) => Ok(first),
                None => Err(error),
            }
        }
    }

    /// Reads an order that is no longer open straight from the journal.
    fn read_closed(
        &self,
        id: OrderId,
    ) -> impl std::future::Future<Output = Result<Arc<Order>, CommandError>> + 'static {
        let journal = self.journal.clone();
        let branch = self.id.clone();
        async move {
            let stored = journal
                .load_stream(&order_stream(&id))
                .await
                .map_err(|_| CommandError::JournalUnavailable)?;
            if stored.iter().any(|s| s.branch != branch.as_str()) {
                return Err(CommandError::UnknownOrder(id));
            }
            let order = stored::replay_order(None, &stored);
            order.map(Arc::new).ok_or(CommandError::UnknownOrder(id))
        }
    }
}

/// A command that reserved portions of limited items is done (`position`: its commit's) or
/// refused (none).
#[derive(Message)]
#[rtype(result = "()")]
struct Reserved {
    reserved: super::stock::Reserved,
    position: Option<u64>,
}

/// An order moved to another table (as its command answered).
#[derive(Message)]
#[rtype(result = "()")]
struct Moved(Arc<Order>);

impl Handler<Moved> for BranchActor {
    type Result = ();

    fn handle(&mut self, msg: Moved, _: &mut Context<Self>) {
        let order = msg.0;
        if order.is_closed() || !self.order_tables.contains_key(&order.id) {
            return;
        }
        self.order_tables.insert(order.id, order.table.clone());
        self.table(&order.table).do_send(AdoptOrder(order));
    }
}

impl Handler<Reserved> for BranchActor {
    type Result = ();

    fn handle(&mut self, msg: Reserved, _: &mut Context<Self>) {
        self.reservation_ended(msg.reserved, msg.position);
    }
}

impl BranchActor {
    fn reservation_ended(&mut self, reserved: super::stock::Reserved, position: Option<u64>) {
        match position {
            Some(at) => self.stock.done(reserved, at, self.position),
            None => self.stock.release(&reserved),
        }
    }
}

impl Handler<MergeOrders> for BranchActor {
    type Result = ResponseActFuture<Self, Result<Arc<Order>, CommandError>>;

    /// A merge, in three steps on the two orders' writers: the order merged in is held (it
    /// takes no command meanwhile), the other takes it in (one append: this is the merge),
    /// then the held one is closed. A merge cut short after the second step is finished by
    /// the branch when it starts again (`finish_merges`).
    fn handle(&mut self, msg: MergeOrders, _: &mut Context<Self>) -> Self::Result {
        let prepared = (|| {
            self.owning()?;
            let branch = self.configured()?;
            if msg.into == msg.from {
                return Err(CommandError::InvalidTransition(
                    "an order cannot be merged into itself".into(),
                ));
            }
            let into = self
                .order_tables
                .get(&msg.into)
                .cloned()
                .ok_or(CommandError::UnknownOrder(msg.into))?;
            Ok((branch, into, self.order_tables.get(&msg.from).cloned()))
        })();
        let (branch, into_table, from_table) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let Some(from_table) = from_table else {
            // Merged (or closed) already: a retry gets its first answer.
            let unknown = CommandError::UnknownOrder(msg.from);
            return Box::pin(fut::wrap_future(
                self.first_answer_or(msg.idempotency, unknown),
            ));
        };
        let (into_addr, from_addr) = (self.table(&into_table), self.table(&from_table));
        let (into, from) = (msg.into, msg.from);
        let merge = async move {
            let other = from_addr
                .send(Freeze(from))
                .await
                .map_err(|_| CommandError::JournalUnavailable)??;
            let taken = into_addr
                .send(ExecuteOrder {
                    order_id: into,
                    command: OrderCommand::MergeFrom {
                        other: Box::new((*other).clone()),
                    },
                    branch: branch.clone(),
                    timing: crate::prep::Timing::default(),
                    idempotency: msg.idempotency,
                    span: msg.span.clone(),
                })
                .await
                .map_err(|_| CommandError::JournalUnavailable)
                .and_then(|r| r);
            let merged = match taken {
                Ok(merged) => merged,
                Err(e) => {
                    from_addr.do_send(Thaw(from));
                    return Err(e);
                }
            };
            // The merge is done: the other order is closed now, or (the journal failing
            // it) soon, by the branch.
            let closed = from_addr
                .send(ExecuteOrder {
                    order_id: from,
                    command: OrderCommand::MergeInto {
                        into,
                        seq: other.seq,
                    },
                    branch,
                    timing: crate::prep::Timing::default(),
                    idempotency: None,
                    span: msg.span,
                })
                .await;
            let unfinished = match closed {
                Ok(Ok(_)) | Ok(Err(CommandError::OrderClosed)) => None,
                _ => Some((*other).clone()),
            };
            Ok((merged, unfinished))
        };
        Box::pin(merge.into_actor(self).map(move |merged, act, ctx| {
            let (merged, unfinished) = merged?;
            if let Some(other) = unfinished {
                act.unfinished_merges.push((other, into));
                act.finish_merges(ctx);
            }
            Ok(merged)
        }))
    }
}

impl BranchActor {
    /// Closes the orders merged into another whose close is not journaled yet, on the
    /// replica that writes the branch; one that fails is tried again a second later.
    pub(super) fn finish_merges(&mut self, ctx: &mut Context<Self>) {
        if !self.owner || self.unfinished_merges.is_empty() {
            return;
        }
        let Ok(branch) = self.configured() else {
            return;
        };
        for (order, into) in std::mem::take(&mut self.unfinished_merges) {
            let addr = self.table(&order.table);
            // After a restart its table actor does not hold it (the view hides it).
            addr.do_send(AdoptOrder(Arc::new(order.clone())));
            let close = addr.send(ExecuteOrder {
                order_id: order.id,
                command: OrderCommand::MergeInto {
                    into,
                    seq: order.seq,
                },
                branch: branch.clone(),
                timing: crate::prep::Timing::default(),
                idempotency: None,
                span: tracing::Span::none(),
            });
            ctx.spawn(close.into_actor(self).map(move |closed, act, ctx| {
                match closed {
                    Ok(Ok(_)) | Ok(Err(CommandError::OrderClosed)) => {}
                    other => {
                        tracing::warn!(branch = %act.id, order = %order.id, result = ?other.map(|r| r.map(|_| ())), "merged order not closed yet; trying again");
                        act.unfinished_merges.push((order, into));
                        ctx.run_later(std::time::Duration::from_secs(1), |act, ctx| {
                            act.finish_merges(ctx)
                        });
                    }
                }
            }));
        }
    }
}

/// How often the branch looks for paced courses that are due.
pub(super) const PACE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl BranchActor {
    /// Course pacing: fires every course whose time has come, once each (the fire's key is
    /// the schedule's, so a fire sent twice is done once), on the replica that writes the
    /// branch.
    pub(super) fn fire_due_courses(&mut self, ctx: &mut Context<Self>) {
        if !self.owner {
            return;
        }
        let now = Utc::now();
        let due: Vec<(OrderId, u8, chrono::DateTime<Utc>)> = self
            .view
            .values()
            .filter(|o| !self.pacing.contains(&o.id))
            .filter(|o| {
                o.scheduled
                    .is_none_or(|s| !self.pacing_refused.contains(&(o.id, s.at)))
            })
            .filter_map(|o| {
                let s = o.scheduled.filter(|s| s.at <= now)?;
                // Its lines may have been voided since, or fired with another course's.
                let held = o
                    .lines
                    .values()
                    .any(|l| l.status == LineStatus::Held && l.course == s.course);
                held.then_some((o.id, s.course, s.at))
            })
            .collect();
        for (order, course, at) in due {
            self.pacing.insert(order);
            let fire = self.change_order(ChangeOrder {
                order,
                command: OrderCommand::Fire {
                    course: Some(course),
                    priority: false,
                },
                idempotency: Some(KeyRecord {
                    key: format!("paced {order} {course} {}", at.timestamp_micros()),
                    fingerprint: "paced course".into(),
                }),
                span: tracing::Span::none(),
            });
            ctx.spawn(fire.into_actor(self).map(move |fired, act, _| {
                act.pacing.remove(&order);
                match fired {
                    Ok(_) => {}
                    // Not now: the next tick tries again.
                    Err(CommandError::JournalUnavailable | CommandError::Conflict) => {}
                    Err(CommandError::NotOwner) => {}
                    // Refused as it stands (an item 86'd since, ...): the waiter fires it.
                    Err(e) => {
                        tracing::warn!(branch = %act.id, %order, course, error = %e, "paced course refused; it waits for the waiter");
                        act.pacing_refused.insert((order, at));
                    }
                }
            }));
        }
    }
}

/// The key an external reference is stored under for the day. It holds spaces, which a
/// client's idempotency key cannot, and one fingerprint for every request naming it, so any
/// open naming it again gets the first order.
fn external_ref_key(day: NaiveDate, reference: &str) -> KeyRecord {
    KeyRecord {
        key: format!("external_ref {day} {reference}"),
        fingerprint: "external_ref".into(),
    }
}

/// What an open may go on to do: add lines, then fire (a fire without lines finds nothing to
/// fire, and refuses the open).
fn check_then(then: &[OrderCommand]) -> Result<(), CommandError> {
    let allowed = matches!(
        then,
        [] | [OrderCommand::AddLines { .. }]
            | [OrderCommand::Fire { .. }]
            | [OrderCommand::AddLines { .. }, OrderCommand::Fire { .. }]
    );
    if allowed {
        Ok(())
    } else {
        Err(invalid(
            "an open may add lines, then fire them; nothing else",
        ))
    }
}

impl Handler<OpenOrder> for BranchActor {
    type Result = ResponseActFuture<Self, Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: OpenOrder, _: &mut Context<Self>) -> Self::Result {
        let prepared = (|| {
            self.owning()?;
            let branch = self.configured()?;
            let table = branch.table(&msg.table)?;
            if matches!(msg.guests, Some(0) | Some(101..)) {
                return Err(invalid("guests must be 1 to 100"));
            }
            if let Some(reference) = &msg.external_ref {
                check_external_ref(reference)?;
            }
            check_then(&msg.then)?;
            let source = msg.source.unwrap_or(OrderSource::from(table.kind));
            let reserved = self.stock.reserve(&branch, &msg.then)?;
            let today = self.today(&branch);
            let ticket_no = match self.last_ticket {
                Some((day, n)) if day == today => n % 9999 + 1,
                _ => 1,
            };
            self.last_ticket = Some((today, ticket_no));
            // An external reference is the order's key for the day: the journal stores it
            // with the open, and a second open naming it answers with the first order.
            let idempotency = match &msg.external_ref {
                Some(reference) => Some(external_ref_key(today, reference)),
                None => msg.idempotency.clone(),
            };
            let timing = self.timing(&branch, &msg.then);
            Ok((
                reserved,
                OpenOrderAt {
                    timing,
                    order_id: OrderId::new(),
                    opened: OrderChange::OrderOpened {
                        ticket_no,
                        day: today,
                        guests: msg.guests,
                        source: Some(source),
                        external_ref: msg.external_ref.clone(),
                        priority: msg.priority,
                    },
                    then: msg.then.clone(),
                    branch,
                    idempotency,
                    span: msg.span.clone(),
                },
            ))
        })();
        let (reserved, open) = match prepared {
            Ok(prepared) => prepared,
            // A retry of an open that took the last portions gets its first answer.
            Err(e @ CommandError::SoldOut(..)) => {
                let key = match &msg.external_ref {
                    Some(reference) => {
                        let today = self.configured().map(|b| self.today(&b));
                        today.ok().map(|day| external_ref_key(day, reference))
                    }
                    None => msg.idempotency.clone(),
                };
                return Box::pin(fut::wrap_future(self.first_answer_or(key, e)));
            }
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let table = msg.table.clone();
        let addr = self.table(&msg.table);
        Box::pin(
            async move { addr.send(open).await }
                .into_actor(self)
                .map(move |res, act, _| {
                    let opened = res
                        .map_err(|_| CommandError::JournalUnavailable)
                        .and_then(|r| r);
                    let position = opened.as_ref().ok().map(|o| o.order.position);
                    act.reservation_ended(reserved, position);
                    let opened = opened?;
                    if opened.open {
                        act.order_tables.insert(opened.order.id, table);
                    }
                    Ok(opened.order)
                }),
        )
    }
}

impl Handler<ChangeOrder> for BranchActor {
    type Result = ResponseFuture<Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: ChangeOrder, _: &mut Context<Self>) -> Self::Result {
        self.change_order(msg)
    }
}

impl Handler<GetOrder> for BranchActor {
    type Result = ResponseFuture<Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: GetOrder, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.configured() {
            return Box::pin(async move { Err(e) });
        }
        match self.order_tables.get(&msg.0).cloned() {
            // A replica that follows the branch has no table actors: its view is the order.
            Some(_) if !self.owner => {
                let order = self.view.get(&msg.0).cloned().map(Arc::new);
                Box::pin(async move { order.ok_or(CommandError::UnknownOrder(msg.0)) })
            }
            Some(table) => {
                let addr = self.table(&table);
                Box::pin(async move {
                    addr.send(ReadOrder(msg.0))
                        .await
                        .map_err(|_| CommandError::JournalUnavailable)?
                })
            }
            None => Box::pin(self.read_closed(msg.0)),
        }
    }
}

impl Handler<OpenOrders> for BranchActor {
    type Result = ResponseFuture<Result<Vec<Arc<Order>>, CommandError>>;

    fn handle(&mut self, _: OpenOrders, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.configured() {
            return Box::pin(async move { Err(e) });
        }
        if !self.owner {
            let mut orders: Vec<Arc<Order>> = self.view.values().cloned().map(Arc::new).collect();
            orders.sort_by_key(|o| (o.opened_at, o.ticket_no));
            return Box::pin(async move { Ok(orders) });
        }
        let reads: Vec<_> = self
            .order_tables
            .iter()
            .map(|(order, table)| self.tables.get(table).map(|a| a.send(ReadOrder(*order))))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Box::pin(async move {
            let mut orders: Vec<Arc<Order>> = join_all(reads)
                .await
                .into_iter()
                .filter_map(|r| r.ok()?.ok())
                .collect();
            orders.sort_by_key(|o| (o.opened_at, o.ticket_no));
            Ok(orders)
        })
    }
}
