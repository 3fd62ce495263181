//! The branch's stations: a station actor per station the configuration names, and the station
//! commands (start, bump, recall) and reads routed through the branch, which knows each live
//! ticket's order.

use actix::prelude::*;

use super::messages::{
    Acknowledged, ChangeOrder, StationAllDay, StationBumped, StationCommand, StationSeen,
    StationSpeed, StationTickets,
};
use super::BranchActor;
use crate::error::CommandError;
use crate::ids::StationId;
use crate::order::{OrderCommand, Ticket};
use crate::station::{
    AllDay, LiveTickets, RecentlyBumped, Seen, Speed, SpeedOfService, StationActor, StationLimits,
    StockLevels, TicketAction, Watch, WatchReport,
};
use crate::subscriber::AllDayItem;

impl BranchActor {
    /// Tells the process which of the branch's devices are revoked (their sockets close).
    pub(super) fn publish_devices(&self) {
        if let Some(b) = &self.branch {
            crate::devices::REVOKED.publish(&self.id, b.devices().revoked_ids());
        }
    }

    /// Starts actors for stations the configuration names and this branch does not run yet.
    pub(super) fn start_stations(&mut self) {
        // Only stations started with the branch are as of the recovered position.
        let recent = std::mem::take(&mut self.recent);
        let Some(branch) = self.branch.clone() else {
            return;
        };
        let limits = StationLimits {
            unseen_after: branch.unseen_after(),
            late_after: branch.late_after(),
        };
        for station in branch.stations() {
            if self.stations.contains_key(&station.id) {
                continue;
            }
            let tickets: Vec<Ticket> = self
                .view
                .values()
                .flat_map(|o| o.tickets.iter())
                .filter(|t| t.station == station.id)
                .cloned()
                .collect();
            let mut actor = StationActor::new(
                self.id.clone(),
                station.id.clone(),
                tickets,
                self.position,
                &recent,
                self.journal.clone(),
                self.frames.clone(),
            );
            if let Some(addr) = &self.addr {
                actor = actor.watched_by(addr.clone().recipient(), limits);
            }
            self.stations.insert(station.id.clone(), actor.start());
        }
        let stock = (!self.stock.is_empty()).then(|| self.stock.shared_levels());
        for station in self.stations.values() {
            station.do_send(limits);
            if let Some(stock) = &stock {
                station.do_send(StockLevels(stock.clone()));
            }
        }
    }

    pub(super) fn station(&self, station: &StationId) -> Result<Addr<StationActor>, CommandError> {
        self.configured()?.station(station)?;
        self.stations
            .get(station)
            .cloned()
            .ok_or_else(|| CommandError::UnknownStation(station.clone()))
    }
}

impl Handler<StationCommand> for BranchActor {
    type Result = ResponseFuture<Result<Ticket, CommandError>>;

    /// The branch knows which order each live ticket belongs to and sends the command to that
    /// order's table actor, its one writer; the station actor only shows the outcome.
    fn handle(&mut self, msg: StationCommand, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.station(&msg.station) {
            return Box::pin(async move { Err(e) });
        }
        let (ticket, station) = (msg.ticket, msg.station);
        let order = match self.ticket_orders.get(&ticket) {
            Some((order, at)) if *at == station => *order,
            // Not a ticket of this station's open orders. Its order may have closed since a
            // command the client is retrying: that command gets its first answer again.
            _ => {
                let journal = self.journal.clone();
                let branch = self.id.to_string();
                return Box::pin(async move {
                    let unknown = CommandError::UnknownTicket(ticket);
                    let Some(key) = msg.idempotency else {
                        return Err(unknown);
                    };
                    let first = crate::table::first_answer(journal, &branch, &key).await?;
                    first
                        .and_then(|order| order.ticket(&ticket).cloned())
                        .filter(|t| t.station == station)
                        .ok_or(unknown)
                });
            }
        };
        let command = match msg.action {
            TicketAction::Start => OrderCommand::StartTicket { ticket },
            TicketAction::Bump => OrderCommand::BumpTicket { ticket },
            TicketAction::Recall => OrderCommand::RecallTicket { ticket },
        };
        let answer = self.change_order(ChangeOrder {
            order,
            command,
            idempotency: msg.idempotency,
            span: msg.span,
        });
        Box::pin(async move {
            answer
                .await?
                .ticket(&ticket)
                .cloned()
                .ok_or(CommandError::UnknownTicket(ticket))
        })
    }
}

impl Handler<StationTickets> for BranchActor {
    type Result = ResponseFuture<Result<Vec<Ticket>, CommandError>>;

    fn handle(&mut self, msg: StationTickets, _: &mut Context<Self>) -> Self::Result {
        let addr = match self.station(&msg.0) {
            Ok(addr) => addr,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(async move {
            addr.send(LiveTickets)
                .await
                .map_err(|_| CommandError::JournalUnavailable)
        })
    }
}

impl Handler<StationBumped> for BranchActor {
    type Result = ResponseFuture<Result<Vec<Ticket>, CommandError>>;

    fn handle(&mut self, msg: StationBumped, _: &mut Context<Self>) -> Self::Result {
        let addr = match self.station(&msg.station) {
            Ok(addr) => addr,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(async move {
            addr.send(RecentlyBumped(msg.within))
                .await
                .map_err(|_| CommandError::JournalUnavailable)
        })
    }
}

impl Handler<StationSeen> for BranchActor {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, msg: StationSeen, _: &mut Context<Self>) -> Self::Result {
        let station = self.station(&msg.station)?;
        if let (false, false, Some(acks)) = (self.owner, msg.relayed, &self.acks) {
            let _ = acks.send(Acknowledged {
                branch: self.id.clone(),
                station: msg.station,
                tickets: msg.tickets.clone(),
            });
        }
        station.do_send(Seen(msg.tickets));
        Ok(())
    }
}

impl Handler<WatchReport> for BranchActor {
    type Result = ResponseFuture<Result<(), CommandError>>;

    /// Journals what a station's watch found, through the ticket's table actor: only the
    /// replica that writes the branch does (`owning`).
    fn handle(&mut self, msg: WatchReport, _: &mut Context<Self>) -> Self::Result {
        let order = match self.ticket_orders.get(&msg.ticket) {
            Some((order, at)) if *at == msg.station => *order,
            _ => {
                let unknown = CommandError::UnknownTicket(msg.ticket);
                return Box::pin(async move { Err(unknown) });
            }
        };
        let command = match msg.watch {
            Watch::Unseen { waited_seconds } => OrderCommand::MarkUnseen {
                ticket: msg.ticket,
                waited_seconds,
            },
            Watch::Seen => OrderCommand::MarkSeen { ticket: msg.ticket },
        };
        let answer = self.change_order(ChangeOrder {
            order,
            command,
            idempotency: None,
            span: tracing::Span::none(),
        });
        Box::pin(async move { answer.await.map(|_| ()) })
    }
}

impl Handler<StationAllDay> for BranchActor {
    type Result = ResponseFuture<Result<Vec<AllDayItem>, CommandError>>;

    fn handle(&mut self, msg: StationAllDay, _: &mut Context<Self>) -> Self::Result {
        let addr = match self.station(&msg.0) {
            Ok(addr) => addr,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(async move {
            addr.send(AllDay)
                .await
                .map_err(|_| CommandError::JournalUnavailable)
        })
    }
}

impl Handler<StationSpeed> for BranchActor {
    type Result = ResponseFuture<Result<SpeedOfService, CommandError>>;

    fn handle(&mut self, msg: StationSpeed, _: &mut Context<Self>) -> Self::Result {
        let addr = match self.station(&msg.station) {
            Ok(addr) => addr,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let window = msg.window;
        Box::pin(async move {
            addr.send(Speed { window })
                .await
                .map_err(|_| CommandError::JournalUnavailable)
        })
    }
}
