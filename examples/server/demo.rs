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
pub(crate) fn widget_routes() -> Router {
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
pub(crate) struct TokenQuery {
    user: Option<String>,
    groups: Option<String>,
}

/// Mints a demo token: `{"token","user","groups","expires_in"}`.
pub(crate) fn mint(secret: &str, q: TokenQuery) -> serde_json::Value {
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
    json!({"token": token, "user": user, "groups": groups, "expires_in": 3600})
}

/// The same routes as warp filters, for `NOTIFY_HTTP=warp`.
pub(crate) fn warp_routes(
    demo: Option<(String, String)>,
) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    use warp::{Filter, Reply};
    let widget = warp::path!("widget" / "notify-bell.js")
        .and(warp::get())
        .map(|| {
            let r = warp::reply::with_header(
                WIDGET_JS,
                header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            );
            let r = warp::reply::with_header(r, header::CACHE_CONTROL, "public, max-age=300");
            warp::reply::with_header(r, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*").into_response()
        });
    let Some((secret, publish_key)) = demo else {
        return widget.boxed();
    };
    let page = DEMO_HTML.replace("__PUBLISH_KEY__", &publish_key);
    let root = warp::path::end()
        .and(warp::get())
        .map(|| warp::redirect::temporary(warp::http::Uri::from_static("/demo")).into_response());
    let demo_page = warp::path!("demo")
        .and(warp::get())
        .map(move || warp::reply::html(page.clone()).into_response());
    let token = warp::path!("demo" / "token")
        .and(warp::get())
        .and(warp::query::<TokenQuery>())
        .map(move |q: TokenQuery| warp::reply::json(&mint(&secret, q)).into_response());
    widget
        .or(root)
        .unify()
        .or(demo_page)
        .unify()
        .or(token)
        .unify()
        .boxed()
}

/// `/demo` and `/demo/token?user=alice&groups=a,b` (demo mode only: it mints tokens).
pub(crate) fn demo_routes(secret: String, publish_key: String) -> Router {
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
                axum::Json(mint(&secret, q)).into_response()
            }),
        )
}
