//! The STOMP session state machine over sequences of WebSocket messages (structured frames
//! with hostile header values, raw bytes, pings, pushes), driven in memory with tokio's
//! paused clock: it never panics or hangs, every ERROR is followed by a close, and when it
//! ends nothing stays registered or counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notify_fuzz::session::{check_session, SessionInput};

fuzz_target!(|input: SessionInput| check_session(input));
