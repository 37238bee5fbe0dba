//! mongo adapter for notify-core (work in progress).
