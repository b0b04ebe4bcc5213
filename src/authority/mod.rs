//! Who wrote an entry, and what they may write (design invariant 8).
//!
//! Every entry's `actor` field is `<class>:<principal>`. The class says
//! which kinds the writer may write (the registry names the classes of each
//! kind); the principal says who it was. Neither ever comes from an entry's
//! body or an environment variable: the class comes from the path the entry
//! arrived by (`argusctl append` is the agent path, decision commands the
//! operator path, the writer itself the Argus path) and the principal from
//! the operating system (later: a token or a socket peer).
mod actor;
mod local;

pub use actor::{Actor, Class};
pub use local::{local_actor, local_principal};
