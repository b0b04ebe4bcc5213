//! Who is calling, and what their role lets them do.
//!
//! A caller is a bearer token's holder, a Unix-socket peer whose uid the
//! config names, or the daemon's own user (on the socket, or on a loopback
//! listener when no tokens are configured). The role becomes the writer
//! class of every entry the request writes, so the registry's writer rules
//! apply over HTTP exactly as they do locally: an agent token cannot write
//! an operator's decision whatever its body says. The token itself is never
//! logged, echoed or stored; only its hash is compared.
use super::config::PeerConfig;
use super::errors::ApiError;
use crate::authority::{Actor, Class};
use crate::tokens::TokenStore;
use axum::http::{header, HeaderMap};
use std::collections::BTreeMap;

/// How the request's connection reached us.
#[derive(Debug, Clone)]
pub enum Peer {
    Tcp(std::net::SocketAddr),
    Unix { uid: u32, pid: Option<i32> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A bearer token's holder, in the token's role.
    Token { name: String, role: Class },
    /// A Unix-socket peer mapped by uid in the config.
    Peer { uid: u32, name: String, role: Class },
    /// The daemon's own user: the class follows the route, as it follows
    /// the command for `argusctl` (append is the agent path, decisions the
    /// operator path).
    Local { principal: String },
}

impl Caller {
    /// The principal as entries record it.
    pub fn principal(&self) -> String {
        match self {
            Self::Token { name, .. } => format!("token:{name}"),
            Self::Peer { uid, name, .. } => format!("peer:uid:{uid}:{name}"),
            Self::Local { principal } => principal.clone(),
        }
    }
    /// The actor of entries this caller appends through `/v1/entries`.
    pub fn entry_actor(&self) -> Actor {
        match self {
            Self::Token { role, .. } | Self::Peer { role, .. } => {
                Actor::new(*role, self.principal())
            }
            Self::Local { principal } => Actor::new(Class::Agent, principal.clone()),
        }
    }
    /// The agent name an agent-role caller must write under; `None` for
    /// roles and local callers that may name any agent.
    pub fn own_agent(&self) -> Option<&str> {
        match self {
            Self::Token {
                name,
                role: Class::Agent,
            }
            | Self::Peer {
                name,
                role: Class::Agent,
                ..
            } => Some(name),
            _ => None,
        }
    }
    /// Decisions (approve, reject, mode, flags, DLQ, configuration) are an
    /// operator's.
    pub fn require_operator(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Self::Local { .. } => Ok(()),
            Self::Token { role, name } | Self::Peer { role, name, .. } => {
                if *role == Class::Operator {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(format!(
                        "{what} is an operator's decision; {name:?} has the {} role",
                        role.as_str()
                    )))
                }
            }
        }
    }
    pub fn role_label(&self) -> &'static str {
        match self {
            Self::Token { role, .. } | Self::Peer { role, .. } => role.as_str(),
            Self::Local { .. } => "local",
        }
    }
}

/// What the daemon knows about callers.
pub struct Auth {
    pub tokens: parking_lot::RwLock<TokenStore>,
    pub peers: BTreeMap<u32, PeerConfig>,
    /// `uid:<n>:<name>` of the daemon's own user.
    pub local_principal: String,
    pub local_uid: u32,
}

impl Auth {
    /// Who made a request, or why it is refused (401): a token that is
    /// not known, or no credentials where the listener needs them.
    pub fn identify(&self, headers: &HeaderMap, peer: &Peer) -> Result<Caller, ApiError> {
        if let Some(v) = headers.get(header::AUTHORIZATION) {
            let presented = v
                .to_str()
                .ok()
                .and_then(|s| s.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
                })?;
            return match self.tokens.read().authenticate(presented) {
                Some(t) => Ok(Caller::Token {
                    name: t.name.clone(),
                    role: t.role.class(),
                }),
                None => Err(ApiError::unauthenticated(
                    "the token is not known (revoked, mistyped, or for another log)",
                )),
            };
        }
        match peer {
            Peer::Unix { uid, .. } => {
                if let Some(p) = self.peers.get(uid) {
                    return Ok(Caller::Peer {
                        uid: *uid,
                        name: p.name.clone(),
                        role: p.role,
                    });
                }
                if *uid == self.local_uid {
                    return Ok(self.local());
                }
                Err(ApiError::unauthenticated(format!(
                    "uid {uid} is not a configured peer of this socket; send a token"
                )))
            }
            Peer::Tcp(_) if self.tokens.read().is_empty() => Ok(self.local()),
            Peer::Tcp(_) => Err(ApiError::unauthenticated(
                "this daemon needs a token: send `Authorization: Bearer <token>`",
            )),
        }
    }

    /// Re-reads the token file (after `token add` or `revoke` through the
    /// daemon). A file that no longer loads keeps the old tokens and says why.
    pub fn reload(&self, path: &std::path::Path) {
        match TokenStore::load(path) {
            Ok(t) => *self.tokens.write() = t,
            Err(e) => {
                tracing::error!(error = %e, "could not reload the tokens; keeping the previous set")
            }
        }
    }

    fn local(&self) -> Caller {
        Caller::Local {
            principal: self.local_principal.clone(),
        }
    }
}

/// Peers from the config, keyed by uid. Only the three roles a person or
/// program can hold; `argus` is the log's own.
pub fn peers(cfg: &BTreeMap<String, PeerConfig>) -> Result<BTreeMap<u32, PeerConfig>, String> {
    let mut out = BTreeMap::new();
    for (uid, p) in cfg {
        let n: u32 = uid
            .parse()
            .map_err(|_| format!("peers: {uid:?} is not a uid"))?;
        if p.role == Class::Argus {
            return Err(format!(
                "peers.{uid}: the role must be agent, operator or auditor"
            ));
        }
        // A peer's name is a principal like a token's: the same alphabet.
        crate::tokens::check_name(&p.name).map_err(|e| format!("peers.{uid}.name: {e}"))?;
        out.insert(n, p.clone());
    }
    Ok(out)
}
