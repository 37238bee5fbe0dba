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

/// True for a `Host` header that names this machine's loopback interface: `localhost` (and
/// `*.localhost`), `127.0.0.0/8` or `[::1]`, with any port. In demo mode anything else is
/// refused, so a page whose DNS name was rebound to 127.0.0.1 cannot mint demo tokens.
pub(crate) fn loopback_host(host: Option<&str>) -> bool {
    let Some(host) = host.map(str::trim) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Wraps the whole app in demo mode: requests whose `Host` is not a loopback name get 403.
#[derive(Clone)]
pub(crate) struct LoopbackOnly<S>(pub S);

impl<S, B, RB> tower::Service<axum::http::Request<B>> for LoopbackOnly<S>
where
    S: tower::Service<
            axum::http::Request<B>,
            Response = axum::http::Response<RB>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<axum::BoxError>,
    B: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        if !loopback_host(host) {
            let body = json!({"error": {
                "code": "forbidden",
                "message": "demo mode answers only loopback host names (localhost, 127.0.0.1, [::1])",
                "field": "Host",
            }});
            let response = (
                axum::http::StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let mut inner = self.0.clone();
        std::mem::swap(&mut inner, &mut self.0);
        Box::pin(async move {
            let response = tower::ServiceExt::oneshot(inner, request).await?;
            Ok(response.map(axum::body::Body::new))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_names_pass() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:8080",
            "[::2]:80",
            "[::1]x",
            "",
            "0.0.0.0:8080",
        ] {
            assert!(!loopback_host(Some(bad)), "{bad}");
        }
        assert!(!loopback_host(None));
    }
}
