//! STOMP 1.2 over WebSocket, independent of any web framework: the frame codec and the
//! session state machine that runs over a stream of inbound and a sink of outbound messages.
//!
//! One concept per file: `frame` (the codec), `transport` (what the WebSocket adapters
//! share: sub-protocols, handshake, buffers, messages), `destination` (what clients may
//! subscribe to), `connect` (CONNECT and heart-beat negotiation), `session` (the state
//! machine) and `close` (how a session ends).

mod close;
mod connect;
mod destination;
pub mod frame;
mod session;
#[cfg(test)]
mod session_tests;
mod transport;

pub use connect::{MAX_HEARTBEAT, MAX_PRE_CONNECT_BYTES, MAX_PRE_CONNECT_MESSAGES};
pub use destination::{BROADCAST_TOPIC, GROUP_TOPIC_PREFIX, USER_QUEUE};
pub use frame::{Frame, FrameError, MAX_FRAME_BYTES};
pub(crate) use session::run_socket_from;
pub use session::{run_session, run_socket, MAX_FRAMES_PER_MESSAGE, MAX_SUBSCRIPTION_ID_BYTES};
pub use transport::{
    choose_subprotocol, handshake, Handshake, Inbound, Outbound, WsBuffers, SUBPROTOCOLS,
};
