//! Why the token file or a token change was refused.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Opening, reading or writing the file failed (a link in its place,
    /// too large, a full disk); the engine's error names the path.
    #[error("token file: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: Box<crate::Error>,
    },
    /// Anyone but the owner can read or change the file: a reader could
    /// map holders to roles, a writer could add a hash of their own.
    #[error("token file {path} is readable or writable by group or others (mode {mode:04o}); run `chmod 600 {path}`", path = path.display())]
    Permissions { path: PathBuf, mode: u32 },
    /// The file's content is not a token list this build can trust.
    #[error("token file {path}: {reason}", path = path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{reason}")]
    BadName { name: String, reason: String },
    #[error("a live token is already named {name:?}; revoke it first or choose another name")]
    NameTaken { name: String },
    #[error("no live token is named {name:?}")]
    UnknownName { name: String },
    #[error("the system's random source failed: {0}")]
    Random(getrandom::Error),
}
