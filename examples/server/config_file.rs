//! The optional TOML configuration file (`--config FILE` or `NOTIFY_CONFIG`). Its keys are the
//! variable names (`NOTIFY_LISTEN = "0.0.0.0:8080"`); the flag names (`listen`) are accepted
//! too. Values become the flags' defaults, so a flag wins over a variable, a variable over the
//! file, and the file over the built-in defaults.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory, FromArgMatches};
use notify_core::{Error, Result};

use crate::config::Args;

/// The variable that names the file (also the flag `--config`).
pub(crate) const CONFIG_VARIABLE: &str = "NOTIFY_CONFIG";

/// Parses flags, variables and the configuration file into [`Args`]. `--help`, `--version`
/// and flag errors exit as clap does; a bad file is an error naming `NOTIFY_CONFIG`.
pub(crate) fn parse_args() -> Result<Args> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let mut command = Args::command();
    let path = config_path(&argv).or_else(|| {
        std::env::var_os(CONFIG_VARIABLE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = path {
        command = apply_file(command, &path)?;
    }
    let matches = command.get_matches_from(argv);
    Args::from_arg_matches(&matches).map_err(|e| Error::config(CONFIG_VARIABLE, e.to_string()))
}

/// `--config FILE` or `--config=FILE` from the command line, before clap parses it (the
/// file's values must be known first).
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Makes each key of the file the default of its flag.
fn apply_file(mut command: Command, path: &Path) -> Result<Command> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            CONFIG_VARIABLE,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::config(
            CONFIG_VARIABLE,
            format!("{} is not valid TOML: {}", path.display(), e.message()),
        )
    })?;
    for (key, value) in table {
        let id = arg_for_key(&command, &key).ok_or_else(|| {
            Error::config(
                CONFIG_VARIABLE,
                format!("{}: unknown key {key:?}", path.display()),
            )
        })?;
        let value = scalar(&value).ok_or_else(|| {
            Error::config(
                CONFIG_VARIABLE,
                format!(
                    "{}: {key} must be a string, number, boolean or array of strings",
                    path.display()
                ),
            )
        })?;
        // clap keeps defaults for the life of the process; the file is read once at start.
        let value: &'static str = Box::leak(value.into_boxed_str());
        command = command.mut_arg(id, |a| a.default_value(value));
    }
    Ok(command)
}

/// The id of the argument whose variable (`NOTIFY_LISTEN`) or flag (`listen`) is `key`. Flags
/// without a variable (`--config`, `--check-config`) cannot come from the file.
fn arg_for_key(command: &Command, key: &str) -> Option<String> {
    let flag = key.replace('_', "-");
    command
        .get_arguments()
        .find(|a| {
            a.get_env().is_some_and(|env| env == key)
                || (a.get_env().is_some() && a.get_long() == Some(flag.as_str()))
        })
        .filter(|a| a.get_env() != Some(std::ffi::OsStr::new(CONFIG_VARIABLE)))
        .map(|a| a.get_id().to_string())
}

/// A TOML value as the string a variable would hold; arrays become comma-separated lists
/// (`NOTIFY_ALLOWED_ORIGINS = ["https://a", "https://b"]`).
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_path::Temp {
        tempfile_path::Temp::new(text)
    }

    /// A file removed on drop (no extra crate for one test helper).
    mod tempfile_path {
        pub struct Temp(pub std::path::PathBuf);
        impl Temp {
            pub fn new(text: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "notify-config-{}-{}.toml",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                ));
                std::fs::write(&path, text).unwrap();
                Temp(path)
            }
        }
        impl Drop for Temp {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn parse(file: &str, argv: &[&str]) -> Result<Args> {
        let f = write(file);
        let command = apply_file(Args::command(), &f.0)?;
        let matches = command
            .try_get_matches_from(std::iter::once("server").chain(argv.iter().copied()))
            .map_err(|e| Error::config("argv", e.to_string()))?;
        Args::from_arg_matches(&matches).map_err(|e| Error::config("argv", e.to_string()))
    }

    #[test]
    fn file_values_are_defaults_and_flags_win() {
        let args = parse(
            "NOTIFY_KAFKA_TOPIC = \"from-file\"\nmongo_db = \"filedb\"\nNOTIFY_SESSION_QUEUE = 64\n",
            &["--kafka-topic", "from-flag"],
        )
        .unwrap();
        assert_eq!(args.kafka_topic, "from-flag");
        assert_eq!(args.mongo_db, "filedb");
    }

    #[test]
    fn unknown_key_names_the_variable() {
        let err = parse("NOTIFY_LISTN = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("NOTIFY_CONFIG") && err.contains("NOTIFY_LISTN"),
            "{err}"
        );
    }

    #[test]
    fn bad_toml_names_the_variable() {
        let err = parse("NOTIFY_LISTEN = \n", &[]).unwrap_err().to_string();
        assert!(err.contains("NOTIFY_CONFIG"), "{err}");
    }

    #[test]
    fn config_path_forms() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&argv(&["s", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            config_path(&argv(&["s", "--config=b.toml"])),
            Some("b.toml".into())
        );
        assert_eq!(config_path(&argv(&["s", "--", "--config=b"])), None);
    }
}
