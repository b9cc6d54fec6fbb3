//! `GET /`: the web playground for a browser (a request whose `Accept` prefers
//! `text/html`), the liveness JSON for everyone else; `GET /playground/{*file}`: the
//! page's script, style and vendored libraries (`web/` in the repository).
//!
//! Every file is built into the binary, so each profile (embedded, gateway, the Lambda
//! function that serves `/`) serves the same page with nothing on disk at run time. The
//! page's other files are built in gzip-compressed (`build.rs`: 0.8 MB → a third of
//! it) and sent so to a client that takes gzip (every browser), inflated for one that
//! does not.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::dto::ServiceInfo;
use crate::problem::ApiError;
use crate::state::AppState;

/// The page's policy: its own origin only, no inline script or style, images also from
/// `blob:` and `data:` URLs (an uploaded PNG and a filter's output are shown from memory).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the vendored libraries live: a versioned folder, so what a path names never
/// changes and browsers may keep it for a year.
const VENDOR_PREFIX: &str = "vendor/";

const INDEX_HTML: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/index.html"));

/// One file of the playground under `/playground/`.
struct Asset {
    path: &'static str,
    /// Its bytes, gzip-compressed.
    gzip: &'static [u8],
    content_type: &'static str,
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/web/", $path, ".gz")),
            content_type: $content_type,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const SVG: &str = "image/svg+xml";

const ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("LICENSES.md", TEXT),
    asset!("vendor/codemirror-5.65.21/LICENSE", TEXT),
    asset!("vendor/codemirror-5.65.21/lib/codemirror.js", JS),
    asset!("vendor/codemirror-5.65.21/lib/codemirror.css", CSS),
    asset!("vendor/codemirror-5.65.21/addon/mode/simple.js", JS),
    asset!("vendor/codemirror-5.65.21/addon/edit/matchbrackets.js", JS),
    asset!("vendor/codemirror-5.65.21/addon/edit/closebrackets.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/clike/clike.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/css/css.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/go/go.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/haskell/haskell.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/htmlmixed/htmlmixed.js", JS),
    asset!(
        "vendor/codemirror-5.65.21/mode/javascript/javascript.js",
        JS
    ),
    asset!("vendor/codemirror-5.65.21/mode/lua/lua.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/perl/perl.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/php/php.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/python/python.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/ruby/ruby.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/rust/rust.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/shell/shell.js", JS),
    asset!("vendor/codemirror-5.65.21/mode/xml/xml.js", JS),
];

/// Strong validators of the page and of each asset (FNV-1a of the bytes), worked out
/// once; an asset's two representations, compressed and not, have one each.
static INDEX_ETAG: LazyLock<String> = LazyLock::new(|| etag(INDEX_HTML, ""));
static ASSET_ETAGS: LazyLock<Vec<[String; 2]>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| [etag(a.gzip, ""), etag(a.gzip, "-gzip")])
        .collect()
});

fn etag(body: &[u8], suffix: &str) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}{suffix}\"")
}

/// An asset's bytes as they were (for a client that takes no gzip).
fn inflate(gzip: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::with_capacity(gzip.len() * 4);
    flate2::read::GzDecoder::new(gzip).read_to_end(&mut body)?;
    Ok(body)
}

#[utoipa::path(get, path = "/", tag = "service",
    responses((status = 200,
        description = "The service is alive (JSON); a browser asking for `text/html` gets the web playground",
        content((ServiceInfo = "application/json"), (String = "text/html")))))]
pub async fn root(headers: HeaderMap) -> Response {
    if prefers_html(&headers) {
        return page(&headers);
    }
    let mut res = axum::Json(ServiceInfo {
        service: "codebox".into(),
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
    .into_response();
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    res
}

/// The playground's page, with its policy.
fn page(headers: &HeaderMap) -> Response {
    let mut res = if not_modified(headers, &INDEX_ETAG) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            INDEX_HTML,
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set_etag(h, &INDEX_ETAG);
    harden(h);
    res
}

/// `GET /playground/{*file}`: a file of the page, or 404 problem+json.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some((asset, etags)) = ASSETS
        .iter()
        .zip(ASSET_ETAGS.iter())
        .find(|(a, _)| a.path == path)
    else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such playground file").into_response();
    };
    let gzip = accepts_gzip(&headers);
    let etag = &etags[usize::from(gzip)];
    let mut res = if not_modified(&headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if gzip {
            axum::body::Body::from(asset.gzip)
        } else {
            match inflate(asset.gzip) {
                Ok(body) => axum::body::Body::from(body),
                Err(e) => {
                    tracing::error!(file = %path, error = %e, "a built-in playground file does not inflate");
                    return ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "this playground file could not be read",
                    )
                    .into_response();
                }
            }
        };
        let mut res = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            body,
        )
            .into_response();
        if gzip {
            res.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        res
    };
    let h = res.headers_mut();
    // The vendored libraries sit in versioned folders and never change under a path;
    // the page's own files do with each build, so browsers revalidate them (a 304).
    let cache = if asset.path.starts_with(VENDOR_PREFIX) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    set_etag(h, etag);
    harden(h);
    res
}

/// Whether `Accept-Encoding` takes gzip (by name, or as `*`) with a quality above 0.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut any = false;
    for coding in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = quality_of(parts);
        match name.as_str() {
            "gzip" | "x-gzip" => return q > 0.0,
            "*" => any = q > 0.0,
            _ => {}
        }
    }
    any
}

fn set_etag(h: &mut HeaderMap, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
}

/// Headers every playground response carries: no content sniffing, no embedding in
/// other sites' pages.
fn harden(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// Whether the request's `Accept` gives `text/html` a higher quality than JSON: what a
/// browser's navigation sends (`text/html,…,*/*;q=0.8`), and never curl's `*/*`, a
/// missing header or an API client's `application/json`.
fn prefers_html(headers: &HeaderMap) -> bool {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let html = quality(&accept, "text", "html");
    html > 0.0 && html > quality(&accept, "application", "json")
}

/// The quality `Accept` gives `kind/sub`: that of the most specific range matching it
/// (RFC 9110 §12.5.1), 0 when none does.
fn quality(accept: &[&str], kind: &str, sub: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.iter().flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let Some((k, s)) = media.split_once('/') else {
            continue;
        };
        let specificity = match (k, s) {
            _ if k == kind && s == sub => 2,
            _ if k == kind && s == "*" => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        let q = quality_of(parts);
        if best.is_none_or(|(spec, _)| specificity > spec) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// The `q` parameter among a range's parameters: 1 when absent, within 0–1.
fn quality_of<'a>(params: impl Iterator<Item = &'a str>) -> f32 {
    params
        .filter_map(|p| p.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
        .and_then(|(_, v)| v.trim().parse::<f32>().ok())
        .unwrap_or(1.0)
        .clamp(0.0, 1.0)
}

pub fn router(_state: AppState) -> Router {
    super::finish(routes())
}

fn routes() -> Router {
    Router::new()
        .route("/", get(root))
        .route("/playground/{*file}", get(asset))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_the_page_and_api_clients_json() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
            image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        assert!(prefers_html(&accept(firefox)));
        assert!(prefers_html(&accept(chrome)));
        assert!(prefers_html(&accept("text/*")));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("application/json, text/html;q=0.5")));
        assert!(!prefers_html(&accept("text/html, application/json")));
        assert!(!prefers_html(&accept("text/html;q=0, */*")));
    }

    async fn get(path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
        use tower::ServiceExt;
        let mut req = axum::http::Request::get(path);
        for (name, value) in headers {
            req = req.header(name, *value);
        }
        routes()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header(res: &Response, name: header::HeaderName) -> &str {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn the_page_has_its_policy_and_api_clients_keep_their_json() {
        let json = get("/", &[]).await;
        assert_eq!(json.status(), StatusCode::OK);
        assert_eq!(header(&json, header::CONTENT_TYPE), "application/json");
        assert_eq!(header(&json, header::VARY), "accept");

        let browser = "text/html,application/xhtml+xml,*/*;q=0.8";
        let page = get("/", &[(header::ACCEPT, browser)]).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(header(&page, header::CONTENT_TYPE).starts_with("text/html"));
        let csp = header(&page, header::CONTENT_SECURITY_POLICY);
        for part in [
            "default-src 'self'",
            "connect-src 'self'",
            "img-src 'self' blob: data:",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(!csp.contains("unsafe-"), "{csp}");
        assert_eq!(header(&page, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(&page, header::CACHE_CONTROL), "no-cache");
        let etag = header(&page, header::ETAG).to_owned();
        let again = get(
            "/",
            &[(header::ACCEPT, browser), (header::IF_NONE_MATCH, &etag)],
        )
        .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, header::CONTENT_SECURITY_POLICY), csp);
    }

    #[tokio::test]
    async fn assets_have_their_types_and_caching() {
        let js = get("/playground/app.js", &[]).await;
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(header(&js, header::CONTENT_TYPE), JS);
        assert_eq!(header(&js, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header(&js, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let etag = header(&js, header::ETAG).to_owned();
        let again = get("/playground/app.js", &[(header::IF_NONE_MATCH, &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        let lib = get(
            "/playground/vendor/codemirror-5.65.21/lib/codemirror.css",
            &[],
        )
        .await;
        assert_eq!(header(&lib, header::CONTENT_TYPE), CSS);
        assert!(header(&lib, header::CACHE_CONTROL).contains("immutable"));

        for missing in [
            "/playground/nope.js",
            "/playground/../Cargo.toml",
            "/playground/",
        ] {
            let res = get(missing, &[]).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{missing}");
        }
    }

    /// A client that takes gzip gets an asset as it is built in, compressed; one that
    /// does not (curl without `--compressed`, `q=0`) gets the file itself; each
    /// representation has its own validator.
    #[tokio::test]
    async fn assets_go_compressed_to_whoever_takes_gzip() {
        let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/app.js")).unwrap();
        let body = |res: Response| async move {
            axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec()
        };
        let mut etags = Vec::new();
        for (accept, gzip) in [
            (None, false),
            (Some("gzip, deflate, br, zstd"), true),
            (Some("br;q=1.0, gzip;q=0.8, *;q=0.1"), true),
            (Some("*"), true),
            (Some("gzip;q=0, *"), false),
            (Some("identity"), false),
            (Some("deflate"), false),
        ] {
            let headers: Vec<_> = accept
                .map(|a| (header::ACCEPT_ENCODING, a))
                .into_iter()
                .collect();
            let res = get("/playground/app.js", &headers).await;
            assert_eq!(res.status(), StatusCode::OK, "{accept:?}");
            assert_eq!(header(&res, header::VARY), "accept-encoding");
            let encoding = header(&res, header::CONTENT_ENCODING).to_owned();
            let etag = header(&res, header::ETAG).to_owned();
            let got = body(res).await;
            if gzip {
                assert_eq!(encoding, "gzip", "{accept:?}");
                assert!(got.len() * 2 < file.len(), "compressed: {}", got.len());
                assert_eq!(inflate(&got).unwrap(), file);
            } else {
                assert_eq!(encoding, "", "{accept:?}");
                assert_eq!(got, file, "{accept:?}");
            }
            etags.push((gzip, etag));
        }
        let plain = etags.iter().find(|(g, _)| !g).unwrap().1.clone();
        let zipped = etags.iter().find(|(g, _)| *g).unwrap().1.clone();
        assert_ne!(plain, zipped);
        // A validator of the other representation does not stand for this one.
        let res = get("/playground/app.js", &[(header::IF_NONE_MATCH, &zipped)]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = get(
            "/playground/app.js",
            &[
                (header::IF_NONE_MATCH, &zipped),
                (header::ACCEPT_ENCODING, "gzip"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn every_asset_is_there_once_with_a_type() {
        let mut paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        // Each is its file in web/, compressed.
        for a in ASSETS {
            let file =
                std::fs::read(format!("{}/../web/{}", env!("CARGO_MANIFEST_DIR"), a.path)).unwrap();
            assert!(!file.is_empty(), "{}", a.path);
            assert_eq!(inflate(a.gzip).unwrap(), file, "{}", a.path);
        }
        let index = String::from_utf8_lossy(INDEX_HTML);
        // Everything the page links to is served, and nothing of it is inline.
        for link in index.split("/playground/").skip(1) {
            let path = link.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "{path} is linked but not served"
            );
        }
        assert!(!index.contains("<style"), "no inline style");
        assert!(!index.contains(" style="), "no inline style attribute");
        assert!(!index.contains("<script>"), "no inline script");
        let handler = index.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "no inline event handler: {handler:?}");
    }
}
