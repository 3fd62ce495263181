//! Why a command was refused: one enum for the whole domain, each case with a stable code.

use crate::ids::{ItemId, LineId, OrderId, StationId, TableId, TicketId};

/// A refusal. The command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("branch '{0}' is not configured")]
    UnknownBranch(String),
    #[error("table '{0}' is not in this branch")]
    UnknownTable(TableId),
    #[error("item '{0}' is not on the menu")]
    UnknownItem(ItemId),
    #[error("station '{0}' is not in this branch")]
    UnknownStation(StationId),
    #[error("order {0} is not known")]
    UnknownOrder(OrderId),
    #[error("order has no line {0}")]
    UnknownLine(LineId),
    #[error("ticket {0} is not live")]
    UnknownTicket(TicketId),
    #[error("device '{0}' is not one of this branch's")]
    UnknownDevice(String),
    #[error(
        "the pairing code is not valid: it was mistyped, used already or is over 10 minutes old"
    )]
    InvalidPairingCode,
    #[error("item '{0}' is 86'd (out of stock)")]
    EightySixed(ItemId),
    #[error("item '{0}' has fewer left than asked for ({1} left); nothing was added")]
    SoldOut(ItemId, u32),
    #[error("item '{item}' needs a choice of '{group}'")]
    ModifierRequired { item: ItemId, group: String },
    #[error("{0}")]
    Invalid(String),
    #[error("nothing to fire: {0}")]
    NothingToFire(String),
    #[error("nothing ready to serve")]
    NothingToServe,
    #[error("{0}")]
    InvalidTransition(String),
    #[error("expo cannot bump yet: {0} part(s) of the order are still cooking")]
    PartsPending(usize),
    #[error("order is closed")]
    OrderClosed,
    #[error("order still has {0} line(s) in the kitchen or not served")]
    OrderNotFinished(usize),
    #[error("the journal is unavailable; nothing was saved, try again")]
    JournalUnavailable,
    #[error("the order was changed elsewhere; nothing was saved, try again")]
    Conflict,
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// The branch is owned by another replica, or by none for the moment: nothing was done.
    #[error("the branch's owner cannot be reached; nothing was saved, try again")]
    NotOwner,
}

pub fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::Invalid(message.into())
}
