"""Typed errors, one per HTTP status argusd answers with (docs/API.md)."""


class ArgusError(Exception):
    """An error answer from argusd, or a broken connection to it.

    `status` is the HTTP status (0 when no answer arrived), `kind` the
    server's error kind, `message` its text, and `details` the whole error
    object (line, field, ... when the server gave them).
    """

    status = 0

    def __init__(self, message, status=None, kind=None, details=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.kind = kind
        self.details = details or {}

    def __str__(self):
        where = ""
        if "line" in self.details:
            where = " (line %s)" % self.details["line"]
        return "argusd %s %s: %s%s" % (self.status or "-", self.kind or "error", self.message, where)


class BadRequest(ArgusError):
    """400: malformed JSON, a kind or schema violation; nothing was written."""

    status = 400


class Unauthenticated(ArgusError):
    """401: no token, or an unknown one."""

    status = 401


class Forbidden(ArgusError):
    """403: the token's role may not do this."""

    status = 403


class NotFound(ArgusError):
    status = 404


class Conflict(ArgusError):
    """409: a decision lost a race or the proposal changed since review."""

    status = 409


class TooLarge(ArgusError):
    status = 413


class Locked(ArgusError):
    """423: the platform is locked down or killed; nothing is accepted."""

    status = 423


class RateLimited(ArgusError):
    """429: this client is over its request rate; nothing was written.

    Retry after `retry_after` seconds, or batch entries into fewer requests.
    """

    status = 429

    def __init__(self, message, status=None, kind=None, details=None, retry_after=None):
        super().__init__(message, status, kind, details)
        self.retry_after = retry_after


class Unavailable(ArgusError):
    """503: the log cannot be written (lockdown), or argusd is overloaded.

    `retry_after` is the server's Retry-After in seconds, when it gave one.
    """

    status = 503

    def __init__(self, message, status=None, kind=None, details=None, retry_after=None):
        super().__init__(message, status, kind, details)
        self.retry_after = retry_after


class Overloaded(Unavailable):
    """503 with kind `overloaded`: retry after `retry_after` seconds."""


_BY_STATUS = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    415: BadRequest,
    423: Locked,
}


def from_response(status, body, retry_after=None):
    """The typed error for an error answer (`body` is bytes)."""
    import json

    details = {}
    message = body.decode("utf-8", "replace").strip() or ("HTTP %d" % status)
    kind = None
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            details = doc["error"]
            message = str(details.get("message", message))
            kind = details.get("kind")
    except ValueError:
        pass
    if status == 429:
        return RateLimited(message, status, kind, details, retry_after=retry_after)
    if status == 503:
        cls = Overloaded if kind == "overloaded" else Unavailable
        return cls(message, status, kind, details, retry_after=retry_after)
    cls = _BY_STATUS.get(status, ArgusError)
    return cls(message, status, kind, details)
