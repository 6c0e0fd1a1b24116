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
    let mut builder = config::Config::builder();
    if let Ok(path) = std::env::var(CONFIG_FILE_VAR) {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    builder
        .add_source(config::Environment::default().try_parsing(true))
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
        example_port_for_config_test: u16,
        example_secret_for_config_test: Option<SecretString>,
    }

    fn default_port() -> u16 {
        7
    }

    #[test]
    fn defaults_then_environment_and_secrets_do_not_print() {
        let loaded: Example = config::Config::builder()
            .add_source(
                config::Environment::default()
                    .try_parsing(true)
                    .source(Some(
                        [
                            (
                                "EXAMPLE_SECRET_FOR_CONFIG_TEST".to_owned(),
                                "hunter22".to_owned(),
                            ),
                            ("PATH".to_owned(), "/bin".to_owned()),
                        ]
                        .into_iter()
                        .collect(),
                    )),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.example_port_for_config_test, 7);
        let secret = loaded
            .example_secret_for_config_test
            .unwrap_or_else(|| panic!("secret missing"));
        assert_eq!(secret.expose_secret(), "hunter22");
        assert!(!format!("{secret:?}").contains("hunter22"));
    }
}
