//! The kitchen domain of the order-routing engine: branches, orders, tickets and stations,
//! the actors that own them, and the journal they write to before anything is acknowledged.
//!
//! Nothing here knows HTTP, websocket frames or a database driver beyond the `Journal` trait.

pub mod backup;
pub mod branch;
pub mod devices;
pub mod error;
pub mod event;
pub mod ids;
pub mod journal;
pub mod lag;
pub mod menu;
pub mod metrics;
pub mod order;
pub mod prep;
pub mod registry;
pub mod station;
pub mod stored;
pub mod subscriber;
pub mod table;

pub use branch::Acknowledged;
pub use error::CommandError;
pub use registry::{Engine, EngineOptions};
