//! Publishing events over `POST /api/events`: the event mix, the event JSON, and the record
//! of every event sent (who should receive it).

use notify_benches::clock::now_us;
use notify_benches::http::Http;
use serde::Serialize;

/// Who an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Personal,
    Group,
    Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Steady,
    Broadcast,
}

pub(crate) struct EventRec {
    pub(crate) kind: Kind,
    /// Session index (personal) or group number (group).
    pub(crate) target: usize,
    pub(crate) phase: Phase,
    pub(crate) sent_us: i64,
    /// Ready sessions that should receive it.
    pub(crate) expected: usize,
}

/// xorshift64*: enough randomness for an event mix, no dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The event JSON the load generator publishes.
fn event_body(id: &str, kind: Kind, target: usize, sent_us: i64, pad: usize) -> String {
    let recipients = match kind {
        Kind::Personal => serde_json::json!({"users": [format!("u{target}")]}),
        Kind::Group => serde_json::json!({"groups": [format!("g{target}")]}),
        Kind::Broadcast => serde_json::json!({"broadcast": true}),
    };
    serde_json::json!({
        "id": id,
        "type": "loadgen.test",
        "recipients": recipients,
        "title": "Load test",
        "message": "A notification from the load generator",
        "data": if pad > 0 {
            serde_json::json!({"sent_at_us": sent_us, "pad": "x".repeat(pad)})
        } else {
            serde_json::json!({"sent_at_us": sent_us})
        },
    })
    .to_string()
}

pub(crate) struct Publisher {
    pub(crate) http: Http,
    pub(crate) pad: usize,
    pub(crate) key: String,
    pub(crate) prefix: String,
    pub(crate) events: Vec<EventRec>,
    pub(crate) errors: Vec<String>,
    /// Behind schedule at most, µs.
    pub(crate) max_lag_us: u64,
    pub(crate) ready: Vec<bool>,
    pub(crate) ready_count: usize,
    pub(crate) group_ready: Vec<usize>,
    pub(crate) ready_list: Vec<usize>,
}

impl Publisher {
    pub(crate) async fn publish(&mut self, kind: Kind, target: usize, phase: Phase) {
        let seq = self.events.len();
        let id = format!("{}{seq}", self.prefix);
        let sent_us = now_us();
        let body = event_body(&id, kind, target, sent_us, self.pad);
        let result = self
            .http
            .request(
                "POST",
                "/api/events",
                &[
                    ("Content-Type", "application/json"),
                    ("X-Api-Key", self.key.as_str()),
                ],
                body.as_bytes(),
            )
            .await;
        let expected = match kind {
            Kind::Personal => usize::from(self.ready[target]),
            Kind::Group => self.group_ready[target],
            Kind::Broadcast => self.ready_count,
        };
        let ok = match result {
            Ok(r) if r.status == 202 => true,
            Ok(r) => {
                self.errors.push(format!(
                    "HTTP {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
                false
            }
            Err(e) => {
                self.errors.push(format!("POST /api/events: {e}"));
                false
            }
        };
        self.events.push(EventRec {
            kind,
            target,
            phase,
            sent_us,
            expected: if ok { expected } else { 0 },
        });
    }

    pub(crate) fn expected_total(&self) -> u64 {
        self.events.iter().map(|e| e.expected as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bodies_are_valid_events() {
        for kind in [Kind::Personal, Kind::Group, Kind::Broadcast] {
            let body = event_body("lg1-7", kind, 3, 1234, 5);
            let event = notify_core::Event::from_slice(body.as_bytes()).expect("valid");
            assert_eq!(event.id, "lg1-7");
            assert_eq!(
                event.data.unwrap().get("sent_at_us"),
                Some(&serde_json::json!(1234))
            );
        }
    }

    #[test]
    fn rng_spreads() {
        let mut r = Rng(7);
        let mut seen = [0usize; 4];
        for _ in 0..4000 {
            seen[r.below(4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
