//! The protocol's bodies: what REST answers and websocket frames carry, apart from the
//! domain's types.
//!
//! Every request and answer body and every frame's payload is a type of this module, converted
//! from (or to) the domain's at the edge; the OpenAPI schemas are these types'. Renaming a
//! field of the domain changes nothing a device sees; changing one here is a protocol change,
//! and `tests/protocol.rs` holds the documented examples against what the server sends.

pub mod device;
pub mod event;
pub mod kitchen;
pub mod live;
pub mod menu;
pub mod order;
pub mod schema;

pub use event::{encode_envelope, Event, JournalEvent};
pub use live::{BranchInfo, Snapshot, Topic};
pub use menu::BranchConfig;
pub use order::{NewLine, Order, OrderSource, Ticket};
