//! The operator's console's vendored files (see `assets/README.md`): the uPlot chart library
//! and its style sheet, compiled in and served by the admin listener as same-origin files, so
//! that the page's Content-Security-Policy (`script-src 'nonce-…'`) lets them run by the nonce
//! on their `<script>`/`<link>` tags, with no CDN and nothing inline.
//!
//! The page asks for `/assets/uplot.js?v=<UPLOT_VERSION>`: the answers may be cached for a year
//! (`immutable`), and a new version is a new URL.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The vendored uPlot's version (`assets/README.md`), in the page's asset URLs.
pub const UPLOT_VERSION: &str = "1.6.32";

/// uPlot's IIFE build: defines the global `uPlot`.
const UPLOT_JS: &str = include_str!("assets/uPlot.iife.min.js");
/// uPlot's style sheet.
const UPLOT_CSS: &str = include_str!("assets/uPlot.min.css");

/// How long a browser may keep an asset: a year, never revalidated (a new version is a new URL).
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The admin listener's asset routes: `/assets/uplot.js` and `/assets/uplot.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/assets/uplot.js", get(|| async { asset("text/javascript; charset=utf-8", UPLOT_JS) }))
        .route("/assets/uplot.css", get(|| async { asset("text/css; charset=utf-8", UPLOT_CSS) }))
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    async fn get_asset(path: &str) -> (StatusCode, String, String, String) {
        let router: Router = routes();
        let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let header = |name| response.headers().get(name).map(|v: &HeaderValue| v.to_str().unwrap().to_string()).unwrap_or_default();
        let (status, content_type, cache) = (response.status(), header(header::CONTENT_TYPE), header(header::CACHE_CONTROL));
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, cache, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_chart_library_is_served_with_its_type_and_a_long_cache() {
        let (status, content_type, cache, js) = get_asset("/assets/uplot.js?v=1.6.32").await;
        assert_eq!((status, content_type.as_str(), cache.as_str()), (StatusCode::OK, "text/javascript; charset=utf-8", CACHE_CONTROL));
        assert!(js.starts_with(&format!("/*! https://github.com/leeoniya/uPlot (v{UPLOT_VERSION}) */")), "{}", &js[..80]);
        let (status, content_type, _, css) = get_asset("/assets/uplot.css").await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/css; charset=utf-8"));
        assert!(css.contains(".uplot"));
    }

    #[test]
    fn the_page_asks_for_this_version() {
        let page = include_str!("monitor.html");
        for path in ["/assets/uplot.js", "/assets/uplot.css"] {
            assert!(page.contains(&format!("{path}?v={UPLOT_VERSION}")), "monitor.html does not load {path}?v={UPLOT_VERSION}");
        }
        let readme = include_str!("assets/README.md");
        assert!(readme.contains(&format!("**{UPLOT_VERSION}**")), "assets/README.md names another version");
    }
}
