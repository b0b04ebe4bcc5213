//! The operator page at `/`: static, compiled in, and served with headers
//! that keep hostile log text from ever running as script (the browser test
//! is tools/python/tests/test_page.py).
use super::harness::Daemon;
use super::http::request;

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let d = Daemon::start();
    for (path, ct) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ] {
        let r = request(&d.addr, "GET", path, &[], b"").unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(ct), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    // No inline script: the page's only script is the served file.
    let page = request(&d.addr, "GET", "/", &[], b"").unwrap().text();
    assert!(page.contains(r#"<script src="/ui/app.js" defer></script>"#));
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    // An unknown asset is the API's 404, not the page.
    let r = request(&d.addr, "GET", "/ui/missing.js", &[], b"").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["kind"], "not_found");
}

#[test]
fn the_page_loads_without_a_token_where_the_api_needs_one() {
    let d = Daemon::start();
    let r = request(
        &d.addr,
        "POST",
        "/v1/argusctl",
        &[("Content-Type", "application/json")],
        br#"{"argv": ["token", "add", ".", "--name", "oncall", "--role", "operator", "-o", "json"]}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        request(&d.addr, "GET", "/v1/approvals", &[], b"")
            .unwrap()
            .status,
        401
    );
    let r = request(&d.addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(r.status, 200, "the page is static: {}", r.text());
}
