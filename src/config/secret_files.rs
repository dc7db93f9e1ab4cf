//! Secrets from files: any setting `NAME_file` (in the TOML file or as
//! `LEPHI__SECTION__NAME_FILE`) names a file whose content is the value of
//! `NAME`, as systemd credentials (`$CREDENTIALS_DIRECTORY/…`) and
//! container secrets (`/run/secrets/…`) hand them over. One trailing line
//! break is dropped; setting both `NAME` and `NAME_file` is refused, so
//! that which one counts is never a guess.

use config::{Map, Source, Value, ValueKind};

/// The settings as loaded, with every `NAME_file` replaced by `NAME`.
#[derive(Debug, Clone)]
pub(super) struct SecretFiles(Map<String, Value>);

impl SecretFiles {
    /// Reads every file `loaded` names; the first that cannot be read, or a
    /// setting given both ways, is refused by its path.
    pub(super) fn read(loaded: &config::Config) -> Result<SecretFiles, (String, String)> {
        let mut table = loaded
            .collect()
            .map_err(|err| (String::new(), err.to_string()))?;
        resolve(&mut table, "")?;
        Ok(SecretFiles(table))
    }
}

impl Source for SecretFiles {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.0.clone())
    }
}

fn resolve(table: &mut Map<String, Value>, prefix: &str) -> Result<(), (String, String)> {
    let named: Vec<String> = table
        .keys()
        .filter(|key| key.ends_with("_file"))
        .cloned()
        .collect();
    for key in named {
        let setting = key.trim_end_matches("_file").to_owned();
        let path = format!("{prefix}{setting}");
        let Some(value) = table.remove(&key) else {
            continue;
        };
        let file = match value.kind {
            ValueKind::String(file) => file,
            _ => return Err((format!("{path}_file"), "must name a file".to_owned())),
        };
        if table.contains_key(&setting) {
            return Err((path, format!("is set and also read from {file}: keep one")));
        }
        let mut secret = std::fs::read_to_string(&file)
            .map_err(|err| (format!("{path}_file"), format!("cannot read {file}: {err}")))?;
        if secret.ends_with('\n') {
            secret.pop();
            if secret.ends_with('\r') {
                secret.pop();
            }
        }
        table.insert(setting, Value::new(Some(&file), ValueKind::String(secret)));
    }
    for (key, value) in table.iter_mut() {
        if let ValueKind::Table(inner) = &mut value.kind {
            resolve(inner, &format!("{prefix}{key}."))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use crate::config::Settings;

    fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_secret_is_read_from_the_file_a_setting_names() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("database_url");
        std::fs::write(&url, "postgres://lephi:s3cret@db/lephi\n").unwrap();
        let token = dir.path().join("metrics_token");
        // A secret of digits stays the text it is.
        std::fs::write(&token, "0123456789").unwrap();
        let file = dir.path().join("lephi.toml");
        std::fs::write(
            &file,
            format!(
                "[server]\nmetrics_token_file = {:?}\n",
                token.display().to_string()
            ),
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[("LEPHI__DATABASE__URL_FILE", url.display().to_string())]),
        )
        .unwrap();
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://lephi:s3cret@db/lephi"
        );
        assert_eq!(
            s.server
                .metrics_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some("0123456789".to_owned())
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_or_a_setting_given_twice_is_refused_by_name() {
        let err = Settings::load_from(
            None,
            env(&[("LEPHI__DATABASE__URL_FILE", "/nonexistent/lephi-url".into())]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("database.url_file") && err.contains("/nonexistent/lephi-url"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "sqlite://x.db").unwrap();
        let err = Settings::load_from(
            None,
            env(&[
                ("LEPHI__DATABASE__URL_FILE", url.display().to_string()),
                ("LEPHI__DATABASE__URL", "sqlite://y.db".into()),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("database.url") && err.contains("keep one"),
            "{err}"
        );
    }
}
