//! One tracing subscriber for every binary (SPEC §10): `RUST_LOG` filters
//! (default `info`), `LOG_FORMAT=json` switches to one JSON object a line.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. Calling it twice is harmless: the second
/// call changes nothing.
pub fn init() {
    init_with_default("info");
}

/// [`init`], with `default` as the filter when `RUST_LOG` is unset (a
/// command that prints its own output, such as the demo, uses `warn`).
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
}
