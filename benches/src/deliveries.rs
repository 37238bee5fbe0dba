//! What a load run published and what arrived: the counts both `loadgen` and `fleet` report
//! (flattened into their JSON reports, so the field names stay top-level) and the lines
//! that print them.

use serde::Serialize;

/// Events published and (session, event) deliveries checked against what was expected.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Deliveries {
    /// Events the server accepted.
    pub events_published: usize,
    /// Publish requests that failed.
    pub publish_errors: usize,
    /// The first few publish errors, as text.
    pub publish_error_samples: Vec<String>,
    /// How far the publisher fell behind its schedule at worst, in ms.
    pub publish_max_lag_ms: f64,
    /// (session, event) pairs that should have arrived.
    pub expected_deliveries: u64,
    /// Pairs that arrived (each once).
    pub delivered: u64,
    /// Expected pairs that never arrived.
    pub lost: u64,
    /// Arrivals beyond the first of a pair.
    pub duplicates: u64,
    /// Arrivals at a session the event was not for.
    pub misrouted: u64,
    /// MESSAGE frames not from this run.
    pub foreign: u64,
}

impl Deliveries {
    /// Whether a notification was lost, duplicated or misrouted: the run failed (exit code 1).
    pub fn failed(&self) -> bool {
        self.lost > 0 || self.duplicates > 0 || self.misrouted > 0
    }

    /// Prints the `events:` line, the publish error samples and the `deliveries:` line.
    pub fn print(&self) {
        println!(
            "events: {} published, {} publish errors, schedule lag max {:.1} ms",
            self.events_published, self.publish_errors, self.publish_max_lag_ms
        );
        for e in &self.publish_error_samples {
            println!("  publish error: {e}");
        }
        println!(
            "deliveries: {} expected, {} delivered, {} lost, {} duplicated, {} misrouted, {} foreign",
            self.expected_deliveries,
            self.delivered,
            self.lost,
            self.duplicates,
            self.misrouted,
            self.foreign
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reports embed this with `#[serde(flatten)]`: their JSON keeps the flat field
    /// names in the same place and order as when the fields were the report's own.
    #[test]
    fn flattens_into_a_report_in_field_order() {
        #[derive(Serialize)]
        struct Report {
            label: &'static str,
            #[serde(flatten)]
            deliveries: Deliveries,
            after: u8,
        }
        let r = Report {
            label: "x",
            deliveries: Deliveries {
                lost: 3,
                ..Deliveries::default()
            },
            after: 1,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"label":"x","events_published":0,"publish_errors":0,"publish_error_samples":[],"publish_max_lag_ms":0.0,"expected_deliveries":0,"delivered":0,"lost":3,"duplicates":0,"misrouted":0,"foreign":0,"after":1}"#
        );
    }

    #[test]
    fn fails_on_lost_duplicated_or_misrouted_only() {
        let ok = Deliveries {
            foreign: 7,
            publish_errors: 2,
            ..Deliveries::default()
        };
        assert!(!ok.failed());
        for bad in [
            Deliveries {
                lost: 1,
                ..ok.clone()
            },
            Deliveries {
                duplicates: 1,
                ..ok.clone()
            },
            Deliveries {
                misrouted: 1,
                ..ok.clone()
            },
        ] {
            assert!(bad.failed(), "{bad:?}");
        }
    }
}
