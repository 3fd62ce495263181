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
    #[error("item '{0}' is 86'd (out of stock)")]
    EightySixed(ItemId),
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
}

impl CommandError {
    /// The stable, machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownBranch(_) => "unknown_branch",
            Self::UnknownTable(_) => "unknown_table",
            Self::UnknownItem(_) => "unknown_item",
            Self::UnknownStation(_) => "unknown_station",
            Self::UnknownOrder(_) => "unknown_order",
            Self::UnknownLine(_) => "unknown_line",
            Self::UnknownTicket(_) => "unknown_ticket",
            Self::EightySixed(_) => "item_86",
            Self::Invalid(_) => "invalid_input",
            Self::NothingToFire(_) => "nothing_to_fire",
            Self::NothingToServe => "nothing_to_serve",
            Self::InvalidTransition(_) => "invalid_transition",
            Self::PartsPending(_) => "parts_pending",
            Self::OrderClosed => "order_closed",
            Self::OrderNotFinished(_) => "order_not_finished",
            Self::JournalUnavailable => "journal_unavailable",
            Self::Conflict => "conflict",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }

    /// Whether the caller may retry the same command unchanged.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::JournalUnavailable | Self::Conflict)
    }
}

pub fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::Invalid(message.into())
}
