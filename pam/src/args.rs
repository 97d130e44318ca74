//! The module's arguments from the PAM stack line: `config=PATH` (required), `user=NAME`,
//! `debug`.
//!
//! Owns their parsing only. An argument it does not know is an error (the module then refuses
//! as unavailable): a misspelt `user=` must never widen the module to every account.

use std::path::PathBuf;

/// The parsed arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// The configuration file.
    pub config: PathBuf,
    /// The only account that may break glass; `None`: any account the stack hands us.
    pub user: Option<String>,
    /// Log at debug level.
    pub debug: bool,
}

/// Parses the stack line's arguments; the error names the offending argument.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, String> {
    let (mut config, mut user, mut debug) = (None, None, false);
    for a in args {
        if let Some(v) = a.strip_prefix("config=") {
            if !v.starts_with('/') {
                return Err(format!("config= needs an absolute path, not {v:?}"));
            }
            config = Some(PathBuf::from(v));
        } else if let Some(v) = a.strip_prefix("user=") {
            if v.is_empty() {
                return Err("user= is empty".into());
            }
            user = Some(v.to_owned());
        } else if a == "debug" {
            debug = true;
        } else {
            return Err(format!("unknown module argument {a:?}"));
        }
    }
    let config = config.ok_or("the config=/path argument is missing")?;
    Ok(Args {
        config,
        user,
        debug,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three() {
        let a = parse(["config=/etc/breakglass/pam.conf", "user=bg", "debug"]).unwrap();
        assert_eq!(a.config, PathBuf::from("/etc/breakglass/pam.conf"));
        assert_eq!(a.user.as_deref(), Some("bg"));
        assert!(a.debug);
    }

    #[test]
    fn refusals() {
        assert!(parse(["user=bg"]).unwrap_err().contains("config="));
        assert!(parse(["config=rel/path"]).is_err());
        assert!(parse(["config=/x", "usr=bg"])
            .unwrap_err()
            .contains("usr=bg"));
        assert!(parse(["config=/x", "user="]).is_err());
    }
}
