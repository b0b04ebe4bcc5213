//! Writing the call's entries, as an agent: locally through the log's
//! writer (opened for one append, then closed, so nobody waits on the lock
//! while the command runs), or through argusd's `POST /v1/entries`.
use crate::authority::Class;
use crate::cli::remote::{self, Remote};
use crate::cli::state::{self, Decision};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

pub enum Sink {
    Local(PathBuf),
    Remote(Remote),
}

/// The job and agent every entry of the call carries.
pub struct Call<'a> {
    pub job: &'a str,
    pub agent: &'a str,
}

impl Sink {
    /// Appends one agent entry (durable and sealed on return); its seq.
    pub fn append(
        &self,
        call: &Call<'_>,
        kind: &str,
        parent: Option<u64>,
        payload: Value,
    ) -> Result<u64> {
        match self {
            Sink::Local(dir) => state::append_one(
                dir,
                "exec",
                Decision {
                    class: Class::Agent,
                    kind,
                    job_id: Some(call.job),
                    agent: Some(call.agent),
                    parent,
                    payload,
                },
            ),
            Sink::Remote(r) => {
                let line = json!({
                    "kind": kind,
                    "job_id": call.job,
                    "agent": call.agent,
                    "parent": parent,
                    "payload": payload,
                });
                let body = serde_json::to_vec(&line)?;
                let a = r.call("POST", "/v1/entries", Some(("application/json", body)))?;
                if a.status != 200 {
                    bail!(
                        "argusd refused the {kind} entry: {}",
                        remote::error_message(&a.body)
                    );
                }
                let acks: Value =
                    serde_json::from_slice(&a.body).context("argusd's answer to an append")?;
                acks[0]["seq"]
                    .as_u64()
                    .context("argusd's append answer holds no seq")
            }
        }
    }
}
