//! STOMP 1.2 over WebSocket, independent of any web framework: the frame codec and the
//! session state machine that runs over a stream of inbound and a sink of outbound messages.

pub mod frame;
mod session;

pub use frame::{Frame, FrameError, MAX_FRAME_BYTES};
pub use session::{
    choose_subprotocol, handshake, run_session, Handshake, Inbound, Outbound, WsBuffers,
    BROADCAST_TOPIC, GROUP_TOPIC_PREFIX, SUBPROTOCOLS, USER_QUEUE,
};
