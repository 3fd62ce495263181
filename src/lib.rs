//! The order-routing engine's server: settings, start-up, the HTTP and websocket edge.

pub mod admission;
pub mod auth;
pub mod body;
pub mod client;
pub mod cluster;
pub mod error;
pub mod idempotency;
pub mod lifecycle;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod screens;
pub mod settings;
pub mod startup;
pub mod strict;
pub mod telemetry;
pub mod wire;
pub mod ws;
