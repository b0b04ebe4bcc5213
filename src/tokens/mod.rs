//! API tokens for argusd: who holds one, in which role, and the file that
//! lists them (issue 10, §3).
//!
//! A token is a bearer secret, so the file keeps only its hash: whoever
//! reads `tokens.json` (a backup, a support bundle) learns who may connect,
//! never how. The file must be private (mode 0600) all the same, since it
//! is the daemon's word on which role each holder has. `argusctl token`
//! records every issue and revocation in the log first, so the log, not the
//! file, is the record of who was ever let in.
mod error;
mod file;
mod role;
mod secret;
mod store;

pub use error::TokenError;
pub use role::Role;
pub use secret::{check_name, Secret, NAME_MAX};
pub use store::{Issued, TokenRecord, TokenStore};

use std::path::{Path, PathBuf};

/// The token file's name in a log directory.
pub const FILE_NAME: &str = "tokens.json";

/// Where a log's tokens live unless `--tokens FILE` says otherwise:
/// beside the log they open, so moving the log moves its access list.
pub fn default_path(log_dir: &Path) -> PathBuf {
    log_dir.join(FILE_NAME)
}
