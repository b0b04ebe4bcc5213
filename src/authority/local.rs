//! The local principal: the operating system's word on who runs this
//! process. `USER`, `LOGNAME` and every other variable are ignored: they are
//! the caller's to set, so `USER=ceo argusctl approve` records the real user.
use super::{Actor, Class};

/// `uid:<uid>:<name>`, or `uid:<uid>` when the password database has no
/// entry (a container user, say). The name is filtered to a safe alphabet so
/// a hostile directory service cannot smuggle separators or control bytes.
pub fn local_principal() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
        });
    match name {
        Some(n) => format!("uid:{uid}:{n}"),
        None => format!("uid:{uid}"),
    }
}

/// The actor for an entry this process writes in `class`.
pub fn local_actor(class: Class) -> Actor {
    Actor::new(class, local_principal())
}
