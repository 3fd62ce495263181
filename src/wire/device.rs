//! A branch's devices as managers list them, and a pairing code as a manager is shown it.

use chrono::{DateTime, Utc};
use rail_actors::devices::DeviceRecord;
use serde::Serialize;
use utoipa::ToSchema;

/// A device a token was issued to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Device<'a> {
    /// The device's id: its tokens' `jti`.
    pub device: &'a str,
    /// What people call it.
    pub name: &'a str,
    /// `manager`, `pos`, `waiter`, `kitchen` or `guest`.
    pub role: &'a str,
    /// A kitchen screen's station.
    pub station: Option<&'a str>,
    /// A guest's table.
    pub table: Option<&'a str>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was revoked; its tokens are refused since.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When this replica last saw one of its requests or sockets (since it started).
    pub last_seen: Option<DateTime<Utc>>,
}

impl<'a> Device<'a> {
    pub fn new(d: &'a DeviceRecord, last_seen: Option<DateTime<Utc>>) -> Self {
        Self {
            device: &d.device,
            name: &d.name,
            role: &d.role,
            station: d.station.as_ref().map(|s| s.as_str()),
            table: d.table.as_ref().map(|t| t.as_str()),
            issued_at: d.issued_at,
            expires_at: d.expires_at,
            revoked_at: d.revoked_at,
            last_seen,
        }
    }
}

/// A pairing code: a new device sends it once, within its time, for its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pairing<'a> {
    /// Eight letters and digits (no 0, O, 1, I or L), shown as `ABCD-EFGH`; the dash is
    /// optional when typed.
    pub code: String,
    /// Until when it may be used.
    pub expires_at: DateTime<Utc>,
    /// The device it pairs.
    pub device: Device<'a>,
}
