//! The `mailer` setting: where email goes, parsed once when it is set.
//!
//! Owns the URL grammar (`smtp://`, `smtps://`, `file://`, `sendmail`). It must never put a
//! password into `Debug` output or a log line: use [`Mailer::redacted`] for anything printed.

use std::path::PathBuf;

use super::InvalidValue;
use super::Secret;

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, and fail when the server does not offer it (the `smtp://` default).
    Required,
    /// STARTTLS when offered, without verifying the certificate, and plaintext when the server
    /// offers no STARTTLS or its handshake fails (`?tls=opportunistic`, RFC 7435). Protects
    /// against passive listeners only; never carries credentials.
    Opportunistic,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// SMTP login.
#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    /// User name.
    pub user: String,
    /// Password, wiped on drop and never printed.
    pub password: Secret,
}

/// A parsed `mailer` value.
#[derive(Debug, Clone)]
pub enum Mailer {
    /// An SMTP relay.
    Smtp {
        /// Host name or address.
        host: String,
        /// Port (default 587 for `smtp://`, 465 for `smtps://`).
        port: u16,
        /// Transport security.
        tls: SmtpTls,
        /// Optional login.
        credentials: Option<SmtpCredentials>,
    },
    /// One `.eml` file per message in this directory.
    File(PathBuf),
    /// A sendmail-compatible program; `None` means `sendmail` on the PATH.
    Sendmail(Option<PathBuf>),
}

impl Mailer {
    /// Parses a mailer URL.
    pub fn parse(text: &str) -> Result<Mailer, InvalidValue> {
        let bad = |why: &str| InvalidValue::new("mailer", why);
        if text == "sendmail" {
            return Ok(Mailer::Sendmail(None));
        }
        let url = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
        match url.scheme() {
            "smtp" | "smtps" => {
                let implicit = url.scheme() == "smtps";
                let host = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| bad("no host"))?;
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let mut tls = if implicit {
                    SmtpTls::Implicit
                } else {
                    SmtpTls::Required
                };
                for (name, value) in url.query_pairs() {
                    match (name.as_ref(), value.as_ref(), implicit) {
                        ("tls", "required", false) => tls = SmtpTls::Required,
                        ("tls", "opportunistic", false) => tls = SmtpTls::Opportunistic,
                        ("tls", _, true) => return Err(bad("smtps:// is always TLS; drop ?tls=")),
                        ("tls", _, false) => {
                            return Err(bad("tls must be required or opportunistic"))
                        }
                        _ => return Err(bad("unknown query parameter")),
                    }
                }
                if url.path() != "" && url.path() != "/" {
                    return Err(bad("an smtp URL has no path"));
                }
                let credentials = if url.username().is_empty() {
                    None
                } else {
                    let decode = |s: &str| {
                        percent_decode(s).ok_or_else(|| bad("user or password is not UTF-8"))
                    };
                    Some(SmtpCredentials {
                        user: decode(url.username())?,
                        password: Secret::new(decode(url.password().unwrap_or(""))?),
                    })
                };
                if credentials.is_some() && tls == SmtpTls::Opportunistic {
                    return Err(bad(
                        "a user and password need tls=required or smtps://: opportunistic TLS \
                         does not verify the server, so the password could go to anyone in the path",
                    ));
                }
                Ok(Mailer::Smtp {
                    port: url.port().unwrap_or(if implicit { 465 } else { 587 }),
                    host,
                    tls,
                    credentials,
                })
            }
            "file" => {
                // The url crate reads "file:dir" as "file:///dir"; only the explicit form is taken.
                if !text.starts_with("file:///") || url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(bad("file:// takes an absolute path and no host"));
                }
                let path = url
                    .to_file_path()
                    .map_err(|_| bad("not an absolute path"))?;
                Ok(Mailer::File(path))
            }
            "sendmail" => {
                if url.path().is_empty() || url.path() == "/" {
                    Ok(Mailer::Sendmail(None))
                } else {
                    let path = url
                        .to_file_path()
                        .map_err(|_| bad("not an absolute path"))?;
                    Ok(Mailer::Sendmail(Some(path)))
                }
            }
            _ => Err(bad("scheme must be smtp, smtps, file or sendmail")),
        }
    }

    /// The URL without credentials, fit for a log line.
    pub fn redacted(&self) -> String {
        match self {
            Mailer::Smtp {
                host, port, tls, ..
            } => {
                let scheme = if *tls == SmtpTls::Implicit {
                    "smtps"
                } else {
                    "smtp"
                };
                format!("{scheme}://{host}:{port}")
            }
            Mailer::File(dir) => format!("file://{}", dir.display()),
            Mailer::Sendmail(None) => "sendmail".to_owned(),
            Mailer::Sendmail(Some(p)) => format!("sendmail://{}", p.display()),
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_defaults_to_required_starttls_on_587() {
        match Mailer::parse("smtp://mail.example.com").unwrap() {
            Mailer::Smtp {
                host,
                port,
                tls,
                credentials,
            } => {
                assert_eq!(
                    (host.as_str(), port, tls),
                    ("mail.example.com", 587, SmtpTls::Required)
                );
                assert!(credentials.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn smtp_with_credentials_and_options() {
        let m = Mailer::parse("smtp://bob:p%40ss@127.0.0.1:2525?tls=required").unwrap();
        let Mailer::Smtp {
            port,
            tls,
            credentials: Some(c),
            ..
        } = &m
        else {
            panic!()
        };
        assert_eq!((*port, *tls), (2525, SmtpTls::Required));
        assert_eq!((c.user.as_str(), c.password.expose()), ("bob", "p@ss"));
        assert!(!m.redacted().contains("p@ss") && !m.redacted().contains("bob"));
        assert!(!format!("{m:?}").contains("p@ss"));
    }

    #[test]
    fn smtps_is_implicit_tls_on_465() {
        let Mailer::Smtp { port, tls, .. } = Mailer::parse("smtps://h").unwrap() else {
            panic!()
        };
        assert_eq!((port, tls), (465, SmtpTls::Implicit));
    }

    #[test]
    fn file_and_sendmail() {
        assert!(
            matches!(Mailer::parse("file:///tmp/out").unwrap(), Mailer::File(p) if p.as_os_str() == "/tmp/out")
        );
        assert!(matches!(
            Mailer::parse("sendmail").unwrap(),
            Mailer::Sendmail(None)
        ));
        assert!(
            matches!(Mailer::parse("sendmail:///usr/sbin/sendmail").unwrap(),
            Mailer::Sendmail(Some(p)) if p.as_os_str() == "/usr/sbin/sendmail")
        );
    }

    #[test]
    fn malformed_mailers_are_rejected() {
        for bad in [
            "",
            "mail.example.com",
            "http://x",
            "smtp://",
            "smtp://h?tls=none",
            "smtp://h?foo=bar",
            "smtps://h?tls=required",
            "smtp://h/path",
            "file://host/dir",
            "file:relative",
            "smtp://u:%ff@h",
            // A password never travels over a connection whose server is not verified.
            "smtp://bob:pw@h?tls=opportunistic",
        ] {
            assert!(Mailer::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
