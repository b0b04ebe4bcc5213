//! `tokens.json` on disk: read with the log's file-safety rules and a
//! permission check, written whole by rename at mode 0600.
use super::{Role, TokenError};
use crate::log::safe_fs::{self, Durability, SMALL_FILE_MAX};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub(super) const VERSION: u64 = 1;

/// The whole file. Unknown fields are refused, not ignored: a field this
/// build does not understand (an expiry, a scope) might be one it should
/// have enforced.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokensFile {
    pub version: u64,
    pub tokens: Vec<Row>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Row {
    pub name: String,
    pub role: Role,
    pub hash: String,
    pub created: String,
    pub id: String,
}

fn invalid(path: &Path, reason: impl Into<String>) -> TokenError {
    TokenError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

fn file_error(path: &Path, source: crate::Error) -> TokenError {
    TokenError::File {
        path: path.into(),
        source: Box::new(source),
    }
}

/// Reads the file; `None` if there is none. The link check, the mode check
/// and the read all concern one open descriptor, so the file judged is the
/// file read.
pub(super) fn read(path: &Path) -> Result<Option<TokensFile>, TokenError> {
    let file = match safe_fs::open_read(path) {
        Ok(f) => f,
        Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(file_error(path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| file_error(path, io_error(path, e)))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Permissions {
            path: path.into(),
            mode,
        });
    }
    let bytes =
        safe_fs::read_capped_from(&file, path, SMALL_FILE_MAX).map_err(|e| file_error(path, e))?;
    let value = crate::json::parse(&bytes, bytes.len())
        .map_err(|e| invalid(path, format!("not strict JSON: {e}")))?;
    let parsed: TokensFile =
        serde_json::from_value(value).map_err(|e| invalid(path, e.to_string()))?;
    if parsed.version != VERSION {
        return Err(invalid(
            path,
            format!(
                "version {} is not one this build reads ({VERSION})",
                parsed.version
            ),
        ));
    }
    Ok(Some(parsed))
}

fn io_error(path: &Path, source: std::io::Error) -> crate::Error {
    crate::Error::Io {
        path: path.into(),
        source,
    }
}

/// Replaces the file whole: a reader (the daemon reloading) sees the old
/// list or the new one, never half of either, and a crash leaves one of
/// the two.
pub(super) fn write(path: &Path, content: &TokensFile) -> Result<(), TokenError> {
    let mut bytes = serde_json::to_vec_pretty(content)
        .map_err(|e| invalid(path, format!("cannot serialise: {e}")))?;
    bytes.push(b'\n');
    safe_fs::write_whole(&temp_path(path), path, &bytes, 0o600, Durability::Synced)
        .map_err(|e| file_error(path, e))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
