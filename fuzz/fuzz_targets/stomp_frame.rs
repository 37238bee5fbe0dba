//! The STOMP frame parser on arbitrary bytes: it never panics, never returns a body over the
//! frame limit, and whatever it parses encodes back to the same frame (what the server
//! echoes from client input, such as subscription ids and receipts, reaches the client
//! intact).
#![no_main]

use libfuzzer_sys::fuzz_target;
use notify_fuzz::check_frame_bytes;

fuzz_target!(|data: &[u8]| check_frame_bytes(data));
