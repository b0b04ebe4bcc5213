//! TEMPORARY STUB (replaced by the tokens branch at merge).
use std::path::{Path, PathBuf};
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Agent,
    Operator,
    Auditor,
}
impl Role {
    pub fn class(self) -> crate::authority::Class {
        match self {
            Role::Agent => crate::authority::Class::Agent,
            Role::Operator => crate::authority::Class::Operator,
            Role::Auditor => crate::authority::Class::Auditor,
        }
    }
}
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
}
#[derive(Default)]
pub struct TokenStore {
    v: Vec<TokenRecord>,
}
impl TokenStore {
    pub fn load(_p: &Path) -> Result<Self, std::io::Error> {
        Ok(Self::default())
    }
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }
    pub fn authenticate(&self, _t: &str) -> Option<&TokenRecord> {
        None
    }
}
pub fn default_path(d: &Path) -> PathBuf {
    d.join("tokens.json")
}
