//! The route table of the contract, and the one matcher both adapters use for it.

/// Where the STOMP WebSocket endpoint is mounted.
pub const WEBSOCKET_ROUTE: &str = "/notify";

/// Paths the API answers ([`crate::api::handle`]); adapters mount exactly these, in axum's
/// syntax (`{param}` is one segment, `{*rest}` the non-empty rest of the path), plus
/// [`WEBSOCKET_ROUTE`].
pub const ROUTES: &[&str] = &[
    "/api/notifications",
    "/api/notifications/unread-count",
    "/api/notifications/read-all",
    "/api/notifications/{id}/read",
    "/api/events",
    "/api/preferences",
    "/api/stream",
    "/health/live",
    "/health/ready",
    "/metrics",
    // Anything else under /api answers the contract's JSON 404 / 405.
    "/api/{*rest}",
];

/// Whether `path` is one of the API's [`ROUTES`], matched like axum's router: `{param}` is
/// one segment (even an empty one: the core then answers a JSON 404), `{*rest}` is one or
/// more characters, and a trailing slash is not folded away.
pub fn is_route(path: &str) -> bool {
    ROUTES.iter().any(|pattern| matches(pattern, path))
}

fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            // A catch-all takes the rest of the path, which must not be empty.
            (Some(w), Some(g)) if w.starts_with("{*") => {
                return !g.is_empty() || got.next().is_some()
            }
            (Some(w), Some(_)) if w.starts_with('{') && w.ends_with('}') => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_axum() {
        for p in [
            "/api/notifications",
            "/api/notifications/unread-count",
            "/api/notifications/read-all",
            "/api/notifications/n_1/read",
            "/api/notifications//read",
            "/api/events",
            "/api/stream",
            "/health/live",
            "/health/ready",
            "/metrics",
            // The catch-all: the core answers these with its JSON 404.
            "/api/x",
            "/api/x/y",
            "/api/notifications/",
            "/api/notifications/a/b/read",
            "/api//x",
        ] {
            assert!(is_route(p), "{p}");
        }
        for p in [
            "/",
            "/notify",
            "/health/live/",
            "/api",
            "/api/",
            "/metricsx",
            "/apix/y",
        ] {
            assert!(!is_route(p), "{p}");
        }
    }
}
