//! The event parser (a Kafka record value, or a `POST /api/events` body) on arbitrary bytes:
//! it never panics, and an accepted event always yields the same notifications.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notify_fuzz::check_event_bytes;

fuzz_target!(|data: &[u8]| check_event_bytes(data));
