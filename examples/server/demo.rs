//! The widget file and, in demo mode, the `/demo` page and its token endpoint.

use axum::extract::Query;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde_json::json;

/// The `<notify-bell>` custom element, built from `frontend/` (`npm run build`).
const WIDGET_JS: &[u8] = include_bytes!("../assets/notify-bell.js");
const DEMO_HTML: &str = include_str!("../assets/demo.html");

/// `/widget/notify-bell.js`: the one-file widget any site can embed.
pub fn widget_routes() -> Router {
    Router::new().route(
        "/widget/notify-bell.js",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=300"),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                WIDGET_JS,
            )
        }),
    )
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    user: Option<String>,
    groups: Option<String>,
}

/// `/demo` and `/demo/token?user=alice&groups=a,b` (demo mode only: it mints tokens).
pub fn demo_routes(secret: String, publish_key: String) -> Router {
    let page = DEMO_HTML.replace("__PUBLISH_KEY__", &publish_key);
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/demo") }),
        )
        .route("/demo", get(move || async move { Html(page) }))
        .route(
            "/demo/token",
            get(move |Query(q): Query<TokenQuery>| async move {
                let user = q
                    .user
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "alice".into());
                let groups: Vec<String> = q
                    .groups
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect();
                let token = notify_core::auth::sign_hs256(secret.as_bytes(), &user, &groups, 3600);
                axum::Json(
                    json!({"token": token, "user": user, "groups": groups, "expires_in": 3600}),
                )
                .into_response()
            }),
        )
}
