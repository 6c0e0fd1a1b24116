//! The gateway's copies of rendered report bodies (issue 19): the JSON of
//! a `GET /api/v1/revenues` answer, kept with the `version` the revenue
//! service gave it. The next identical request sends that version as
//! `if_version`; the revenue service still checks the caller and the
//! period, and answers `unchanged` while its report cache holds that
//! version (a settlement bumps it), so the gateway sends its copy without
//! decoding or rendering 10,000 videos again. A copy never outlives the
//! revenue service's cache entry, and is never served without the revenue
//! service's word that it is current.
//!
//! Bounded by bytes (`GATEWAY_REPORT_CACHE_BYTES`), least recently used
//! first out; one store shared by the gateway's workers, in memory (each
//! gateway replica keeps its own).

use std::sync::Arc;

use actix_web::web::Bytes;

/// A kept body and the version it renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptBody {
    /// The revenue service's `version` of the answer.
    pub version: String,
    /// The rendered JSON.
    pub body: Bytes,
}

/// Weighs a kept body by its bytes (key, version and body).
#[derive(Clone, Copy, Debug, Default)]
struct ByBytes;

impl quick_cache::Weighter<String, KeptBody> for ByBytes {
    fn weight(&self, key: &String, kept: &KeptBody) -> u64 {
        u64::try_from(key.len() + kept.version.len() + kept.body.len()).unwrap_or(u64::MAX)
    }
}

/// Rendered report bodies by request; cheap to clone (one store).
#[derive(Clone, Default)]
pub struct ReportBodies {
    store: Option<Arc<quick_cache::sync::Cache<String, KeptBody, ByBytes>>>,
}

/// Bodies a store expects to hold, for its sizing (a 10,000-video month
/// is about 1.4 MB; most answers are far smaller).
const EXPECTED_BODIES: usize = 1_000;

impl ReportBodies {
    /// A store of at most `capacity_bytes`; 0 keeps nothing. A body larger
    /// than a shard's share of the capacity (about an eighth or less) is
    /// not kept.
    pub fn new(capacity_bytes: u64) -> Self {
        Self {
            store: (capacity_bytes > 0).then(|| {
                Arc::new(quick_cache::sync::Cache::with_weighter(
                    EXPECTED_BODIES,
                    capacity_bytes,
                    ByBytes,
                ))
            }),
        }
    }

    /// The body kept for `request`, if any.
    pub fn get(&self, request: &str) -> Option<KeptBody> {
        self.store.as_ref()?.get(request)
    }

    /// Keeps `body`, rendered from the answer of `version`, for `request`
    /// (replacing what was kept).
    pub fn keep(&self, request: String, version: String, body: Bytes) {
        if let Some(store) = &self.store {
            store.insert(request, KeptBody { version, body });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_kept_body_is_found_by_its_request_and_replaced() {
        let bodies = ReportBodies::new(1 << 20);
        assert_eq!(bodies.get("a"), None);
        bodies.keep("a".into(), "v1".into(), Bytes::from_static(b"{\"n\":1}"));
        bodies.keep("b".into(), "v9".into(), Bytes::from_static(b"{\"n\":9}"));
        assert_eq!(bodies.get("a").unwrap().version, "v1");
        bodies.keep("a".into(), "v2".into(), Bytes::from_static(b"{\"n\":2}"));
        let kept = bodies.get("a").unwrap();
        assert_eq!(
            (kept.version.as_str(), &kept.body[..]),
            ("v2", &b"{\"n\":2}"[..])
        );
        assert_eq!(bodies.get("b").unwrap().version, "v9");
    }

    #[test]
    fn the_store_holds_no_more_than_its_bytes() {
        let bodies = ReportBodies::new(64 * 1024);
        let body = Bytes::from(vec![b'x'; 1024]);
        for n in 0..1_000 {
            bodies.keep(format!("r{n}"), "v".into(), body.clone());
        }
        let kept = (0..1_000)
            .filter(|n| bodies.get(&format!("r{n}")).is_some())
            .count();
        assert!(kept > 0, "some bodies are kept");
        assert!(kept <= 64, "at most 64 KiB of 1 KiB bodies, kept {kept}");
    }

    #[test]
    fn a_zero_capacity_keeps_nothing() {
        let bodies = ReportBodies::new(0);
        bodies.keep("a".into(), "v1".into(), Bytes::from_static(b"{}"));
        assert_eq!(bodies.get("a"), None);
    }
}
