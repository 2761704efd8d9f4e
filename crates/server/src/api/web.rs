//! The browser app: the files of `web/`, embedded in the binary at build time.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $mime:expr),* $(,)?) => {
        &[$(Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $name)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => JS,
    "api.js" => JS,
    "dom.js" => JS,
    "space.js" => JS,
    "social.js" => JS,
    "moderation.js" => JS,
    "sw.js" => JS,
    "audio.js" => JS,
    "playback-worklet.js" => JS,
    "capture-worklet.js" => JS,
};

/// The app's security policy: only our own scripts, styles and connections.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'";

/// hls.js (the light build, unmodified from npm: web/vendor, Apache-2.0), loaded by the app
/// only when it plays LL-HLS.
static HLS_JS: Asset = Asset {
    name: "hls.mjs",
    mime: JS,
    body: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../web/vendor/hls.light.min.mjs"
    )),
};

fn serve(asset: &Asset) -> Response {
    let mut response = asset.body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    // The player library changes only with a release: a day; the app's own files: always
    // revalidated.
    let cache = if asset.name == HLS_JS.name {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `GET /`, `/s/{id}`, `/signin`, ...: the app's single page; it routes on the client.
pub async fn page() -> Response {
    serve(&ASSETS[0])
}

/// `GET /sw.js`: the service worker that shows pushed alerts (at the root, so that its scope
/// is the whole app).
pub async fn service_worker() -> Response {
    let sw = ASSETS
        .iter()
        .find(|a| a.name == "sw.js")
        .expect("the service worker is embedded");
    serve(sw)
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS
        .iter()
        .chain(std::iter::once(&HLS_JS))
        .find(|a| a.name == name)
    {
        Some(asset) => serve(asset),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
