//! The branches the load test configures for itself: `load-1..load-B`, each with S cooking
//! stations and an expo, a menu routed across them (some items to two stations), T tables, and
//! a counter and a takeaway (tables of those kinds, where the one-call orders go).

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::auth::Tokens;

const STATION_NAMES: [&str; 8] = [
    "grill", "fryer", "cold", "saute", "wok", "pizza", "pastry", "bar",
];
const DISHES: [&str; 3] = ["special", "classic", "side"];
pub const EXPO: &str = "expo";
/// The tables that are not tables: where counter and takeaway orders are taken, with their kind.
const COUNTERS: [(&str, &str, &str); 2] = [
    ("counter", "Counter", "counter"),
    ("takeaway", "Takeaway", "takeaway"),
];

/// A menu item and the cooking stations (by index) it is routed to.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub stations: Vec<usize>,
}

/// The shape every load branch shares; only the branch id differs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub branches: Vec<String>,
    /// Cooking stations; expo is station index `cooking.len()` where an index names one.
    pub cooking: Vec<String>,
    pub items: Vec<Item>,
    /// The dining tables, `t1 ... tT`.
    pub tables: Vec<String>,
    /// The counter and the takeaway: table index `tables.len() + i` where an index names one.
    pub counters: Vec<String>,
    /// The branches' `unseen_after_seconds`, when set (the engine's default otherwise).
    pub unseen_after_seconds: Option<u16>,
}

impl Layout {
    pub fn new(branches: usize, stations: usize, tables: usize) -> Self {
        let cooking: Vec<String> = (0..stations)
            .map(|i| match STATION_NAMES.get(i) {
                Some(name) => (*name).to_owned(),
                None => format!("station-{}", i + 1),
            })
            .collect();
        let mut items = Vec::new();
        for (i, station) in cooking.iter().enumerate() {
            for dish in DISHES {
                items.push(Item {
                    id: format!("{station}-{dish}"),
                    stations: vec![i],
                });
            }
            if stations > 1 {
                // A plate two stations cook for: the burger of this kitchen.
                let j = (i + 1) % stations;
                items.push(Item {
                    id: format!("{station}-{}-combo", cooking[j]),
                    stations: vec![i, j],
                });
            }
        }
        Self {
            branches: (1..=branches).map(|b| format!("load-{b}")).collect(),
            cooking,
            items,
            tables: (1..=tables).map(|t| format!("t{t}")).collect(),
            counters: COUNTERS.iter().map(|(id, _, _)| (*id).to_owned()).collect(),
            unseen_after_seconds: None,
        }
    }

    /// Every table an order may go to: the dining tables, then the counter and the takeaway.
    pub fn all_tables(&self) -> impl Iterator<Item = &String> {
        self.tables.iter().chain(&self.counters)
    }

    /// How many tables an order may go to (`all_tables`).
    pub fn table_count(&self) -> usize {
        self.tables.len() + self.counters.len()
    }

    /// The table of an index into `all_tables`.
    pub fn table(&self, i: usize) -> &str {
        match i.checked_sub(self.tables.len()) {
            None => &self.tables[i],
            Some(c) => &self.counters[c],
        }
    }

    /// Every station, cooking then expo.
    pub fn stations(&self) -> impl Iterator<Item = &str> {
        self.cooking
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(EXPO))
    }

    /// The station's index (expo is last), if it is one of ours.
    pub fn station_index(&self, station: &str) -> Option<usize> {
        if station == EXPO {
            return Some(self.cooking.len());
        }
        self.cooking.iter().position(|s| s == station)
    }

    /// The `PUT /api/v1/branches/{branch}` body.
    pub fn config(&self, branch: &str) -> Value {
        let mut stations: Vec<Value> = self
            .cooking
            .iter()
            .map(|s| json!({"id": s, "name": title(s)}))
            .collect();
        stations.push(json!({"id": EXPO, "name": "Expo", "kind": "expo"}));
        let categories: Vec<Value> = self
            .cooking
            .iter()
            .map(|s| json!({"id": format!("{s}-menu"), "name": format!("{} menu", title(s)), "stations": [s]}))
            .collect();
        let items: Vec<Value> = self
            .items
            .iter()
            .enumerate()
            .map(|(n, item)| {
                let home = &self.cooking[item.stations[0]];
                let mut v = json!({
                    "id": item.id,
                    "name": title(&item.id),
                    "category": format!("{home}-menu"),
                    "price_cents": 500 + 100 * (n as u32 % 20),
                });
                if item.stations.len() > 1 {
                    let routes: Vec<&str> = item
                        .stations
                        .iter()
                        .map(|&i| self.cooking[i].as_str())
                        .collect();
                    v["stations"] = json!(routes);
                }
                v
            })
            .collect();
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|t| json!({"id": t, "name": format!("Table {}", &t[1..])}))
            .chain(
                COUNTERS
                    .iter()
                    .map(|(id, name, kind)| json!({"id": id, "name": name, "kind": kind})),
            )
            .collect();
        let mut config = json!({
            "name": format!("Load test {branch}"),
            "stations": stations,
            "categories": categories,
            "items": items,
            "tables": tables,
        });
        if let Some(secs) = self.unseen_after_seconds {
            config["unseen_after_seconds"] = secs.into();
        }
        config
    }

    /// Configures every load branch on the server, as its manager.
    pub async fn configure(
        &self,
        client: &reqwest::Client,
        base: &str,
        tokens: &Tokens,
    ) -> anyhow::Result<()> {
        if self.cooking.len() > 63 {
            bail!("at most 63 cooking stations (the engine allows 64 stations with expo)");
        }
        if self.table_count() > 2000 {
            bail!(
                "at most {} tables a branch (the engine takes 2000, the counter and the takeaway included)",
                2000 - self.counters.len()
            );
        }
        for branch in &self.branches {
            let url = format!("{base}/api/v1/branches/{branch}");
            let res = client
                .put(&url)
                .bearer_auth(tokens.manager(branch))
                .json(&self.config(branch))
                .send()
                .await
                .with_context(|| format!("PUT {url}"))?;
            let status = res.status();
            if !status.is_success() {
                let body = res.text().await.unwrap_or_default();
                bail!("configuring {branch} was refused: {status} {body}");
            }
        }
        Ok(())
    }
}

fn title(slug: &str) -> String {
    let words: Vec<String> = slug
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_some_items_to_two_stations() {
        let l = Layout::new(2, 4, 10);
        assert_eq!(l.branches, vec!["load-1", "load-2"]);
        assert_eq!(l.items.len(), 16);
        assert!(l.items.iter().any(|i| i.stations.len() == 2));
        assert_eq!(l.station_index("expo"), Some(4));
        assert_eq!(l.station_index("fryer"), Some(1));
        let config = l.config("load-1");
        assert_eq!(config["stations"].as_array().unwrap().len(), 5);
        assert_eq!(config["tables"][9]["id"], "t10");
        assert_eq!(config["tables"][10]["kind"], "counter");
        assert_eq!(config["tables"][11]["id"], "takeaway");
        assert_eq!(l.table_count(), 12);
        assert_eq!(l.table(9), "t10");
        assert_eq!(l.table(11), "takeaway");
        assert_eq!(l.all_tables().count(), 12);
        assert_eq!(config["items"][3]["stations"], json!(["grill", "fryer"]));
    }

    #[test]
    fn one_station_has_no_combos() {
        let l = Layout::new(1, 1, 1);
        assert!(l.items.iter().all(|i| i.stations == vec![0]));
    }
}
