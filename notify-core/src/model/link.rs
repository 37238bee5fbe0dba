//! What a notification's `link` may be: an absolute `http`/`https` URL or a path on the
//! embedding site, never a script (`javascript:`, `data:`) or a protocol-relative `//host`.

use crate::error::{Error, Result};

/// Longest accepted link, in bytes.
pub const MAX_LINK_BYTES: usize = 2048;

/// Checks a `link`: `/path` (not `//` or `/\`, which browsers read as another host), or an
/// absolute `http`/`https` URL with a host, whose origin (`scheme://host[:port]`) is in
/// `origins` when an allow-list is given. Errors name the field `link`.
pub fn check_link(link: &str, origins: Option<&[String]>) -> Result<()> {
    if link.len() > MAX_LINK_BYTES {
        return Err(Error::invalid(
            "link",
            format!("longer than {MAX_LINK_BYTES} bytes"),
        ));
    }
    if link.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid(
            "link",
            "must not contain whitespace or control characters",
        ));
    }
    if let Some(rest) = link.strip_prefix('/') {
        if rest.starts_with('/') || rest.starts_with('\\') {
            return Err(Error::invalid(
                "link",
                "a protocol-relative link (//host) is not allowed; use an absolute https URL or a /path",
            ));
        }
        return Ok(());
    }
    let url = url::Url::parse(link).map_err(|_| {
        Error::invalid(
            "link",
            "must be an absolute http/https URL or a path starting with /",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::invalid(
            "link",
            format!(
                "scheme {:?} is not allowed (only http and https)",
                url.scheme()
            ),
        ));
    }
    if let Some(origins) = origins {
        let origin = url.origin().ascii_serialization();
        if !origins.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
            return Err(Error::invalid(
                "link",
                format!("origin {origin} is not in NOTIFY_LINK_ORIGINS"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_web_urls_pass_scripts_and_other_hosts_do_not() {
        for ok in [
            "/purchases/42",
            "/",
            "/a?b=c#d",
            "https://app.example/x",
            "http://app.example:8080/",
        ] {
            assert!(check_link(ok, None).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//evil.example/x",
            "/\\evil.example",
            "vbscript:x",
            "purchases/42",
            "ftp://files.example/a",
            "https://",
            " /x",
            "/x\ny",
            "",
        ] {
            let err = check_link(bad, None).unwrap_err();
            assert_eq!(err.field(), Some("link"), "{bad}");
        }
        assert!(check_link(&format!("/{}", "a".repeat(MAX_LINK_BYTES)), None).is_err());
    }

    #[test]
    fn the_origin_allow_list_applies_to_absolute_links_only() {
        let origins = vec!["https://app.example".to_string()];
        assert!(check_link("https://app.example/x", Some(&origins)).is_ok());
        assert!(check_link("/x", Some(&origins)).is_ok());
        assert!(check_link("https://app.example:8443/x", Some(&origins)).is_err());
        assert!(check_link("https://evil.example/x", Some(&origins)).is_err());
        assert!(check_link("http://app.example/x", Some(&origins)).is_err());
    }
}
