//! Tenant identifiers. Every write and every read carries one.

use std::fmt;
use std::sync::Arc;

/// The tenant used when a request names none (Cortex/Mimir/Loki use `X-Scope-OrgID`).
pub const DEFAULT_TENANT: &str = "default";

/// A validated tenant id: 1 to 150 characters of `[A-Za-z0-9_.-]`, not `.` or `..`.
///
/// Invariant: the id is safe to use as a single path component.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// Why a tenant id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantError {
    /// The id is empty or longer than 150 bytes.
    #[error("tenant id must be 1 to 150 characters long, got {len}")]
    BadLength {
        /// The length seen.
        len: usize,
    },
    /// The id holds a character outside `[A-Za-z0-9_.-]` or is `.`/`..`.
    #[error("tenant id {id:?} may only contain letters, digits, '_', '-' and '.'")]
    BadCharacter {
        /// The refused id.
        id: String,
    },
}

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() || id.len() > 150 {
            return Err(TenantError::BadLength { len: id.len() });
        }
        let ok = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok || id == "." || id == ".." {
            return Err(TenantError::BadCharacter { id: id.to_string() });
        }
        Ok(TenantId(Arc::from(id)))
    }

    /// The default tenant, `default`.
    pub fn default_tenant() -> Self {
        TenantId(Arc::from(DEFAULT_TENANT))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ids() {
        assert!(TenantId::new("default").is_ok());
        assert!(TenantId::new("team-a.prod_1").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("..").is_err());
        assert!(TenantId::new("a/b").is_err());
        assert!(TenantId::new(&"x".repeat(151)).is_err());
    }
}
