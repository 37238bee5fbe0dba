//! [`MutedTypes`]: the `muted_types` list, exact type names or prefix globs (`marketing.*`).

use std::sync::Arc;

use crate::error::{Error, Result};

/// Longest pattern, as long as the longest event type.
const MAX_PATTERN_CHARS: usize = 256;

/// A user's muted types. Cheap to clone (shared).
///
/// A pattern is an exact type (`purchase.approved`) or a prefix glob ending in `*`
/// (`marketing.*` matches `marketing.spring` but not `marketing`; `*` alone matches every
/// type). `*` anywhere else is refused, so matching stays a prefix test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutedTypes {
    /// `None` when nothing is muted, the common case: no allocation for each user cached
    /// with nothing muted.
    patterns: Option<Arc<[String]>>,
}

impl MutedTypes {
    /// Validates the patterns; errors name `muted_types[i]`.
    pub fn new(patterns: Vec<String>) -> Result<Self> {
        for (i, p) in patterns.iter().enumerate() {
            let field = format!("muted_types[{i}]");
            if p.is_empty() {
                return Err(Error::invalid(field, "must not be empty"));
            }
            if p.chars().count() > MAX_PATTERN_CHARS {
                return Err(Error::invalid(
                    field,
                    format!("longer than {MAX_PATTERN_CHARS} characters"),
                ));
            }
            if p.chars().any(char::is_control) {
                return Err(Error::invalid(field, "must not contain control characters"));
            }
            if p[..p.len() - 1].contains('*') {
                return Err(Error::invalid(
                    field,
                    "`*` is only allowed at the end (a prefix glob such as `marketing.*`)",
                ));
            }
        }
        let mut patterns = patterns;
        patterns.dedup();
        Ok(MutedTypes {
            patterns: (!patterns.is_empty()).then(|| patterns.into()),
        })
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        self.patterns.as_deref().unwrap_or_default()
    }

    /// True when nothing is muted.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_none()
    }

    /// True when `notification_type` is muted.
    pub fn matches(&self, notification_type: &str) -> bool {
        self.patterns().iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => notification_type.starts_with(prefix),
            None => p == notification_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix() {
        let m = MutedTypes::new(vec!["marketing.*".into(), "chat.typing".into()]).unwrap();
        assert!(m.matches("marketing.spring"));
        assert!(!m.matches("marketing"));
        assert!(m.matches("chat.typing"));
        assert!(!m.matches("chat.typing.x"));
        assert!(!m.matches("purchase.approved"));
        assert!(MutedTypes::new(vec!["*".into()]).unwrap().matches("x"));
        assert!(MutedTypes::new(vec!["a*b".into()]).is_err());
        assert!(!MutedTypes::default().matches("x"));
    }
}
