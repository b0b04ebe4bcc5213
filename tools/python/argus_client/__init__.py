"""A client for argusd, the Argus daemon (docs/API.md), standard library only.

    from argus_client import Client
    c = Client.discover("/var/lib/argus/audit")          # reads DIR/argusd.json
    ack = c.append({"kind": "job.received", "job_id": "j1", "agent": "planner",
                    "payload": {"job_type": "research_synthesis"}})
    for entry in c.follow(from_seq=ack["seq"]):           # live, resumable
        ...

Every append returns only after the entries are durable and covered by a
signed seal. Errors are typed by HTTP status (see `errors`) and carry the
server's message.
"""

from .client import Client, Stream
from .errors import (
    ArgusError,
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    Overloaded,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "Client",
    "Stream",
    "ArgusError",
    "BadRequest",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "Conflict",
    "TooLarge",
    "Locked",
    "Unavailable",
    "Overloaded",
    "RateLimited",
]
__version__ = "0.1.0"
