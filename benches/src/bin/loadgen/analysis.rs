//! Turning what the sessions saw into the report: lost, duplicated and misrouted
//! deliveries, latency per phase and per broadcast.

use std::collections::HashMap;
use std::time::Instant;

use notify_benches::stats::Summary;

use crate::publish::{Kind, Phase, Publisher};
use crate::report::{BroadcastEvent, PhaseReport, Report};
use crate::sessions::Outcome;

pub(crate) fn top_reasons(reasons: impl Iterator<Item = String>) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(8);
    v
}

pub(crate) fn analyse(
    report: &mut Report,
    publisher: &Publisher,
    outcomes: &[Outcome],
    phase_cpu: &[(Phase, f64, f64, Instant, Instant)],
) {
    let events = &publisher.events;
    report.deliveries.events_published = events.iter().filter(|e| e.expected > 0).count();
    report.deliveries.publish_errors = publisher.errors.len();
    report.deliveries.publish_error_samples = publisher.errors.iter().take(5).cloned().collect();
    report.deliveries.publish_max_lag_ms = publisher.max_lag_us as f64 / 1000.0;
    report.deliveries.expected_deliveries = publisher.expected_total();
    report.sessions_dropped = outcomes.iter().filter(|o| o.dropped.is_some()).count();
    report.dropped_reasons = top_reasons(outcomes.iter().filter_map(|o| o.dropped.clone()));
    report.deliveries.foreign = outcomes.iter().map(|o| o.foreign).sum();

    // Per session: which events arrived (sorted), duplicates and misrouted ones.
    let groups = publisher.group_ready.len().max(1);
    let mut received: Vec<Vec<u32>> = vec![Vec::new(); publisher.ready.len()];
    let mut per_event: Vec<Vec<u64>> = vec![Vec::new(); events.len()];
    let mut last_arrival_us: Vec<i64> = vec![i64::MIN; events.len()];
    for o in outcomes {
        let mut seqs: Vec<u32> = Vec::with_capacity(o.arrivals.len());
        for &(seq, latency) in &o.arrivals {
            let Some(e) = events.get(seq as usize) else {
                report.deliveries.misrouted += 1;
                continue;
            };
            let meant = match e.kind {
                Kind::Personal => e.target == o.index,
                Kind::Group => o.index % groups == e.target,
                Kind::Broadcast => true,
            };
            if !meant {
                report.deliveries.misrouted += 1;
                continue;
            }
            seqs.push(seq);
            per_event[seq as usize].push(latency);
            last_arrival_us[seq as usize] =
                last_arrival_us[seq as usize].max(e.sent_us + latency as i64);
        }
        report.deliveries.delivered += seqs.len() as u64;
        seqs.sort_unstable();
        let before = seqs.len();
        seqs.dedup();
        report.deliveries.duplicates += (before - seqs.len()) as u64;
        received[o.index] = seqs;
    }
    // Every expected (session, event) pair.
    let has = |session: usize, seq: usize| received[session].binary_search(&(seq as u32)).is_ok();
    for (seq, e) in events.iter().enumerate() {
        if e.expected == 0 {
            continue;
        }
        let missing = match e.kind {
            Kind::Personal => usize::from(!has(e.target, seq)),
            Kind::Group => publisher
                .ready_list
                .iter()
                .filter(|&&i| i % groups == e.target && !has(i, seq))
                .count(),
            Kind::Broadcast => publisher
                .ready_list
                .iter()
                .filter(|&&i| !has(i, seq))
                .count(),
        };
        report.deliveries.lost += missing as u64;
    }

    for &(phase, cpu0, cpu1, t0, t1) in phase_cpu {
        let idx: Vec<usize> = (0..events.len())
            .filter(|&s| events[s].phase == phase && events[s].expected > 0)
            .collect();
        let mut samples: Vec<u64> = idx
            .iter()
            .flat_map(|&s| per_event[s].iter().copied())
            .collect();
        let delivered = samples.len() as u64;
        let first_sent = idx.iter().map(|&s| events[s].sent_us).min().unwrap_or(0);
        let last = idx
            .iter()
            .map(|&s| last_arrival_us[s])
            .max()
            .unwrap_or(first_sent);
        let span_s = ((last - first_sent).max(1)) as f64 / 1e6;
        let publish_s = (t1 - t0).as_secs_f64();
        report.phases.push(PhaseReport {
            phase: format!("{phase:?}").to_lowercase(),
            events: idx.len(),
            expected: idx.iter().map(|&s| events[s].expected as u64).sum(),
            delivered,
            seconds: publish_s,
            event_rate: idx.len() as f64 / publish_s.max(1e-9),
            delivered_per_s: delivered as f64 / span_s,
            latency_us: Summary::of(&mut samples),
            server_cpu_seconds: (cpu1 > 0.0).then_some(cpu1 - cpu0),
        });
    }
    for (seq, e) in events.iter().enumerate() {
        if e.phase != Phase::Broadcast || e.expected == 0 {
            continue;
        }
        let mut lat = per_event[seq].clone();
        let s = Summary::of(&mut lat);
        report.broadcast_events.push(BroadcastEvent {
            seq,
            recipients: e.expected,
            delivered: s.count,
            p50_us: s.p50,
            p99_us: s.p99,
            last_us: s.max,
            frames_per_s: s.count as f64 / (s.max.max(1) as f64 / 1e6),
        });
    }
}
