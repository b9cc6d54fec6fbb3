//! Where the client talks to and with which token: `--server`/`CODEBOX_SERVER`,
//! `CODEBOX_TOKEN`, and the config file `codebox login` writes
//! (`$XDG_CONFIG_HOME/codebox/config.toml`, else `~/.config/codebox/config.toml`, mode
//! 0600). The environment is read here and nowhere else.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::fail::{Fail, Result, code, io_reason};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What the config file holds. It is a small TOML file of `key = "value"` lines, read
/// and written here in a few lines rather than with a TOML library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The server the token belongs to.
    pub server: Option<String>,
    pub username: Option<String>,
    pub token: Option<String>,
}

/// Everything a command needs to know before it talks to the server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub token: Option<String>,
    /// Where the config file is (or would be); `None` without `HOME` or `XDG_CONFIG_HOME`.
    pub config_path: Option<PathBuf>,
    pub config: Config,
}

impl Settings {
    /// `server` is `--server` or `CODEBOX_SERVER` (clap reads both); then the server of
    /// the config file, then [`DEFAULT_SERVER`]. The token is `CODEBOX_TOKEN`, else the
    /// config file's when it was issued by this server.
    pub fn from_env(server: Option<&str>) -> Result<Self> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let config_path = config_path(
            var("XDG_CONFIG_HOME").map(PathBuf::from),
            var("HOME").map(PathBuf::from),
        );
        let config = match &config_path {
            Some(path) => load(path)?,
            None => Config::default(),
        };
        let server = match server {
            Some(s) => normalize_server(s)?,
            None => match &config.server {
                Some(s) => normalize_server(s)?,
                None => DEFAULT_SERVER.to_owned(),
            },
        };
        let env_token = var("CODEBOX_TOKEN").and_then(|t| t.into_string().ok());
        let config_token = config.token.clone().filter(|_| {
            config
                .server
                .as_deref()
                .is_none_or(|s| same_server(s, &server))
        });
        Ok(Self {
            server,
            token: env_token.or(config_token),
            config_path,
            config,
        })
    }
}

fn same_server(a: &str, b: &str) -> bool {
    normalize_server(a).is_ok_and(|a| a == b)
}

/// `$XDG_CONFIG_HOME/codebox/config.toml` (an absolute one; the spec ignores a relative
/// one), else `$HOME/.config/codebox/config.toml`.
pub fn config_path(xdg_config_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let base = xdg_config_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".config")))?;
    Some(base.join("codebox").join("config.toml"))
}

/// `http://host:port` without a trailing slash; a bare `host:port` gets `http://`.
pub fn normalize_server(s: &str) -> Result<String> {
    let s = s.trim().trim_end_matches('/');
    let s = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    match s.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty())
                && uri.query().is_none() =>
        {
            Ok(s)
        }
        _ => Err(Fail::usage(format!(
            "server {s:?} is not an http:// or https:// URL"
        ))),
    }
}

/// The file's settings; none when it does not exist.
pub fn load(path: &Path) -> Result<Config> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            parse(&text).map_err(|e| Fail::new(code::CONFIG, format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(Fail::new(
            code::CONFIG,
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        )),
    }
}

/// Writes the file readable by its owner only (0600), its folder 0700, replacing the
/// old one in one rename so a reader never sees half of it.
pub fn save(path: &Path, config: &Config) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        Fail::new(
            code::CONFIG,
            format!("cannot {what} {}: {}", path.display(), io_reason(&e)),
        )
    };
    let dir = path
        .parent()
        .ok_or_else(|| Fail::new(code::CONFIG, format!("{} has no folder", path.display())))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| fail("create the folder of", e))?;
    let tmp = path.with_extension("toml.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| fail("write", e))?;
    // An earlier file may have been made with other permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail("write", e))?;
    }
    file.write_all(render(config).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("write", e))
}

fn render(config: &Config) -> String {
    let mut out = String::from("# codebox command-line client; written by `codebox login`\n");
    for (key, value) in [
        ("server", &config.server),
        ("username", &config.username),
        ("token", &config.token),
    ] {
        if let Some(value) = value {
            out.push_str(&format!("{key} = {}\n", quote(value)));
        }
    }
    out
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `key = "value"` (or `'value'`) lines, `#` comments; unknown keys are kept out.
fn parse(text: &str) -> std::result::Result<Config, String> {
    let mut config = Config::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: expected key = \"value\"", n + 1);
        let (key, value) = line.split_once('=').ok_or_else(bad)?;
        let value = unquote(value.trim()).ok_or_else(bad)?;
        match key.trim() {
            "server" => config.server = Some(value),
            "username" => config.username = Some(value),
            "token" => config.token = Some(value),
            _ => {}
        }
    }
    Ok(config)
}

fn unquote(s: &str) -> Option<String> {
    // A comment may follow the value.
    if let Some(rest) = s.strip_prefix('\'') {
        let end = rest.find('\'')?;
        return trailing_ok(&rest[end + 1..]).then(|| rest[..end].to_owned());
    }
    let mut chars = s.strip_prefix('"')?.chars();
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return trailing_ok(chars.as_str()).then_some(out),
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
}

fn trailing_ok(rest: &str) -> bool {
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file_format() {
        let config = Config {
            server: Some("http://127.0.0.1:8080".into()),
            username: Some("a\"d\\a\n\u{1}".into()),
            token: Some("eyJ.x-y_z".into()),
        };
        assert_eq!(parse(&render(&config)), Ok(config));
    }

    #[test]
    fn reads_what_a_person_may_write() {
        let text =
            "# mine\n\nserver = 'https://codebox.example'  # prod\ntoken=\"t\"\nother = \"x\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.server.as_deref(), Some("https://codebox.example"));
        assert_eq!(config.token.as_deref(), Some("t"));
        assert_eq!(
            parse("token = t").unwrap_err(),
            "line 1: expected key = \"value\""
        );
        assert!(parse("token = \"t\" junk").is_err());
    }

    #[test]
    fn finds_the_xdg_place() {
        let home = Some(PathBuf::from("/home/ada"));
        assert_eq!(
            config_path(Some("/x".into()), home.clone()),
            Some(PathBuf::from("/x/codebox/config.toml"))
        );
        assert_eq!(
            config_path(Some("relative".into()), home.clone()),
            Some(PathBuf::from("/home/ada/.config/codebox/config.toml"))
        );
        assert_eq!(config_path(None, None), None);
    }

    #[test]
    fn servers_are_normalized() {
        assert_eq!(
            normalize_server("127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_server("https://a.example/api/").unwrap(),
            "https://a.example/api"
        );
        assert_eq!(normalize_server("ftp://x").unwrap_err().code, code::USAGE);
    }

    #[test]
    fn saves_owner_only() {
        let dir = std::env::temp_dir().join(format!("codebox-cli-config-{}", std::process::id()));
        let path = dir.join("codebox").join("config.toml");
        let config = Config {
            token: Some("t".into()),
            ..Config::default()
        };
        save(&path, &config).unwrap();
        assert_eq!(load(&path).unwrap(), config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
