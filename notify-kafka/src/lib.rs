//! kafka adapter for notify-core (work in progress).
