//! What a screen is sent of a topic's state: the `snapshot` frame's body, its `topic`, and a
//! branch as managers and devices read it.

use rail_actors::branch;
use rail_actors::ids::{BranchId, ItemId, StationId, TableId};
use rail_actors::subscriber::{self, Snapshot as State};
use serde::Serialize;
use utoipa::ToSchema;

use super::menu::BranchConfig;
use super::order::{tickets, Order, Ticket};
use super::schema;

/// A stream of a branch a screen can follow.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Topic<'a> {
    /// One station's tickets (a kitchen display).
    Station(&'a StationId),
    /// One table's orders (a waiter's tablet).
    Table(&'a TableId),
    /// Everything in the branch (managers, expo overviews).
    Branch,
}

impl<'a> From<&'a subscriber::Topic> for Topic<'a> {
    fn from(t: &'a subscriber::Topic) -> Self {
        match t {
            subscriber::Topic::Station(s) => Self::Station(s),
            subscriber::Topic::Table(t) => Self::Table(t),
            subscriber::Topic::Branch => Self::Branch,
        }
    }
}

/// The state of a topic at a position; events after that position follow it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Snapshot<'a> {
    Station {
        station: &'a StationId,
        position: u64,
        tickets: Vec<Ticket<'a>>,
    },
    Table {
        table: &'a TableId,
        position: u64,
        orders: Vec<Order<'a>>,
    },
    Branch {
        position: u64,
        config: Box<BranchConfig>,
        eighty_sixed: &'a [ItemId],
        orders: Vec<Order<'a>>,
    },
}

impl<'a> From<&'a State> for Snapshot<'a> {
    fn from(s: &'a State) -> Self {
        match s {
            State::Station {
                station,
                position,
                tickets: live,
            } => Self::Station {
                station,
                position: *position,
                tickets: tickets(live),
            },
            State::Table {
                table,
                position,
                orders,
            } => Self::Table {
                table,
                position: *position,
                orders: orders.iter().map(Order::from).collect(),
            },
            State::Branch {
                position,
                config,
                eighty_sixed,
                orders,
            } => Self::Branch {
                position: *position,
                config: Box::new(config.into()),
                eighty_sixed,
                orders: orders.iter().map(Order::from).collect(),
            },
        }
    }
}

/// What a branch is, as managers and screens read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BranchInfo<'a> {
    #[schema(value_type = schema::BranchId)]
    pub id: &'a BranchId,
    pub config: BranchConfig,
    #[schema(value_type = Vec<schema::ItemId>)]
    pub eighty_sixed: &'a [ItemId],
    /// Every item with a limited count, and what is left of it (0: sold out).
    pub stock: Vec<StockLevel<'a>>,
    pub position: u64,
}

/// What is left of an item with a limited count.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockLevel<'a> {
    #[schema(value_type = schema::ItemId)]
    pub item: &'a ItemId,
    pub left: u32,
}

/// The levels of a stock list.
pub fn stock(levels: &[(ItemId, u32)]) -> Vec<StockLevel<'_>> {
    levels
        .iter()
        .map(|(item, left)| StockLevel { item, left: *left })
        .collect()
}

impl<'a> From<&'a branch::BranchInfo> for BranchInfo<'a> {
    fn from(b: &'a branch::BranchInfo) -> Self {
        Self {
            id: &b.id,
            config: (&b.config).into(),
            eighty_sixed: &b.eighty_sixed,
            stock: stock(&b.stock),
            position: b.position,
        }
    }
}
