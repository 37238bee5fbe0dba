//! # notify-benches
//!
//! Criterion micro-benchmarks (`cargo bench -p notify-benches`) and the `loadgen` binary
//! that drives a running server over real WebSocket STOMP sessions
//! (`cargo run --release -p notify-benches --bin loadgen -- --help`). Results and the
//! commands that produced them are in `BENCHMARKS.md` at the workspace root.
//!
//! This library holds what both share: fixtures ([`fixtures`]), exact percentiles over
//! sorted samples ([`stats`]), a cheap scan of MESSAGE frames for the fields the load
//! generator needs ([`scan`]), readings of a process's memory and CPU time ([`procfs`]), the
//! wall clock in µs ([`clock`]), and what `loadgen` and `fleet` both do: open and read a STOMP
//! client session ([`client`]), talk HTTP to the server ([`http`]), start a server with its
//! environment ([`spawn`]) and count and print deliveries ([`deliveries`]).

pub mod client;
pub mod deliveries;
pub mod http;
pub mod spawn;

pub mod clock {
    //! The wall clock as the load generators stamp and measure events.

    use std::time::{SystemTime, UNIX_EPOCH};

    /// Now, in µs since the Unix epoch (0 if the clock is before it). Wall clock, not
    /// monotonic: events carry it to other processes (`data.sent_at_us`).
    pub fn now_us() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
}

pub mod fixtures {
    //! Typical events, notifications and rules, sized like real ones.

    use chrono::{TimeZone, Utc};
    use notify_core::{Audience, Notification};
    use serde_json::json;

    /// A notification of typical size (about 450 bytes of JSON) for `audience`.
    pub fn notification(audience: Audience) -> Notification {
        let data = json!({"purchaseId": 42, "requester": "alice", "item": "A 27-inch monitor", "amount": 349.99});
        let data = data.as_object().cloned().unwrap_or_default();
        Notification::new(
            "evt-42",
            "purchase.approved",
            audience,
            "Purchase approved",
            "Your request #42 (A 27-inch monitor) was approved by Bob",
            1_795_000_000_123_456,
        )
        .with_link("/purchases/42")
        .with_data(data)
        .with_occurred_at(Utc.timestamp_millis_opt(1_795_000_000_000).unwrap())
    }

    /// A producer event as JSON, with explicit recipients.
    pub fn event_json(id: &str, users: &[&str], groups: &[&str], broadcast: bool) -> String {
        json!({
            "id": id,
            "type": "purchase.approved",
            "recipients": {"users": users, "groups": groups, "broadcast": broadcast},
            "title": "Purchase approved",
            "message": "Your request #42 (A 27-inch monitor) was approved by Bob",
            "link": "/purchases/42",
            "data": {"purchaseId": 42, "requester": "alice", "item": "A 27-inch monitor", "amount": 349.99},
        })
        .to_string()
    }

    /// A bare business event for [`RULES`]: recipients, title, message and link come from the
    /// rule.
    pub fn bare_event_json(id: &str) -> String {
        json!({
            "id": id,
            "type": "purchase.requested",
            "data": {"purchaseId": 42, "requester": "alice", "approver": "bob", "item": "A 27-inch monitor"},
        })
        .to_string()
    }

    /// A rules file with exact and glob rules; `purchase.requested` uses five templates.
    pub const RULES: &str = r#"
[[rule]]
type = "purchase.requested"
to_groups = ["purchasing-admins"]
to_users = ["{data.approver}"]
title = "New purchase request"
message = "{data.requester} requested {data.item}"
link = "/purchases/{data.purchaseId}"

[[rule]]
type = "purchase.*"
to_users = ["{data.requester}"]
title = "Purchase update"
message = "Something happened to {data.item}"

[[rule]]
type = "invoice.paid"
to_groups = ["accounting"]
title = "Invoice paid"
message = "Invoice {data.number} was paid"
"#;
}

pub mod stats {
    //! Exact percentiles from sorted samples.

    use serde::Serialize;

    /// Percentiles of a set of samples (same unit as the samples).
    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
    pub struct Summary {
        /// Number of samples.
        pub count: usize,
        /// Smallest.
        pub min: u64,
        /// Median.
        pub p50: u64,
        /// 90th percentile.
        pub p90: u64,
        /// 99th percentile.
        pub p99: u64,
        /// 99.9th percentile.
        pub p999: u64,
        /// Largest.
        pub max: u64,
        /// Arithmetic mean.
        pub mean: f64,
    }

    /// The sample at quantile `q` (0..=1) of sorted samples, nearest-rank.
    pub fn quantile(sorted: &[u64], q: f64) -> u64 {
        if sorted.is_empty() {
            return 0;
        }
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    impl Summary {
        /// Sorts `samples` and summarizes them.
        pub fn of(samples: &mut [u64]) -> Summary {
            samples.sort_unstable();
            let count = samples.len();
            if count == 0 {
                return Summary::default();
            }
            Summary {
                count,
                min: samples[0],
                p50: quantile(samples, 0.50),
                p90: quantile(samples, 0.90),
                p99: quantile(samples, 0.99),
                p999: quantile(samples, 0.999),
                max: samples[count - 1],
                mean: samples.iter().sum::<u64>() as f64 / count as f64,
            }
        }
    }
}

pub mod scan {
    //! Reads the two fields the load generator needs from a MESSAGE frame without parsing
    //! the JSON: the event id and `data.sent_at_us`. The body is the server's own compact
    //! `serde_json` output, so the byte patterns are stable.

    use memchr::memmem;

    /// What one MESSAGE frame tells the load generator.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Arrival<'a> {
        /// The notification's `event_id`.
        pub event_id: &'a str,
        /// `data.sent_at_us`: when the load generator sent the event (Unix µs).
        pub sent_at_us: i64,
    }

    /// The frame's command (first line), if any.
    pub fn command(frame: &str) -> &str {
        let frame = frame.trim_start_matches(['\n', '\r']);
        frame.split(['\n', '\r']).next().unwrap_or("")
    }

    /// The value of a header in a frame's text (unescaped values only; fine for the headers
    /// the load generator reads).
    pub fn header<'a>(frame: &'a str, name: &str) -> Option<&'a str> {
        let head = frame.split("\n\n").next()?;
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n == name).then_some(v.trim_end_matches('\r'))
        })
    }

    /// Finds the event id and `data.sent_at_us` in a MESSAGE frame; `None` for other frames
    /// or bodies without them.
    pub fn message(frame: &str) -> Option<Arrival<'_>> {
        let frame = frame.trim_start_matches(['\n', '\r']);
        if !frame.starts_with("MESSAGE") {
            return None;
        }
        let bytes = frame.as_bytes();
        let body = memmem::find(bytes, b"\n\n")? + 2;
        let body = &frame[body..];
        let id_at = memmem::find(body.as_bytes(), br#""event_id":""#)? + 12;
        let id_len = memchr::memchr(b'"', &body.as_bytes()[id_at..])?;
        let event_id = &body[id_at..id_at + id_len];
        let ts_at = memmem::find(body.as_bytes(), br#""sent_at_us":"#)? + 13;
        let digits = body.as_bytes()[ts_at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let sent_at_us = body[ts_at..ts_at + digits].parse().ok()?;
        Some(Arrival {
            event_id,
            sent_at_us,
        })
    }
}

pub mod procfs {
    //! Memory and CPU time of a process, from `/proc` (Linux).

    /// Resident set size (`VmRSS`) in KiB.
    pub fn rss_kib(pid: u32) -> Option<u64> {
        status_field(pid, "VmRSS:")
    }

    /// Peak resident set size (`VmHWM`) in KiB.
    pub fn peak_rss_kib(pid: u32) -> Option<u64> {
        status_field(pid, "VmHWM:")
    }

    fn status_field(pid: u32, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// User plus system CPU time in seconds (clock ticks of 1/100 s, as on Linux).
    pub fn cpu_seconds(pid: u32) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the state.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / 100.0)
    }

    /// Number of threads of the process.
    pub fn threads(pid: u32) -> Option<u64> {
        status_field(pid, "Threads:")
    }

    /// The machine's CPU pressure now: the "some" line of `/proc/pressure/cpu` (empty where
    /// the kernel has no PSI), reported beside figures taken on a shared box.
    pub fn cpu_pressure() -> String {
        std::fs::read_to_string("/proc/pressure/cpu")
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_core::stomp::frame::encode_message;
    use notify_core::{Audience, Push};

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = stats::Summary::of(&mut v);
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.p999, s.max),
            (1, 500, 900, 990, 999, 1000)
        );
        assert_eq!(stats::Summary::of(&mut []).count, 0);
        assert_eq!(stats::quantile(&[7], 0.999), 7);
    }

    #[test]
    fn scans_a_real_message_frame() {
        let mut n = fixtures::notification(Audience::User("u1".into()));
        n.event_id = "lg-1-42".into();
        n.data
            .as_mut()
            .unwrap()
            .insert("sent_at_us".into(), 1_795_000_000_123_456i64.into());
        let push = Push::new(n, chrono::Utc::now());
        let text = encode_message("/user/queue/notifications", "sub-0", "n_1", &push.json);
        let a = scan::message(&text).expect("found");
        assert_eq!(a.event_id, "lg-1-42");
        assert_eq!(a.sent_at_us, 1_795_000_000_123_456);
        assert_eq!(scan::command(&text), "MESSAGE");
        assert_eq!(scan::header(&text, "subscription"), Some("sub-0"));
        assert_eq!(scan::message("RECEIPT\nreceipt-id:1\n\n\0"), None);
        let two = format!("{text}\n{text}");
        let frames: Vec<_> = two
            .split_inclusive('\0')
            .filter_map(scan::message)
            .collect();
        assert_eq!(frames, vec![a, a]);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(procfs::rss_kib(me).unwrap() > 0);
        assert!(procfs::peak_rss_kib(me).unwrap() > 0);
        assert!(procfs::cpu_seconds(me).is_some());
        assert!(procfs::threads(me).unwrap() >= 1);
    }
}
