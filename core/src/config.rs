//! Reading typed settings from the environment, once at start, with one clear message
//! naming the variable when a value is wrong.

use std::str::FromStr;

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

/// The raw value, `None` when unset or empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A parsed value with a default; `expected` says what is accepted.
pub fn parse_or<T: FromStr>(name: &str, default: T, expected: &str) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            var: name.to_owned(),
            problem: format!("{v:?} is not valid; expected {expected}"),
        }),
    }
}

/// [`parse_or`], then refused unless within `range` (named in the error with `unit`).
pub fn parse_in<T>(
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let expected = format!("{unit} from {} to {}", range.start(), range.end());
    let v = parse_or(name, default, &expected)?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError {
            var: name.into(),
            problem: format!("{v} is not {expected}"),
        })
    }
}

/// A secret that must be set.
pub fn secret(name: &str, what: &str) -> Result<SecretString, ConfigError> {
    var(name)
        .map(SecretString::from)
        .ok_or_else(|| ConfigError {
            var: name.to_owned(),
            problem: format!("is required ({what})"),
        })
}

/// One of a fixed set of words, with a default.
pub fn choice(name: &str, default: &str, allowed: &[&str]) -> Result<String, ConfigError> {
    let v = var(name).unwrap_or_else(|| default.to_owned());
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(ConfigError {
            var: name.to_owned(),
            problem: format!("{v:?} is not one of {}", allowed.join(", ")),
        })
    }
}

/// A value that must be set; `example` shows what one looks like.
pub fn required(name: &str, example: &str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError {
        var: name.to_owned(),
        problem: format!("is required, e.g. {example}"),
    })
}

/// An optional duration given in whole seconds.
pub fn secs_opt(name: &str) -> Result<Option<std::time::Duration>, ConfigError> {
    var(name)
        .map(|v| {
            v.trim()
                .parse()
                .map(std::time::Duration::from_secs)
                .map_err(|_| ConfigError {
                    var: name.to_owned(),
                    problem: format!("{v:?} is not a number of seconds"),
                })
        })
        .transpose()
}
