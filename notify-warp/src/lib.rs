//! warp adapter for notify-core (work in progress).
