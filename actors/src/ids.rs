//! Identifiers that cannot hold a bad value once made.
//!
//! Names chosen by people (branches, stations, items, categories, tables) are short slugs;
//! identifiers the engine makes (orders, tickets) are UUIDs; a line is numbered within its order.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a slug was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub String);

const SLUG_MAX: usize = 64;

fn check_slug(kind: &str, value: &str) -> Result<(), InvalidId> {
    if value.is_empty() || value.len() > SLUG_MAX {
        return Err(InvalidId(format!(
            "{kind} id must be 1 to {SLUG_MAX} characters"
        )));
    }
    let ok = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok || value.starts_with('-') {
        return Err(InvalidId(format!(
            "{kind} id may hold only lowercase letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses a slug, refusing anything that is not one.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_slug($kind, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug_id!(
    /// One location of the chain.
    BranchId,
    "branch"
);
slug_id!(
    /// A kitchen station (grill, fryer, bar, expo...).
    StationId,
    "station"
);
slug_id!(
    /// A menu item.
    ItemId,
    "item"
);
slug_id!(
    /// A menu category; routing rules may name one.
    CategoryId,
    "category"
);
slug_id!(
    /// A table, or a virtual table such as the counter or takeaway.
    TableId,
    "table"
);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn parse(value: &str) -> Option<Self> {
                Uuid::parse_str(value).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An order, for its whole life.
    OrderId,
    "order"
);
uuid_id!(
    /// What one station sees of one fire.
    TicketId,
    "ticket"
);

/// A line's number within its order (1, 2, 3, ...).
pub type LineId = u32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_refuse_bad_values() {
        assert!(StationId::parse("grill").is_ok());
        assert!(StationId::parse("cold_2").is_ok());
        assert!(StationId::parse("").is_err());
        assert!(StationId::parse("Grill").is_err());
        assert!(StationId::parse("a b").is_err());
        assert!(StationId::parse("-x").is_err());
        assert!(StationId::parse("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<TableId>("\"t/1\"").is_err());
    }
}
