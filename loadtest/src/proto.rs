//! The engine's public protocol as the load test speaks it: websocket frames (parsed into only
//! the fields it needs, so a busy run spends its CPU on the engine and not on JSON), and small
//! helpers to connect and subscribe.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A frame the server sends, reduced to what the load test reads.
#[derive(Debug, Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub seq: Option<u64>,
    /// An event's branch-wide position: a screen resumes after the highest one it saw.
    #[serde(default)]
    pub position: Option<u64>,
    #[serde(default)]
    pub event: Option<EventBody>,
    /// A snapshot that answers a resume the server could not serve: replace what you had.
    #[serde(default)]
    pub reset: bool,
    #[serde(default)]
    pub snapshot: Option<SnapshotBody>,
}

/// The body of a `snapshot` frame: a station's live tickets, or a table's open orders.
#[derive(Debug, Default, Deserialize)]
pub struct SnapshotBody {
    #[serde(default)]
    pub position: u64,
    #[serde(default)]
    pub tickets: Vec<TicketBody>,
    #[serde(default)]
    pub orders: Vec<OrderBody>,
}

/// An order as a table snapshot (or a REST answer) holds it, reduced.
#[derive(Debug, Deserialize)]
pub struct OrderBody {
    pub id: String,
    #[serde(default)]
    pub table: String,
    #[serde(default)]
    pub guests: Option<u16>,
    #[serde(default)]
    pub closed_at: Option<String>,
    /// Where the order came from: `dine_in`, `counter`, `takeaway`, ...
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub lines: Vec<LineBody>,
    #[serde(default)]
    pub tickets: Vec<TicketBody>,
    #[serde(default)]
    pub fires: u32,
}

/// A line of an order.
#[derive(Debug, Deserialize)]
pub struct LineBody {
    pub id: u64,
    #[serde(default)]
    pub item: String,
    #[serde(default)]
    pub quantity: u16,
    #[serde(default)]
    pub modifiers: Vec<String>,
    #[serde(default)]
    pub seat: Option<u16>,
    #[serde(default)]
    pub course: u8,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub fire_no: Option<u32>,
}

/// The body of an `event` frame.
#[derive(Debug, Deserialize)]
pub struct EventBody {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub fire_no: Option<u32>,
    #[serde(default)]
    pub ticket_id: Option<String>,
    /// A fire's tickets (`course_fired`), or the tickets an event names (`line_voided`,
    /// `priority_changed`: `ticket_id` and `station` each).
    #[serde(default)]
    pub tickets: Vec<TicketBody>,
    /// `order_ready` and `lines_served` name line ids; other events carry line objects,
    /// which are skipped.
    #[serde(default)]
    pub lines: LineIds,
    /// The station of the ticket a ticket event is about (`ticket_bumped`, `ticket_unseen`...).
    #[serde(default)]
    pub station: Option<String>,
}

/// A ticket inside a `course_fired` event, a station snapshot or an order answered over REST;
/// or a ticket an event names (`{"ticket_id", "station"}`).
#[derive(Debug, Deserialize)]
pub struct TicketBody {
    #[serde(default, alias = "ticket_id")]
    pub id: String,
    #[serde(default)]
    pub order_id: String,
    #[serde(default)]
    pub station: String,
    /// `cooking` or `expo`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub fire_no: u32,
    #[serde(default)]
    pub lines: Vec<TicketLineBody>,
    /// `new`, `started`, `bumped` or `voided`.
    #[serde(default)]
    pub status: String,
    /// Expo only: every cooking part of the fire is bumped.
    #[serde(default)]
    pub parts_ready: bool,
}

/// A line on a ticket, reduced: which line, and whether it was voided.
#[derive(Debug, Deserialize)]
pub struct TicketLineBody {
    #[serde(default)]
    pub line_id: u64,
    #[serde(default)]
    pub voided: bool,
}

/// The numbers of a JSON array; anything else in it is skipped.
#[derive(Debug, Default)]
pub struct LineIds(pub Vec<u64>);

impl<'de> Deserialize<'de> for LineIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ids;
        impl<'de> Visitor<'de> for Ids {
            type Value = LineIds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LineIds, A::Error> {
                let mut ids = Vec::new();
                while let Some(item) = seq.next_element::<MaybeId>()? {
                    if let MaybeId(Some(id)) = item {
                        ids.push(id);
                    }
                }
                Ok(LineIds(ids))
            }
        }
        d.deserialize_seq(Ids)
    }
}

/// A number, or anything else (skipped).
struct MaybeId(Option<u64>);

impl<'de> Deserialize<'de> for MaybeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaybeId, E> {
                Ok(MaybeId(u64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeId, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeId(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeId, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeId(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a socket follows.
#[derive(Debug, Clone)]
pub enum Topic {
    Station(String),
    Table(String),
}

impl Topic {
    /// The `subscribe` frame; with `after`, a resume from that position.
    pub fn subscribe_frame(&self, branch: &str, id: &str, after: Option<u64>) -> Value {
        let mut frame = match self {
            Topic::Station(s) => {
                json!({"type": "subscribe", "id": id, "branch": branch, "station": s})
            }
            Topic::Table(t) => json!({"type": "subscribe", "id": id, "branch": branch, "table": t}),
        };
        if let Some(after) = after {
            frame["after"] = after.into();
        }
        frame
    }
}

/// Small buffers: ten thousand idle sockets should cost the load test little memory.
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// The source address of the `n`th socket: a kitchen's devices share one address, so the
/// sockets are spread `per` to an address over 127.0.0.1, 127.0.0.2, ... when the server is on
/// this machine's loopback (Linux routes all of 127.0.0.0/8 there). None elsewhere: the system
/// picks.
pub fn source_address(server: &SocketAddr, n: usize, per: usize) -> Option<IpAddr> {
    match server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && per > 0 => {
            let step = u32::try_from(n / per).ok()?;
            // 127.0.0.1 up to 127.255.255.254.
            let addr = 0x7f00_0001u32.checked_add(step % 0x00ff_fffe)?;
            Some(IpAddr::V4(Ipv4Addr::from(addr)))
        }
        _ => None,
    }
}

/// The address a ws:// URL points at.
pub async fn resolve(ws_url: &str) -> anyhow::Result<SocketAddr> {
    let rest = ws_url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("only ws:// URLs are supported, not {ws_url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| anyhow!("{authority} resolves to no address"))
}

/// Connects (from `source` when given) with `token` in the handshake's `Authorization` header.
pub async fn connect(
    ws_url: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
) -> anyhow::Result<Socket> {
    let mut request = ws_url.into_client_request()?;
    request.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding a socket to {ip}"))?;
    }
    let tcp = socket
        .connect(server)
        .await
        .with_context(|| format!("connecting to {server} from {source:?}"))?;
    tcp.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(tcp),
        Some(socket_config()),
    )
    .await
    .with_context(|| format!("websocket handshake with {ws_url}"))?;
    Ok(ws)
}

/// Connects (see [`connect`]), subscribes, and waits until the snapshot and the `subscribed`
/// notice arrived; returns the socket and the snapshot's position.
pub async fn connect_subscribed(
    ws_url: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
    branch: &str,
    topic: &Topic,
    limit: Duration,
) -> anyhow::Result<(Socket, u64)> {
    let (ws, position, _) =
        connect_subscribed_with_tickets(ws_url, server, source, token, branch, topic, limit)
            .await?;
    Ok((ws, position))
}

/// As [`connect_subscribed`], and also the ids of the live tickets of a station's snapshot
/// (none for a table): what a screen shows first, and acknowledges.
pub async fn connect_subscribed_with_tickets(
    ws_url: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
    branch: &str,
    topic: &Topic,
    limit: Duration,
) -> anyhow::Result<(Socket, u64, Vec<String>)> {
    let work = async {
        let mut ws = connect(ws_url, server, source, token).await?;
        ws.send(Message::text(
            topic.subscribe_frame(branch, "sub", None).to_string(),
        ))
        .await?;
        let (mut snapshot, mut subscribed, mut tickets) = (None, false, Vec::new());
        while !(snapshot.is_some() && subscribed) {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Frame = serde_json::from_str(&text)
                        .with_context(|| format!("unreadable frame {text}"))?;
                    match frame.kind.as_str() {
                        "snapshot" => {
                            let body = frame.snapshot.unwrap_or_default();
                            snapshot = Some(body.position);
                            if let Topic::Station(station) = topic {
                                tickets = body
                                    .tickets
                                    .into_iter()
                                    .filter(|t| &t.station == station)
                                    .map(|t| t.id)
                                    .collect();
                            }
                        }
                        "subscribed" => subscribed = true,
                        "error" => bail!(
                            "subscribe to {branch} {topic:?} refused: {} {}",
                            frame.code.unwrap_or_default(),
                            frame.message.unwrap_or_default()
                        ),
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    bail!("socket closed while subscribing: {close:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("socket closed while subscribing"),
            }
        }
        Ok((ws, snapshot.unwrap_or(0), tickets))
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| anyhow!("subscribing to {branch} {topic:?} took over {limit:?}"))?
}

/// FNV-1a: which of a station's screens acts on a ticket, the same on every screen.
pub fn pick(id: &str, of: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % of.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_order_ready_line_ids_and_skips_line_objects() {
        let ready: Frame = serde_json::from_str(
            r#"{"type":"event","stream":"order/x","seq":9,"position":3,
                "event":{"type":"order_ready","order_id":"x","table":"t1","fire_no":2,"lines":[1,2,5]}}"#,
        )
        .unwrap();
        let event = ready.event.unwrap();
        assert_eq!(event.kind, "order_ready");
        assert_eq!(event.lines.0, vec![1, 2, 5]);
        assert_eq!(ready.seq, Some(9));

        let added: Frame = serde_json::from_str(
            r#"{"type":"event","stream":"order/x","seq":2,
                "event":{"type":"lines_added","lines":[{"id":1,"item":"a","modifiers":["x"]}]}}"#,
        )
        .unwrap();
        assert!(added.event.unwrap().lines.0.is_empty());
    }

    #[test]
    fn reads_tickets_of_a_fire() {
        let fired: Frame = serde_json::from_str(
            r#"{"type":"event","topic":{"kind":"station","id":"grill"},"stream":"order/x","seq":3,
                "event":{"type":"course_fired","order_id":"x","fire_no":1,"course":1,
                "tickets":[{"id":"a","station":"grill","kind":"cooking","fire_no":1,"lines":[{"line_id":1},{"line_id":2}]},
                           {"id":"b","station":"expo","kind":"expo","fire_no":1,"lines":[{"line_id":1}]}]}}"#,
        )
        .unwrap();
        let event = fired.event.unwrap();
        assert_eq!(event.tickets.len(), 2);
        assert_eq!(event.tickets[0].lines.len(), 2);
        assert_eq!(event.tickets[1].station, "expo");
    }

    #[test]
    fn reads_a_reset_snapshot_and_resumes_after_a_position() {
        let frame: Frame = serde_json::from_str(
            r#"{"type":"snapshot","topic":{"kind":"station","id":"grill"},"reset":true,
                "snapshot":{"kind":"station","station":"grill","position":118,
                "tickets":[{"id":"a","order_id":"x","station":"grill","kind":"cooking","fire_no":1,
                            "status":"started","parts_ready":false,"lines":[{"line_id":1}]}]}}"#,
        )
        .unwrap();
        assert!(frame.reset);
        let snapshot = frame.snapshot.unwrap();
        assert_eq!(snapshot.position, 118);
        assert_eq!(snapshot.tickets[0].order_id, "x");
        assert_eq!(snapshot.tickets[0].status, "started");

        let event: Frame =
            serde_json::from_str(r#"{"type":"event","stream":"order/x","seq":2,"position":7}"#)
                .unwrap();
        assert_eq!(event.position, Some(7));
        assert!(!event.reset);

        let grill = Topic::Station("grill".into());
        assert_eq!(grill.subscribe_frame("b", "s", Some(7))["after"], 7);
        assert!(grill.subscribe_frame("b", "s", None).get("after").is_none());
    }

    #[test]
    fn reads_voids_and_recalls_and_skips_what_it_does_not_follow() {
        let voided: Frame = serde_json::from_str(
            r#"{"type":"event","stream":"order/x","seq":5,"position":9,
                "event":{"type":"line_voided","order_id":"x","table":"t1","line_id":3,"reason":null,
                "tickets":[{"ticket_id":"a","station":"grill"},{"ticket_id":"e","station":"expo"}]}}"#,
        )
        .unwrap();
        let event = voided.event.unwrap();
        assert_eq!(event.tickets[0].id, "a");
        assert_eq!(event.tickets[1].station, "expo");

        let bumped: Frame = serde_json::from_str(
            r#"{"type":"event","stream":"order/x","seq":6,"position":10,
                "event":{"type":"ticket_unseen","order_id":"x","table":"t1","ticket_id":"a",
                "station":"grill","expo":"expo","waited_seconds":10}}"#,
        )
        .unwrap();
        let event = bumped.event.unwrap();
        assert_eq!(event.ticket_id.as_deref(), Some("a"));
        assert_eq!(event.station.as_deref(), Some("grill"));

        // A station's all-day: no event, no error, nothing the load test reads.
        let all_day: Frame = serde_json::from_str(
            r#"{"type":"all_day","station":"grill","items":[{"item":"grill-special","name":"Grill Special","quantity":3,"tickets":2}]}"#,
        )
        .unwrap();
        assert_eq!(all_day.kind, "all_day");
        assert!(all_day.event.is_none() && all_day.id.is_none() && all_day.code.is_none());

        let ticket: TicketBody = serde_json::from_str(
            r#"{"id":"a","station":"grill","fire_no":1,"priority":true,"unseen":false,
                "lines":[{"line_id":1,"voided":false},{"line_id":2,"voided":true}]}"#,
        )
        .unwrap();
        assert_eq!(ticket.lines.len(), 2);
        assert!(ticket.lines[1].voided && ticket.lines[1].line_id == 2);
    }

    #[test]
    fn spreads_sockets_over_loopback_addresses() {
        let local: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let ip = |n| source_address(&local, n, 100).unwrap().to_string();
        assert_eq!(ip(0), "127.0.0.1");
        assert_eq!(ip(99), "127.0.0.1");
        assert_eq!(ip(100), "127.0.0.2");
        assert_eq!(ip(100 * 300), "127.0.1.45");
        let remote: SocketAddr = "10.1.2.3:3000".parse().unwrap();
        assert_eq!(source_address(&remote, 5, 100), None);
    }

    #[test]
    fn picks_the_same_screen_for_the_same_ticket() {
        let a = pick("0b9f6a52-7b8c-4f0e-9d3a-5e6f7a8b9c0d", 3);
        assert_eq!(a, pick("0b9f6a52-7b8c-4f0e-9d3a-5e6f7a8b9c0d", 3));
        assert!(a < 3);
        assert_eq!(pick("anything", 1), 0);
    }
}
