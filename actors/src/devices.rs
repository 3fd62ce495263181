//! The devices a branch's managers issued tokens to, which of them are revoked, and the
//! pairing codes a new device may exchange once for its token.
//!
//! The book is kept from the branch's own events (`device_issued`, `device_revoked`,
//! `pairing_offered`, `pairing_redeemed`) on every replica and in recovery alike, and saved in
//! snapshots. Tokens are signed and checked by the edge; what it needs of the book on every
//! request (is this device revoked?) is published to `revoked`, one process-wide set, and each
//! revocation is announced so that the device's open sockets close at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{LazyLock, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::ids::{BranchId, StationId, TableId};

/// How long a revoked device's record is kept after its token would have expired anyway.
const KEEP_EXPIRED: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// A device a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The token's `jti`: the device's id.
    pub device: String,
    /// What people call it ("grill screen by the pass").
    pub name: String,
    /// Its role as the edge names it (manager, pos, waiter, kitchen, guest).
    pub role: String,
    pub station: Option<StationId>,
    pub table: Option<TableId>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A short code a manager shows that a new device exchanges, once and in time, for a token
/// for `device`. Only a keyed hash of the code is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingOffer {
    pub code_hash: String,
    /// The device the code pairs (its token is issued when the code is redeemed).
    pub device: DeviceRecord,
    /// The code is refused after this.
    pub expires_at: DateTime<Utc>,
}

/// A branch's devices and its pairing codes not yet used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceBook {
    devices: BTreeMap<String, DeviceRecord>,
    offers: HashMap<String, PairingOffer>,
}

impl DeviceBook {
    pub fn issued(&mut self, device: DeviceRecord) {
        self.devices.insert(device.device.clone(), device);
    }

    pub fn revoked(&mut self, device: &str, at: DateTime<Utc>) {
        if let Some(d) = self.devices.get_mut(device) {
            d.revoked_at.get_or_insert(at);
        }
    }

    pub fn offered(&mut self, offer: PairingOffer) {
        self.offers.insert(offer.code_hash.clone(), offer);
    }

    /// The code is used: it pairs no other device, and its device is issued.
    pub fn redeemed(&mut self, code_hash: &str) {
        if let Some(offer) = self.offers.remove(code_hash) {
            self.issued(offer.device);
        }
    }

    pub fn get(&self, device: &str) -> Option<&DeviceRecord> {
        self.devices.get(device)
    }

    /// The offer a code's hash names, while it may be redeemed.
    pub fn offer(&self, code_hash: &str, now: DateTime<Utc>) -> Option<&PairingOffer> {
        self.offers.get(code_hash).filter(|o| o.expires_at > now)
    }

    /// Every device whose token has not expired, and the revoked ones for a while after.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<DeviceRecord> {
        let mut list: Vec<DeviceRecord> = self
            .devices
            .values()
            .filter(|d| d.expires_at + KEEP_EXPIRED > now)
            .cloned()
            .collect();
        list.sort_by_key(|d| std::cmp::Reverse(d.issued_at));
        list
    }

    /// The devices and pending offers worth keeping in a snapshot at `now`.
    pub fn saved(&self, now: DateTime<Utc>) -> (Vec<DeviceRecord>, Vec<PairingOffer>) {
        let devices = self.list(now);
        let offers = self
            .offers
            .values()
            .filter(|o| o.expires_at > now)
            .cloned()
            .collect();
        (devices, offers)
    }

    pub fn from_saved(devices: Vec<DeviceRecord>, offers: Vec<PairingOffer>) -> Self {
        Self {
            devices: devices.into_iter().map(|d| (d.device.clone(), d)).collect(),
            offers: offers
                .into_iter()
                .map(|o| (o.code_hash.clone(), o))
                .collect(),
        }
    }

    /// The ids of the revoked devices.
    pub fn revoked_ids(&self) -> HashSet<String> {
        self.devices
            .values()
            .filter(|d| d.revoked_at.is_some())
            .map(|d| d.device.clone())
            .collect()
    }
}

/// The process's revoked devices, per branch, as the branches last published them.
pub struct Revoked {
    by_branch: RwLock<HashMap<BranchId, HashSet<String>>>,
    announce: broadcast::Sender<(BranchId, String)>,
}

/// The one set of revoked devices of this process (device ids are UUIDs, unique everywhere).
pub static REVOKED: LazyLock<Revoked> = LazyLock::new(|| Revoked {
    by_branch: RwLock::new(HashMap::new()),
    announce: broadcast::channel(256).0,
});

impl Revoked {
    /// Whether a device of `branch` is revoked.
    pub fn contains(&self, branch: &BranchId, device: &str) -> bool {
        self.by_branch
            .read()
            .expect("revoked devices")
            .get(branch)
            .is_some_and(|set| set.contains(device))
    }

    /// The branch's revoked devices now; each newly revoked one is announced.
    pub fn publish(&self, branch: &BranchId, revoked: HashSet<String>) {
        let mut all = self.by_branch.write().expect("revoked devices");
        let known = all.entry(branch.clone()).or_default();
        for device in revoked.difference(known) {
            let _ = self.announce.send((branch.clone(), device.clone()));
        }
        *known = revoked;
    }

    /// Revocations as they are published (a socket closes when its device's comes).
    pub fn announcements(&self) -> broadcast::Receiver<(BranchId, String)> {
        self.announce.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, at: DateTime<Utc>) -> DeviceRecord {
        DeviceRecord {
            device: id.into(),
            name: format!("screen {id}"),
            role: "kitchen".into(),
            station: None,
            table: None,
            issued_at: at,
            expires_at: at + chrono::TimeDelta::hours(1),
            revoked_at: None,
        }
    }

    #[test]
    fn a_code_pairs_once_and_only_in_time() {
        let now = Utc::now();
        let mut book = DeviceBook::default();
        let offer = PairingOffer {
            code_hash: "h".into(),
            device: device("d1", now),
            expires_at: now + chrono::TimeDelta::minutes(10),
        };
        book.offered(offer);
        assert!(book.offer("h", now).is_some());
        assert!(book
            .offer("h", now + chrono::TimeDelta::minutes(11))
            .is_none());
        book.redeemed("h");
        assert!(book.offer("h", now).is_none(), "used");
        assert!(book.get("d1").is_some(), "the device is issued");
    }

    #[test]
    fn revocations_are_announced_once_and_kept_per_branch() {
        let branch = BranchId::parse("devices-test").unwrap();
        let mut told = REVOKED.announcements();
        let mut book = DeviceBook::default();
        let now = Utc::now();
        book.issued(device("a", now));
        book.issued(device("b", now));
        book.revoked("a", now);
        REVOKED.publish(&branch, book.revoked_ids());
        assert!(REVOKED.contains(&branch, "a"));
        assert!(!REVOKED.contains(&branch, "b"));
        REVOKED.publish(&branch, book.revoked_ids());
        let mut announced = Vec::new();
        while let Ok((b, d)) = told.try_recv() {
            if b == branch {
                announced.push(d);
            }
        }
        assert_eq!(announced, ["a"]);
        assert_eq!(book.list(now).len(), 2, "a revoked device stays listed");
    }
}
