//! The Studio (issue 21): the web pages creators, admins and the public use,
//! served by the gateway under `/studio/`.
//!
//! The pages are plain ES modules and one stylesheet under `gateway/studio/`,
//! embedded in the binary with `include_str!`: they run as written, so there
//! is no build step, nothing for Node.js to do at run time, and no built
//! file that could drift from its source. The one library, uPlot (charts),
//! is the file its npm package ships, committed under `studio/vendor/` and
//! checked byte for byte against the package by `studio/e2e/check-vendor.sh`
//! in CI.
//!
//! Every page calls the same JSON API as any other client; a browser is
//! authenticated by the session cookie of [`session`] instead of a bearer
//! token, and its state-changing requests carry the session's CSRF token.

pub mod cookie_auth;
pub mod routes;
pub mod session;

/// The value of the request's cookie `name`, read from the `Cookie`
/// headers leniently: another application on the same host (cookies ignore
/// ports) may send cookies that a strict parser refuses, and one such
/// cookie must not hide ours.
pub fn cookie_value(req: &actix_web::HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The files under `/studio/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/app.js"),
    },
    Asset {
        path: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/api.js"),
    },
    Asset {
        path: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/dom.js"),
    },
    Asset {
        path: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/i18n.js"),
    },
    Asset {
        path: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/pages.js"),
    },
    Asset {
        path: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/admin.js"),
    },
    Asset {
        path: "studio.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../studio/studio.css"),
    },
    Asset {
        path: "vendor/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../studio/vendor/uPlot.iife.min.js"),
    },
    Asset {
        path: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../studio/vendor/uPlot.min.css"),
    },
];

fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The Content-Security-Policy of every Studio response: scripts, styles and
/// requests only from this origin, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The Studio's languages: Korean (the default) and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `ko`.
    Korean,
    /// `en`.
    English,
}

impl Language {
    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Language::Korean => "ko",
            Language::English => "en",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "ko" => Some(Language::Korean),
            "en" => Some(Language::English),
            _ => None,
        }
    }

    /// The language of a page: the `studio_lang` cookie the switch sets,
    /// else the first of Korean and English in `Accept-Language` by
    /// quality, else Korean.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Self {
        if let Some(lang) = cookie.and_then(Self::from_tag) {
            return lang;
        }
        let mut best: Option<(f32, Self)> = None;
        for item in accept_language.unwrap_or_default().split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Self::from_tag) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Language::Korean, |(_, lang)| lang)
    }
}

/// The one HTML page: every Studio address answers it, and `app.js` draws
/// the page the address names.
///
/// `zone` is the platform time zone's IANA name, for page script.
pub fn shell(lang: Language, zone: &str) -> String {
    let title = match lang {
        Language::Korean => "스튜디오",
        Language::English => "Studio",
    };
    format!(
        r##"<!doctype html>
<html lang="{tag}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="platform-time-zone" content="{zone}">
<link rel="icon" href="data:,">
<title>{title}</title>
<link rel="stylesheet" href="/studio/assets/vendor/uPlot.min.css">
<link rel="stylesheet" href="/studio/assets/studio.css">
<script src="/studio/assets/vendor/uPlot.iife.min.js" defer></script>
<script type="module" src="/studio/assets/app.js"></script>
</head>
<body>
<a class="skip" href="#main">{skip}</a>
<header id="top"></header>
<main id="main" tabindex="-1"></main>
</body>
</html>
"##,
        tag = lang.tag(),
        zone = zone.replace(['"', '<', '>', '&'], ""),
        skip = match lang {
            Language::Korean => "본문으로 건너뛰기",
            Language::English => "Skip to content",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_the_cookie_then_the_best_accepted_then_korean() {
        assert_eq!(Language::negotiate(None, None), Language::Korean);
        assert_eq!(
            Language::negotiate(None, Some("fr-FR, en-US;q=0.8, ko;q=0.5")),
            Language::English
        );
        assert_eq!(
            Language::negotiate(None, Some("en;q=0.4, ko-KR;q=0.9")),
            Language::Korean
        );
        assert_eq!(
            Language::negotiate(None, Some("de, fr;q=0.5")),
            Language::Korean
        );
        assert_eq!(
            Language::negotiate(Some("en"), Some("ko")),
            Language::English
        );
        assert_eq!(
            Language::negotiate(Some("xx"), Some("en;q=0")),
            Language::Korean
        );
    }

    #[test]
    fn our_cookie_is_found_beside_cookies_a_strict_parser_refuses() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((
                "cookie",
                "_other=%zz\"x; studio_session=abc; studio_lang=en",
            ))
            .to_http_request();
        assert_eq!(cookie_value(&req, "studio_session").as_deref(), Some("abc"));
        assert_eq!(cookie_value(&req, "studio_lang").as_deref(), Some("en"));
        assert_eq!(cookie_value(&req, "studio"), None);
    }

    #[test]
    fn every_asset_is_served_with_a_type() {
        for a in ASSETS {
            assert!(asset(a.path).is_some());
            assert!(a.content_type.starts_with("text/"));
            assert!(!a.body.is_empty(), "{} is empty", a.path);
        }
        assert!(asset("../Cargo.toml").is_none());
    }
}
