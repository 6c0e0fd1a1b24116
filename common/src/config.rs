//! Typed, layered settings: serde defaults, then an optional TOML file, then
//! environment variables (SPEC §10).
//!
//! Every key is the lower-case name of its environment variable, so
//! `USER_DATABASE_URL=…` and `user_database_url = "…"` in the file set the same
//! field. The file is read from the path in `CONFIG_FILE` when it is set.
//! Secrets are [`secrecy::SecretString`] fields and never print.

use serde::de::DeserializeOwned;

/// Names the optional settings file.
pub const CONFIG_FILE_VAR: &str = "CONFIG_FILE";

/// Loads settings of type `T` from the layers described in the module docs.
///
/// # Errors
/// A file named by `CONFIG_FILE` that cannot be read or parsed, or a value
/// (from file or environment) that does not fit its field.
pub fn load<T: DeserializeOwned>() -> Result<T, config::ConfigError> {
    layered(
        std::env::var(CONFIG_FILE_VAR).ok().as_deref(),
        config::Environment::default(),
    )
}

/// The layering itself: `file` (if any) under `env`.
fn layered<T: DeserializeOwned>(
    file: Option<&str>,
    env: config::Environment,
) -> Result<T, config::ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::with_name(path).required(true));
    }
    builder
        .add_source(env.try_parsing(true))
        .build()?
        .try_deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::{ExposeSecret, SecretString};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Example {
        #[serde(default = "default_port")]
        example_port: u16,
        #[serde(default)]
        example_name: String,
        example_secret: Option<SecretString>,
    }

    fn default_port() -> u16 {
        7
    }

    fn env(vars: &[(&str, &str)]) -> config::Environment {
        config::Environment::default().source(Some(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        std::fs::write(&file, "example_port = 9\nexample_name = \"from-file\"\n").unwrap();
        let path = file.to_string_lossy().into_owned();

        let only_defaults: Example = layered(None, env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(only_defaults.example_port, 7);
        let from_file: Example = layered(Some(&path), env(&[])).unwrap();
        assert_eq!(
            (from_file.example_port, from_file.example_name.as_str()),
            (9, "from-file")
        );
        let env_wins: Example = layered(
            Some(&path),
            env(&[("EXAMPLE_PORT", "11"), ("EXAMPLE_SECRET", "hunter22")]),
        )
        .unwrap();
        assert_eq!(env_wins.example_port, 11);
        assert_eq!(env_wins.example_name, "from-file");
        let secret = env_wins.example_secret.unwrap();
        assert_eq!(secret.expose_secret(), "hunter22");
        assert!(!format!("{secret:?}").contains("hunter22"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[derive(Debug, Deserialize)]
    struct WithDiscovery {
        #[serde(default = "default_port")]
        example_port: u16,
        #[serde(flatten)]
        discovery: crate::discovery::DiscoverySettings,
    }

    #[test]
    fn flattened_discovery_settings_come_from_the_environment() {
        let none: WithDiscovery = layered(None, env(&[("EXAMPLE_PORT", "8")])).unwrap();
        assert_eq!(none.example_port, 8);
        assert_eq!(none.discovery.consul_http_addr, None);
        assert_eq!(none.discovery.consul_check_interval_seconds, 2);
        assert_eq!(none.discovery.discovery_probe_interval_ms, 500);
        let set: WithDiscovery = layered(
            None,
            env(&[
                ("CONSUL_HTTP_ADDR", "http://consul:8500"),
                ("CONSUL_CHECK_INTERVAL_SECONDS", "5"),
                ("CONSUL_SERVICE_ADDRESS", "10.0.0.7"),
                ("DISCOVERY_PROBE_INTERVAL_MS", "250"),
            ]),
        )
        .unwrap();
        assert_eq!(set.example_port, 7);
        let d = set.discovery;
        assert_eq!(d.consul_http_addr.as_deref(), Some("http://consul:8500"));
        assert_eq!(d.consul_check_interval_seconds, 5);
        assert_eq!(d.consul_service_address.as_deref(), Some("10.0.0.7"));
        assert_eq!(d.discovery_probe_interval_ms, 250);
        assert_eq!(d.consul_deregister_critical_after_seconds, 60);
    }

    #[test]
    fn a_value_that_does_not_fit_is_an_error() {
        let r: Result<Example, _> = layered(None, env(&[("EXAMPLE_PORT", "eighty")]));
        assert!(r.is_err());
    }
}
