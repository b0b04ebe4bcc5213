//! The live tokens, as the daemon checks them and `argusctl token` edits
//! them.
use super::file::{self, Row, TokensFile, VERSION};
use super::secret::{self, Secret, ID_LEN, PREFIX, PRESENTED_MAX};
use super::{check_name, Role, TokenError};
use crate::authority::Actor;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One live token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// The first 12 hex digits of the hash: enough to tell tokens apart in
    /// a listing or the log, far too few to look one up by.
    pub id: String,
    /// RFC 3339, when it was issued.
    pub created: String,
    hash: String,
}

impl TokenRecord {
    /// `token:<name>`: the principal of every entry the holder writes.
    pub fn principal(&self) -> String {
        format!("token:{}", self.name)
    }

    /// The actor of every entry the holder writes: the role's class, so an
    /// agent token writes agent entries whatever its request body says.
    pub fn actor(&self) -> Actor {
        Actor::new(self.role.class(), self.principal())
    }

    /// The stored hash (64 hex digits), for the `token.added` entry.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// A token just issued: the secret, to show once, and its record.
#[derive(Debug)]
pub struct Issued {
    pub token: Secret,
    pub record: TokenRecord,
}

/// The tokens of one file. Lookup is by hash, so what a client presents is
/// never compared byte by byte with anything secret: its hash either is a
/// key of the map or is not, and the keys are not the attacker's to choose.
#[derive(Debug, Default)]
pub struct TokenStore {
    by_name: BTreeMap<String, TokenRecord>,
    name_of_hash: HashMap<String, String>,
}

impl TokenStore {
    /// Reads the file at `path`; a missing file is an empty store (no
    /// tokens configured), anything unsafe or malformed is an error.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let Some(f) = file::read(path)? else {
            return Ok(Self::default());
        };
        let mut store = Self::default();
        for (i, row) in f.tokens.into_iter().enumerate() {
            store
                .insert_row(row)
                .map_err(|reason| TokenError::Invalid {
                    path: path.into(),
                    reason: format!("tokens[{i}]: {reason}"),
                })?;
        }
        Ok(store)
    }

    fn insert_row(&mut self, row: Row) -> Result<(), String> {
        check_name(&row.name).map_err(|r| format!("name: {r}"))?;
        if !secret::is_hash(&row.hash) {
            return Err("hash: not 64 lowercase hex digits".into());
        }
        if row.id != row.hash[..ID_LEN] {
            return Err(format!(
                "id: {:?} is not the hash's first {ID_LEN} digits",
                row.id
            ));
        }
        if self.by_name.contains_key(&row.name) {
            return Err(format!("name {:?} appears twice", row.name));
        }
        if self.name_of_hash.contains_key(&row.hash) {
            return Err(format!("the hash of {:?} appears twice", row.name));
        }
        self.name_of_hash.insert(row.hash.clone(), row.name.clone());
        self.by_name.insert(
            row.name.clone(),
            TokenRecord {
                name: row.name,
                role: row.role,
                id: row.id,
                created: row.created,
                hash: row.hash,
            },
        );
        Ok(())
    }

    /// Writes the store to `path`, whole, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), TokenError> {
        let tokens = self
            .by_name
            .values()
            .map(|r| Row {
                name: r.name.clone(),
                role: r.role,
                hash: r.hash.clone(),
                created: r.created.clone(),
                id: r.id.clone(),
            })
            .collect();
        file::write(
            path,
            &TokensFile {
                version: VERSION,
                tokens,
            },
        )
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The holder of `presented`, if it is a live token.
    pub fn authenticate(&self, presented: &str) -> Option<&TokenRecord> {
        if !presented.starts_with(PREFIX) || presented.len() > PRESENTED_MAX {
            return None;
        }
        let name = self.name_of_hash.get(&secret::hash_hex(presented))?;
        self.by_name.get(name)
    }

    /// Live tokens by name.
    pub fn records(&self) -> impl Iterator<Item = &TokenRecord> {
        self.by_name.values()
    }

    pub fn get(&self, name: &str) -> Option<&TokenRecord> {
        self.by_name.get(name)
    }

    /// Makes a new token for `name` in `role`, created at `created` (RFC
    /// 3339). The store changes; the file does not until `save`.
    pub fn issue(&mut self, name: &str, role: Role, created: &str) -> Result<Issued, TokenError> {
        check_name(name).map_err(|reason| TokenError::BadName {
            name: name.into(),
            reason,
        })?;
        if self.by_name.contains_key(name) {
            return Err(TokenError::NameTaken { name: name.into() });
        }
        let token = Secret::generate().map_err(TokenError::Random)?;
        let hash = secret::hash_hex(token.expose());
        let row = Row {
            name: name.into(),
            role,
            id: hash[..ID_LEN].to_string(),
            hash,
            created: created.into(),
        };
        // A collision of 256-bit hashes is not a case to handle gracefully.
        self.insert_row(row).map_err(|reason| TokenError::BadName {
            name: name.into(),
            reason,
        })?;
        let record = self
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| TokenError::UnknownName { name: name.into() })?;
        Ok(Issued { token, record })
    }

    /// Removes `name`'s token; it stops working once the store is saved and
    /// reloaded.
    pub fn revoke(&mut self, name: &str) -> Result<TokenRecord, TokenError> {
        let record = self
            .by_name
            .remove(name)
            .ok_or_else(|| TokenError::UnknownName { name: name.into() })?;
        self.name_of_hash.remove(&record.hash);
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW: &str = "2026-11-23T10:00:00.000000000Z";

    #[test]
    fn authenticate_finds_the_holder_by_hash_only() {
        let mut s = TokenStore::default();
        let a = s.issue("researcher", Role::Agent, NOW).unwrap();
        let o = s.issue("alice", Role::Operator, NOW).unwrap();
        let got = s.authenticate(a.token.expose()).unwrap();
        assert_eq!(got.name, "researcher");
        assert_eq!(got.actor().to_string(), "agent:token:researcher");
        assert_eq!(
            s.authenticate(o.token.expose())
                .unwrap()
                .actor()
                .to_string(),
            "operator:token:alice"
        );
        // A wrong token, a near miss, the hash itself, the id: nobody.
        let mut near = a.token.expose().to_string();
        near.pop();
        near.push(if a.token.expose().ends_with('A') {
            'B'
        } else {
            'A'
        });
        for wrong in [
            "",
            "argus_",
            near.as_str(),
            a.record.hash(),
            a.record.id.as_str(),
            &a.token.expose()[PREFIX.len()..],
        ] {
            assert!(s.authenticate(wrong).is_none(), "{wrong:?}");
        }
    }

    #[test]
    fn a_revoked_token_no_longer_authenticates_after_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut s = TokenStore::load(&path).unwrap();
        assert!(s.is_empty());
        let a = s.issue("researcher", Role::Agent, NOW).unwrap();
        let b = s.issue("bot", Role::Auditor, NOW).unwrap();
        s.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut s = TokenStore::load(&path).unwrap();
        assert_eq!(s.authenticate(a.token.expose()).unwrap().name, "researcher");
        s.revoke("researcher").unwrap();
        s.save(&path).unwrap();
        let s = TokenStore::load(&path).unwrap();
        assert!(s.authenticate(a.token.expose()).is_none());
        assert_eq!(
            s.authenticate(b.token.expose()).unwrap().role,
            Role::Auditor
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(b.token.expose()));
        assert!(text.contains(b.record.hash()));
    }

    #[test]
    fn names_are_unique_and_checked() {
        let mut s = TokenStore::default();
        s.issue("a", Role::Agent, NOW).unwrap();
        assert!(matches!(
            s.issue("a", Role::Operator, NOW),
            Err(TokenError::NameTaken { .. })
        ));
        assert!(matches!(
            s.issue("a:b", Role::Agent, NOW),
            Err(TokenError::BadName { .. })
        ));
        assert!(matches!(
            s.revoke("nobody"),
            Err(TokenError::UnknownName { .. })
        ));
    }

    #[test]
    fn damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let hash = "ab".repeat(32);
        let row = |name: &str, hash: &str, id: &str| {
            format!(
                r#"{{"name":"{name}","role":"agent","hash":"{hash}","created":"{NOW}","id":"{id}"}}"#
            )
        };
        let file = |rows: &str| format!(r#"{{"version":1,"tokens":[{rows}]}}"#);
        let good = row("a", &hash, &hash[..12]);
        for (body, says) in [
            (file(&format!("{good},{good}")), "twice"),
            (r#"{"version":2,"tokens":[]}"#.to_string(), "version 2"),
            (
                r#"{"version":1,"tokens":[],"extra":1}"#.to_string(),
                "extra",
            ),
            (
                r#"{"version":1,"version":1,"tokens":[]}"#.to_string(),
                "duplicate",
            ),
            (file(&row("a", "XYZ", "XYZ")), "hash"),
            (file(&row("a", &hash, "000000000000")), "id"),
            (file(&row("a b", &hash, &hash[..12])), "name"),
            (file(&good.replace("\"agent\"", "\"root\"")), "root"),
        ] {
            std::fs::write(&path, &body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = TokenStore::load(&path).unwrap_err().to_string();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn a_shared_or_linked_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        TokenStore::default().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = TokenStore::load(&path).unwrap_err();
        assert!(
            matches!(e, TokenError::Permissions { mode: 0o640, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = TokenStore::load(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
