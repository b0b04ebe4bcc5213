#!/usr/bin/env python3
"""Independent verifier for the Argus log format, version 1.

Written from log-format/SPEC.md alone (no Rust source was read).

    python3 tools/pyverify/verify.py DIR [--key HEX] [--checkpoint FILE]... [-o text|json]
                                         [--check-payload-form]

    python3 tools/pyverify/verify.py proof BUNDLE --key HEX

Exit codes (SPEC §7.3): 0 intact, 1 could not run, 2 usage, 10 CONTENT,
11 SIGNATURE, 12 TRUNCATION, 13 STRUCTURE.  For `proof` (SPEC §11): 0 valid,
2 malformed bundle, 10 content altered, 11 bad signature or wrong key.
"""

import argparse
import base64
import decimal
import hashlib
import json
import os
import errno
import re
import stat
import struct
import sys
import zlib

try:
    import blake3 as _blake3
    import zstandard as _zstd
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError as _e:  # pragma: no cover
    sys.stderr.write("error: missing dependency (%s); pip install -r tools/pyverify/requirements.txt\n" % _e)
    sys.exit(1)

# ---------------------------------------------------------------- constants

MAGIC = b"ARGUSSEG"
VERSION = 1
MAX_FRAME = 16 * 1024 * 1024          # §4: 1 <= len <= 16 MiB
T_ENTRY, T_SEAL, T_FOOTER = 1, 2, 3
ROOT_LEN = 136                        # §4.1
SEAL_LEN = 148                        # §4.3
FOOTER_LEN = 48                       # §4.4
NO_PARENT = 0xFFFFFFFFFFFFFFFF
ZERO32 = bytes(32)
SEG_NAME = re.compile(r"^[0-9]{20}$")
# §12 compressed segments
Z_MAGIC = b"ARGUSZST"
Z_TRAILER_MAGIC = b"ARGUSZIX"
Z_VERSION = 1
Z_HEADER_LEN = 36
Z_INDEX_ENTRY_LEN = 32
Z_TRAILER_LEN = 24
Z_BLOCK_MAX = 32 << 20
Z_SEGMENT_MAX = 4 << 30
KIND_RE = re.compile(rb"^[a-z0-9_]+(\.[a-z0-9_]+)*\Z")

CTX_ENTRY = "argus.log v1 entry"
CTX_PAYLOAD = "argus.log v1 payload"
PAYLOAD_FORM_WARNINGS_MAX = 10

OK, ERROR, USAGE = 0, 1, 2
CONTENT, SIGNATURE, TRUNCATION, STRUCTURE = 10, 11, 12, 13
CLASS_NAMES = {
    OK: "intact", ERROR: "error", USAGE: "usage", CONTENT: "CONTENT",
    SIGNATURE: "SIGNATURE", TRUNCATION: "TRUNCATION", STRUCTURE: "STRUCTURE",
}

# Ed25519 group constants (RFC 8032).
ED_P = 2 ** 255 - 19
ED_L = 2 ** 252 + 27742317777372353535851937790883648493
# y-coordinates of the 8 small-order (torsion) points: identity (1), order 2
# (p-1), order 4 (0) and the two order-8 pairs.  A point has small order iff
# its y is in this set (x's sign does not change the order).
SMALL_ORDER_Y = frozenset((
    0, 1, ED_P - 1,
    2707385501144840649318225287225658788936804267575313519463743609750303402022,
    55188659117513257062467267217118295137698188065244968500265048394206261417927,
))

_u32 = struct.Struct("<I")
_u64 = struct.Struct("<Q")
_frame_hdr = struct.Struct("<IIB")   # crc, len, type
_seal = struct.Struct("<Q32s32sQ4s64s")
_footer = struct.Struct("<QQ32s")
_root_fixed = struct.Struct("<QQQ32s32s")
_ptrs = struct.Struct("<" + "iI" * 6)


class Failure(Exception):
    def __init__(self, code, message, segment=None, offset=None, seq=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.segment = segment
        self.offset = offset
        self.seq = seq


class Usage(Exception):
    pass


# ---------------------------------------------------------------- hashing

def H(data):
    return _blake3.blake3(data).digest()


def DK(ctx, data):
    return _blake3.blake3(data, derive_key_context=ctx).digest()


EMPTY_ROOT = H(b"")


class CompactRange:
    """§6 compact range (frontier), largest subtree first."""

    __slots__ = ("size", "hashes")

    def __init__(self):
        self.size = 0
        self.hashes = []

    def push(self, entry_hash):
        h = _blake3.blake3(b"\x00" + entry_hash).digest()
        s = self.size
        hs = self.hashes
        while s & 1:
            h = _blake3.blake3(b"\x01" + hs.pop() + h).digest()
            s >>= 1
        hs.append(h)
        self.size += 1

    def root(self):
        hs = self.hashes
        if not hs:
            return EMPTY_ROOT
        r = hs[-1]
        for x in reversed(hs[:-1]):
            r = _blake3.blake3(b"\x01" + x + r).digest()
        return r


# ---------------------------------------------------------------- Ed25519

def _point_encoding_ok(enc):
    """Canonical and not of small order (§1).  Returns a reason or None."""
    v = int.from_bytes(enc, "little")
    sign = v >> 255
    y = v & ((1 << 255) - 1)
    if y >= ED_P:
        return "non-canonical encoding (y >= p)"
    if sign and y in (1, ED_P - 1):
        return "non-canonical encoding (x = 0 with sign bit set)"
    if y in SMALL_ORDER_Y:
        return "small-order point"
    return None


def strict_verify(pubkey_bytes, signature, message):
    """Ed25519 verify with the strict rules of SPEC §1.

    Returns None if valid, else a reason string.  Checks: S < L; A and R
    canonically encoded (y < p, no negative zero) and not small order; then
    RFC 8032 verification by OpenSSL through `cryptography`.
    """
    if len(signature) != 64:
        return "signature is not 64 bytes"
    if len(pubkey_bytes) != 32:
        return "public key is not 32 bytes"
    bad = _point_encoding_ok(pubkey_bytes)
    if bad:
        return "public key: " + bad
    bad = _point_encoding_ok(signature[:32])
    if bad:
        return "signature R: " + bad
    if int.from_bytes(signature[32:], "little") >= ED_L:
        return "signature S is not canonical (S >= L)"
    try:
        Ed25519PublicKey.from_public_bytes(pubkey_bytes).verify(signature, message)
    except InvalidSignature:
        return "signature does not verify"
    except ValueError as e:
        return "bad public key: %s" % e
    return None


def origin_of(log_id):
    return "argus.log/" + log_id.hex()


def key_id_of(origin, public_key):
    """§5.2"""
    return hashlib.sha256(origin.encode() + b"\n\x01" + public_key).digest()[:4]


def note_body(log_id, tree_size, root, head, ts_ns, key_id):
    """§5.1"""
    return ("%s\n%d\n%s\nchain %s\ntime %d key %s\n" % (
        origin_of(log_id), tree_size, base64.b64encode(root).decode(),
        head.hex(), ts_ns, key_id.hex())).encode()


# ---------------------------------------------------------------- checkpoints

class Checkpoint:
    def __init__(self, path, origin, tree_size, root, head, ts_ns, key_id_line, body, sigs):
        self.path = path
        self.origin = origin
        self.tree_size = tree_size
        self.root = root
        self.head = head
        self.ts_ns = ts_ns
        self.key_id_line = key_id_line
        self.body = body   # the signed note text, exact bytes
        self.sigs = sigs   # list of (line, name, key_id 4 bytes, signature bytes)


_DEC = re.compile(r"\A(0|[1-9][0-9]*)\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")
_HEX8 = re.compile(r"\A[0-9a-f]{8}\Z")
# Unicode White_Space (what Go's unicode.IsSpace tests): no key name holds one.
_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
MAX_SIGNATURES = 100   # Go's note.Open refuses more; C2SP asks for a limit >= 16
U64_MAX = 2 ** 64 - 1


def _b64_canonical(s):
    """Standard padded base64 in its one canonical spelling, or None."""
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode("ascii") == s else None


def _dec_u64(s):
    if len(s) > 20 or not _DEC.match(s):   # 20 digits hold any u64
        return None
    v = int(s)
    return v if v <= U64_MAX else None


def parse_checkpoint(path):
    """Parse a checkpoint strictly (§5.3): a C2SP signed-note, exactly as Go's
    note.Open would split and check it, whose text is the five §5.1 lines.
    Raises Usage naming the 1-based line."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Failure(ERROR, "cannot read checkpoint %s: %s" % (path, e))
    return parse_checkpoint_bytes(raw, path)


def parse_checkpoint_bytes(raw, path):
    """parse_checkpoint on bytes already read; `path` names them in errors."""
    def bad(line, why):
        return Usage("checkpoint %s: line %d: %s" % (path, line, why))

    def line_at(i):
        return raw.count(b"\n", 0, i) + 1

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad(line_at(e.start), "not valid UTF-8")
    for i, c in enumerate(text):
        if c < " " and c != "\n":
            raise bad(text.count("\n", 0, i) + 1,
                      "control character U+%04X; a signed note holds no control character but \\n" % ord(c))
    split = raw.rfind(b"\n\n")
    if split < 0:
        raise bad(line_at(len(raw)), "no blank line between the note text and the signatures")
    body, sig_block = raw[: split + 1], raw[split + 2:]
    first_sig_line = line_at(split + 1) + 1
    if not sig_block:
        raise bad(first_sig_line, "no signature line after the last blank line")
    if not sig_block.endswith(b"\n"):
        raise bad(line_at(len(raw)), "the file does not end in a newline")
    sigs = []
    for n, ln in enumerate(sig_block.decode("utf-8").split("\n")[:-1]):
        line = first_sig_line + n
        if n == MAX_SIGNATURES:
            raise bad(line, "more than %d signature lines" % MAX_SIGNATURES)
        if not ln.startswith("\u2014 "):
            raise bad(line, "a signature line starts with an em dash (U+2014) and one space")
        name, _, b64 = ln[2:].partition(" ")
        if not name or "+" in name or _SPACE.search(name):
            raise bad(line, "signature key name %r is empty or holds a space or '+'" % name)
        blob = _b64_canonical(b64)
        if blob is None:
            raise bad(line, "the signature is not one canonical standard base64 string")
        if len(blob) < 5:
            raise bad(line, "the signature decodes to %d bytes; it needs a key id and a signature" % len(blob))
        sigs.append((line, name, blob[:4], blob[4:]))

    lines = body.decode("utf-8").split("\n")[:-1]

    def get(i):
        if i >= len(lines):
            raise bad(i + 1, "the note text ends after %d lines; an Argus checkpoint has 5" % len(lines))
        return lines[i]

    origin = get(0)
    if not origin.startswith("argus.log/") or not _HEX32.match(origin[10:]):
        raise bad(1, "expected argus.log/<32 lowercase hex digits>")
    tree_size = _dec_u64(get(1))
    if tree_size is None:
        raise bad(2, "tree size is not a canonical decimal u64")
    root = _b64_canonical(get(2))
    if root is None or len(root) != 32:
        raise bad(3, "root is not canonical base64 of 32 bytes")
    if not get(3).startswith("chain ") or not _HEX64.match(lines[3][6:]):
        raise bad(4, "expected chain <64 lowercase hex digits>")
    head = bytes.fromhex(lines[3][6:])
    t = get(4).split(" ")
    ts_ns = _dec_u64(t[1]) if len(t) == 4 else None
    if len(t) != 4 or t[0] != "time" or t[2] != "key" or ts_ns is None or not _HEX8.match(t[3]):
        raise bad(5, "expected time <canonical decimal u64> key <8 lowercase hex digits>")
    if len(lines) > 5:
        raise bad(6, "the note text has %d lines; an Argus checkpoint has exactly 5" % len(lines))
    return Checkpoint(path, origin, tree_size, root, head, ts_ns, bytes.fromhex(t[3]), body, sigs)


# ---------------------------------------------------------------- entries

def decode_entry(body):
    """§4.1 canonical-layout decode.  Returns a tuple or raises ValueError."""
    blen = len(body)
    if blen < ROOT_LEN:
        raise ValueError("entry body is %d bytes, shorter than the 136-byte root" % blen)
    R = blen - ROOT_LEN
    seq, ts_ns, parent, prev, payload_hash = _root_fixed.unpack_from(body, R)
    p = _ptrs.unpack_from(body, R + 88)
    starts = []
    pos = 0
    for k in range(6):
        rel = p[2 * k]
        ln = p[2 * k + 1]
        want = pos - (R + 88 + 8 * k)
        if rel != want:
            raise ValueError("field %d relative pointer is %d, canonical is %d" % (5 + k, rel, want))
        starts.append(pos)
        pos += ln
    if pos != R:
        raise ValueError("field lengths sum to %d but the root is at %d (body length must be R+136)" % (pos, R))
    fields = [body[starts[k]: starts[k] + p[2 * k + 1]] for k in range(6)]
    kind, job_id, step_id, agent, actor, payload = fields
    if not kind:
        raise ValueError("kind is empty")
    if not actor:
        raise ValueError("actor is empty")
    for name, f in (("kind", kind), ("job_id", job_id), ("step_id", step_id),
                    ("agent", agent), ("actor", actor)):
        try:
            bytes(f).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("%s is not valid UTF-8" % name)
    if not KIND_RE.match(bytes(kind)):
        raise ValueError("kind %r does not match [a-z0-9_]+(\\.[a-z0-9_]+)*" % bytes(kind).decode())
    if parent != NO_PARENT and parent >= seq:
        raise ValueError("parent %d is not less than seq %d" % (parent, seq))
    return seq, prev, payload_hash, R, p, fields


def is_zeroed(payload):
    """§4.2.1: the erased form's bytes: at least one byte, every byte 0x00."""
    return len(payload) > 0 and not any(payload)


REDACTED_KIND = b"entry.redacted"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def redaction_of(seq, fields):
    """§4.2.1: (by_seq, target_seq, payload_hash, actor, reason) if the entry is an
    entry.redacted whose actor's class is operator, whose payload is a JSON object with
    an integer target_seq below its own seq, a payload_hash of 64 lowercase hex digits
    and a string reason; else None (it explains nothing)."""
    kind, actor, payload = fields[0], fields[4], fields[5]
    if bytes(kind) != REDACTED_KIND:
        return None
    actor = bytes(actor).decode("utf-8")
    if not actor.startswith("operator:"):
        return None
    try:
        p = json.loads(bytes(payload).decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(p, dict):
        return None
    t, h, why = p.get("target_seq"), p.get("payload_hash"), p.get("reason")
    if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < seq:
        return None
    if not isinstance(h, str) or not HEX64.match(h) or not isinstance(why, str):
        return None
    return (seq, t, bytes.fromhex(h), actor, why)


ROTATED_KIND = b"key.rotated"
ROTATION_DOMAIN = b"argus key-rotation v1\n"
HEX_RE = {n: re.compile(r"^[0-9a-f]{%d}\Z" % n) for n in (8, 64, 128)}


def rotation_of(seq, fields, log_id, cur):
    """§4.7: the epoch a key.rotated entry at seq certifies, as
    (epoch, from_seq, public_key, key_id, seq), checked against cur, the
    current epoch (epoch, from_seq, public_key, key_id, cert_seq).  Raises
    ValueError naming what is wrong."""
    actor = bytes(fields[4]).decode("utf-8")
    if actor != "argus":
        raise ValueError("key.rotated at seq %d is written by %r, not by argus" % (seq, actor))
    try:
        p = json.loads(bytes(fields[5]).decode("utf-8"))
    except ValueError:
        raise ValueError("key.rotated at seq %d: payload is not JSON" % seq)
    if not isinstance(p, dict):
        raise ValueError("key.rotated at seq %d: payload is not an object" % seq)

    def num(k):
        v = p.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
            raise ValueError("key.rotated at seq %d: %s is not a non-negative integer" % (seq, k))
        return v

    def hx(k, n):
        v = p.get(k)
        if not isinstance(v, str) or not HEX_RE[2 * n].match(v):
            raise ValueError("key.rotated at seq %d: %s is not %d lowercase hex digits" % (seq, k, 2 * n))
        return bytes.fromhex(v)

    epoch = num("epoch")
    if epoch != cur[0] + 1:
        raise ValueError("key.rotated at seq %d opens epoch %d, but the next epoch is %d" % (seq, epoch, cur[0] + 1))
    from_seq = num("from_seq")
    if from_seq != seq + 1:
        raise ValueError("key.rotated at seq %d starts its epoch at seq %d, not %d" % (seq, from_seq, seq + 1))
    prev = hx("prev_key_id", 4)
    if prev != cur[3]:
        raise ValueError("key.rotated at seq %d names previous key id %s, but epoch %d's key id is %s"
                         % (seq, prev.hex(), cur[0], cur[3].hex()))
    pk = hx("public_key", 32)
    kid = key_id_of(origin_of(log_id), pk)
    if hx("key_id", 4) != kid:
        raise ValueError("key.rotated at seq %d: key_id is not the new key's id %s" % (seq, kid.hex()))
    msg = ROTATION_DOMAIN + log_id + struct.pack("<Q", epoch) + pk + prev + struct.pack("<Q", from_seq)
    if strict_verify(cur[2], hx("cert", 64), msg):
        raise ValueError("key.rotated at seq %d: the certificate is not signed by epoch %d's key (key id %s)"
                         % (seq, cur[0], cur[3].hex()))
    if strict_verify(pk, hx("possession", 64), msg):
        raise ValueError("key.rotated at seq %d: the proof of possession is not signed by the new key" % seq)
    return (epoch, from_seq, pk, kid, seq)


def epoch_for(epochs, tree_size):
    """§4.7: the epoch whose range holds seq tree_size - 1 (epoch 0 for 0)."""
    last = max(tree_size - 1, 0)
    e = epochs[0]
    for x in epochs:
        if x[1] <= last:
            e = x
    return e


def entry_hash(body, R, p, fields):
    """§4.2: M = body[R:R+88] || u32(L5)||D5 || ... || u32(L9)||D9"""
    h = _blake3.blake3(derive_key_context=CTX_ENTRY)
    h.update(body[R: R + 88])
    for k in range(5):
        h.update(_u32.pack(p[2 * k + 1]))
        h.update(fields[k])
    return h.digest()


# ---------------------------------------------------------------- payload form (§4.1.1)

class NotCanonical(ValueError):
    pass


def _canonical_number(x):
    """§4.1.1 numbers: the IEEE 754 double in ECMAScript Number::toString form."""
    try:
        f = float(x)
    except OverflowError:
        raise NotCanonical("integer %d is beyond the range of a double" % x)
    if f != f or f in (float("inf"), float("-inf")):
        raise NotCanonical("NaN and infinities are not JSON")
    if f == 0:
        return "0"
    if f < 0:
        return "-" + _canonical_number(-f)
    # repr() is the shortest string that reads back as the same double (and
    # of equally near ones, the even); Decimal only takes its digits apart.
    sign, digits, exp = decimal.Decimal(repr(f)).normalize().as_tuple()
    s = "".join(map(str, digits))
    k = len(s)
    n = exp + k          # value = 0.s x 10^n
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    return s[0] + ("." + s[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                  "\f": "\\f", "\r": "\\r"}


def _canonical_string(s):
    out = ['"']
    for c in s:
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif ord(c) < 0x20:
            out.append("\\u%04x" % ord(c))
        elif 0xD800 <= ord(c) <= 0xDFFF:
            raise NotCanonical("lone surrogate U+%04X is not a character" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _canonical(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, (int, float)):
        out.append(_canonical_number(v))
    elif isinstance(v, str):
        out.append(_canonical_string(v))
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        # UTF-16 code units compare like the big-endian UTF-16 bytes.
        for i, key in enumerate(sorted(v, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            if i:
                out.append(",")
            out.append(_canonical_string(key))
            out.append(":")
            _canonical(v[key], out)
        out.append("}")
    else:
        raise NotCanonical("%r is not a JSON value" % type(v).__name__)


def canonical_json(value):
    """§4.1.1: the Argus canonical JSON bytes of a parsed JSON value."""
    out = []
    _canonical(value, out)
    return "".join(out).encode("utf-8")


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise NotCanonical("duplicate key %r" % k)
        d[k] = v
    return d


def _no_constant(name):
    raise NotCanonical("%s is not JSON" % name)


def payload_form_problem(payload):
    """Why `payload` (bytes) is not Argus canonical JSON, or None if it is."""
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as e:
        return "not UTF-8 (%s)" % e.reason
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        canonical = canonical_json(value)
    except NotCanonical as e:
        return str(e)
    except ValueError as e:
        return "not JSON (%s)" % e
    if canonical != bytes(payload):
        shown = canonical[:60].decode("utf-8", "replace")
        return "canonical form differs (it begins %s)" % shown
    return None


# ---------------------------------------------------------------- frames

def frame_valid_at(data, off, end):
    """§4 frame validity.  Returns (type, len) or None."""
    if end - off < 9:
        return None
    crc, ln, typ = _frame_hdr.unpack_from(data, off)
    if ln < 1 or ln > MAX_FRAME or typ not in (1, 2, 3) or off + 9 + ln > end:
        return None
    if zlib.crc32(data[off + 4: off + 9 + ln]) != crc:
        return None
    return typ, ln


SEAL_FRAME_LEN = 9 + SEAL_LEN
# Length 148 (little-endian) then type 0x02: where a seal frame could start.
_SEAL_SHAPE = _u32.pack(SEAL_LEN) + bytes([T_SEAL])
# §7.2 row 5: signature checks spent on seal-shaped frames after damage.
SEAL_CANDIDATES_MAX = 1024


def judge_tail(data, x, end, sealed_size, log_id, epochs):
    """§7.2: the first invalid frame starts at x.  Returns (kind, detail):
    ("torn", None | (offset, tree_size)) or ("corrupt", reason)."""
    found = None
    checked = 0
    pos = x + 1
    while True:
        i = data.obj.find(_SEAL_SHAPE, pos + 4, end) if isinstance(data, memoryview) else \
            data.find(_SEAL_SHAPE, pos + 4, end)
        if i < 0:
            break
        y = i - 4
        pos = y + 1
        if y + SEAL_FRAME_LEN > end:
            break
        if zlib.crc32(data[y + 4: y + SEAL_FRAME_LEN]) != _u32.unpack_from(data, y)[0]:
            continue
        tree_size, root, head, ts_ns, kid, sig = _seal.unpack_from(data, y + 9)
        ep = epoch_for(epochs, tree_size)
        pk = ep[2]
        if kid != ep[3] or tree_size <= sealed_size:
            continue
        if checked == SEAL_CANDIDATES_MAX:
            return "corrupt", "more than %d seal-shaped frames follow; no single torn commit looks like that" \
                % checked
        checked += 1
        if strict_verify(pk, sig, note_body(log_id, tree_size, root, head, ts_ns, kid)):
            continue
        if found is not None:
            return "corrupt", ("signed seals for tree sizes %d and %d follow at offsets %d and %d, and only "
                               "one commit can be undurable" % (found[1], tree_size, found[0], y))
        found = (y, tree_size)
        e = y + SEAL_FRAME_LEN
        nxt = frame_valid_at(data, e, end)
        if nxt is not None:
            typ, ln = nxt
            if not (typ == T_FOOTER and ln == FOOTER_LEN and e + 9 + ln == end):
                return "corrupt", ("a signed seal for tree size %d follows at offset %d, and another write "
                                   "began after it at offset %d, so it was durable" % (tree_size, y, e))
        pos = e
    return "torn", found


# ---------------------------------------------------------------- verifier

def decode_segz(raw, seg):
    """§12: the original segment bytes of a compressed segment. Every length and offset is
    checked before use; each block must decompress to exactly its declared length."""
    def bad(msg, off):
        raise Failure(CONTENT, "damaged compressed segment: " + msg, seg, off)
    n = len(raw)
    if n < Z_HEADER_LEN:
        bad("truncated header (%d bytes)" % n, 0)
    magic, version, base, ulen, _bsize, crc = struct.unpack_from("<8sIQQII", raw, 0)
    if magic != Z_MAGIC:
        bad("bad header magic", 0)
    if version != Z_VERSION:
        bad("unsupported version %d" % version, 8)
    if zlib.crc32(raw[:32]) != crc:
        bad("header CRC mismatch", 32)
    if not 1 <= ulen <= Z_SEGMENT_MAX:
        bad("uncompressed length %d out of range" % ulen, 20)
    if n < Z_HEADER_LEN + Z_INDEX_ENTRY_LEN + Z_TRAILER_LEN:
        bad("truncated (%d bytes)" % n, n)
    t = n - Z_TRAILER_LEN
    index_off, count, index_crc, tmagic = struct.unpack_from("<QII8s", raw, t)
    if tmagic != Z_TRAILER_MAGIC:
        bad("bad trailer magic", t + 16)
    if count == 0 or index_off < Z_HEADER_LEN or index_off + count * Z_INDEX_ENTRY_LEN != t:
        bad("index of %d blocks at offset %d does not end at the trailer" % (count, index_off), t)
    if zlib.crc32(raw[index_off:t]) != index_crc:
        bad("block index CRC mismatch", t + 12)
    dctx = _zstd.ZstdDecompressor()
    out = bytearray()
    next_c, prev_seq = Z_HEADER_LEN, base
    for i in range(count):
        at = index_off + i * Z_INDEX_ENTRY_LEN
        uoff, coff, clen, blen, first_seq = struct.unpack_from("<QQIIQ", raw, at)
        if uoff != len(out) or coff != next_c or clen == 0 or not 1 <= blen <= Z_BLOCK_MAX \
                or coff + clen > index_off or uoff + blen > ulen \
                or first_seq < prev_seq or (i == 0 and first_seq != base):
            bad("block %d: index entry does not tile the file and the segment" % i, at)
        src = raw[coff:coff + clen]
        try:
            params = _zstd.get_frame_parameters(src)
            # Refuse before allocating: a frame that claims more than its block holds.
            if params.content_size != blen:
                bad("block %d: zstd frame declares %d bytes, index says %d" % (i, params.content_size, blen), coff)
            block = dctx.decompress(src, max_output_size=blen)
        except _zstd.ZstdError as e:
            bad("block %d: zstd: %s" % (i, e), coff)
        if len(block) != blen:
            bad("block %d: decompressed to %d bytes, index says %d" % (i, len(block), blen), coff)
        out += block
        next_c, prev_seq = coff + clen, first_seq
    if len(out) != ulen or next_c != index_off:
        bad("blocks cover %d of %d bytes" % (len(out), ulen), index_off)
    if len(out) >= 36 and out[0:8] == MAGIC and _u64.unpack_from(out, 28)[0] != base:
        bad("base seq %d but the segment inside starts elsewhere" % base, 12)
    return bytes(out)


def file_kind(mode):
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "a file of unknown type"


class Verifier:
    def __init__(self, directory, public_key, checkpoints):
        self.dir = directory
        self.pk = public_key
        self.checkpoints = checkpoints
        self.warnings = []
        self.next_seq = 0
        self.last_hash = ZERO32
        self.range = CompactRange()
        self.sealed_size = 0
        self.log_id = None
        self.key_id = None
        self.epochs = []         # §4.7: (epoch, from_seq, public key, key id, cert seq)
        self.segments = 0
        self.wanted_roots = {}   # tree_size -> (root, head) for checkpoints
        self.check_form = False  # --check-payload-form: warn on non-canonical payloads
        self.not_canonical = 0
        self.zeroed = []         # §4.2.1: (seg, off, seq, payload_hash) in the erased form
        self.redactions = []     # §4.2.1: (by_seq, target_seq, payload_hash, actor, ts_ns, reason)
        self.erased = []         # explained erasures, for the report

    def warn(self, msg):
        self.warnings.append(msg)

    def check_payload_form(self, seg, off, seq, payload):
        """§4.1.1 is for writers: a payload in another form still verifies
        (logs from older builds), so this is only ever a warning."""
        problem = payload_form_problem(payload)
        if problem is None:
            return
        self.not_canonical += 1
        if self.not_canonical <= PAYLOAD_FORM_WARNINGS_MAX:
            self.warn("%s offset %d seq %d: payload is not Argus canonical JSON (SPEC §4.1.1): %s"
                      % (seg, off, seq, problem))

    def explain_erasures(self):
        """§4.2.1: every payload in the erased form needs a later entry.redacted by an
        operator naming its seq and payload hash; the first one without is CONTENT."""
        for seg, off, seq, ph in self.zeroed:
            by = next((r for r in self.redactions if r[1] == seq and r[2] == ph), None)
            if by is None:
                raise Failure(CONTENT, "payload of seq %d is zeroed (the erased form) but no later "
                              "entry.redacted by an operator names seq %d with its payload hash"
                              % (seq, seq), seg, off, seq)
            self.erased.append({"seq": seq, "segment": seg[len("segments/"):], "offset": off,
                                "by_seq": by[0], "actor": by[3], "reason": by[4]})

    def list_segments(self):
        segdir = os.path.join(self.dir, "segments")
        # §2: segments/ must be a directory, not a symbolic link.
        if os.path.islink(segdir):
            raise Failure(STRUCTURE, "segments/ is a symbolic link, not a directory; refusing to follow it",
                          segment="segments/", offset=0)
        try:
            names = sorted(os.listdir(segdir))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise Failure(ERROR, "cannot list %s: %s" % (segdir, e))
        segs = []
        for n in names:
            if n.endswith(".tmp") or not (n.endswith(".seg") or n.endswith(".segz")):
                continue
            # §2: every *.seg and *.segz entry must be a regular file (lstat: a link is a link).
            try:
                st = os.lstat(os.path.join(segdir, n))
            except OSError as e:
                raise Failure(ERROR, "cannot stat segments/%s: %s" % (n, e))
            if not stat.S_ISREG(st.st_mode):
                raise Failure(STRUCTURE, "segment file is %s, not a regular file; refusing to read it"
                              % file_kind(st.st_mode), segment="segments/" + n, offset=0)
            stem = n[:-5] if n.endswith(".segz") else n[:-4]
            if not SEG_NAME.match(stem):
                raise Failure(STRUCTURE, "segment file name is not 20 decimal digits + .seg or .segz",
                              segment="segments/" + n, offset=0)
            # Sorts the plain form before the compressed one of the same base.
            segs.append((int(stem), n.endswith(".segz"), n))
        segs.sort()
        out = []
        for num, _, n in segs:
            # §12: both forms of one base (an interrupted compaction): the plain one is the segment.
            if out and out[-1][0] == num:
                self.warn("segments/%s duplicates segments/%s (an interrupted compaction): the plain file is used"
                          % (n, out[-1][1]))
                continue
            out.append((num, n))
        return out

    def run(self):
        segs = self.list_segments()
        if not segs:
            raise Failure(STRUCTURE, "log has no segments")
        for cp in self.checkpoints:
            self.wanted_roots[cp.tree_size] = None
        if 0 in self.wanted_roots:
            self.wanted_roots[0] = (EMPTY_ROOT, ZERO32)
        last = len(segs) - 1
        for i, (num, name) in enumerate(segs):
            self.verify_segment(num, name, i == 0, i == last)
            self.segments += 1
        if self.not_canonical > PAYLOAD_FORM_WARNINGS_MAX:
            self.warn("%d payloads in all are not Argus canonical JSON (SPEC §4.1.1); the first %d are listed"
                      % (self.not_canonical, PAYLOAD_FORM_WARNINGS_MAX))
        self.explain_erasures()
        if self.next_seq > self.sealed_size:
            self.warn("%d unsealed entries (seq %d..%d were never acknowledged)" % (
                self.next_seq - self.sealed_size, self.sealed_size, self.next_seq - 1))
        for cp in self.checkpoints:
            self.check_checkpoint(cp)

    # -- §7 step 1
    def verify_header(self, data, num, seg, first):
        end = len(data)
        if end < 8 or data[0:8] != MAGIC:
            raise Failure(STRUCTURE, "bad magic", seg, 0)
        if end < 12:
            raise Failure(STRUCTURE, "header truncated before version", seg, 0)
        version = _u32.unpack_from(data, 8)[0]
        if version != VERSION:
            raise Failure(STRUCTURE, "unsupported version %d" % version, seg, 0)
        if end < 69:
            raise Failure(STRUCTURE, "header truncated (%d bytes)" % end, seg, 0)
        n = data[68]
        hlen = 73 + 32 * n
        if end < hlen:
            raise Failure(STRUCTURE, "header truncated (%d bytes, header needs %d)" % (end, hlen), seg, 0)
        if zlib.crc32(data[0: 69 + 32 * n]) != _u32.unpack_from(data, 69 + 32 * n)[0]:
            raise Failure(CONTENT, "header CRC mismatch", seg, 0)
        log_id = bytes(data[12:28])
        base_seq = _u64.unpack_from(data, 28)[0]
        prev_hash = bytes(data[36:68])
        frontier = [bytes(data[69 + 32 * j: 101 + 32 * j]) for j in range(n)]
        if first:
            self.log_id = log_id
            self.key_id = key_id_of(origin_of(log_id), self.pk)
            self.epochs = [(0, 0, self.pk, self.key_id, None)]
        elif log_id != self.log_id:
            raise Failure(STRUCTURE, "foreign segment: log_id %s, log is %s" % (
                log_id.hex(), self.log_id.hex()), seg, 0, base_seq)
        if base_seq != num:
            raise Failure(STRUCTURE, "header base_seq %d does not match file name (renamed or reordered segment)"
                          % base_seq, seg, 0, base_seq)
        if base_seq != self.next_seq:
            raise Failure(STRUCTURE, "base_seq %d but next seq is %d (missing or reordered segment, seq gap)"
                          % (base_seq, self.next_seq), seg, 0, base_seq)
        if prev_hash != self.last_hash:
            raise Failure(STRUCTURE, "header prev_hash does not match the previous entry hash (broken link)",
                          seg, 0, base_seq)
        if n != bin(base_seq).count("1") or frontier != self.range.hashes:
            raise Failure(STRUCTURE, "header frontier does not match the Merkle compact range (broken link)",
                          seg, 0, base_seq)
        return hlen, base_seq, prev_hash

    def verify_segment(self, num, name, first, last):
        seg = "segments/" + name
        path = os.path.join(self.dir, "segments", name)
        try:
            # Never follow a link or block on a FIFO swapped in after the listing.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                if not stat.S_ISREG(mode):
                    raise Failure(STRUCTURE, "segment file is %s, not a regular file; refusing to read it"
                                  % file_kind(mode), seg, 0)
                raw = f.read()
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Failure(STRUCTURE, "segment file is a symbolic link, not a regular file; "
                              "refusing to read it", seg, 0)
            raise Failure(ERROR, "cannot read %s: %s" % (path, e), seg)
        compressed = name.endswith(".segz")
        if compressed:
            raw = decode_segz(raw, seg)
        data = memoryview(raw)
        end = len(data)
        off, base_seq, header_prev = self.verify_header(data, num, seg, first)

        entry_count = 0
        prev_type = None
        seg_last_hash = header_prev
        footer_seen = None   # offset of the footer once seen
        crc32 = zlib.crc32
        unpack_hdr = _frame_hdr.unpack_from
        while off < end:
            # --- §4 frame validity (inlined for speed)
            valid = False
            if end - off >= 9:
                crc, ln, typ = unpack_hdr(data, off)
                if 1 <= ln <= MAX_FRAME and typ in (1, 2, 3) and off + 9 + ln <= end \
                        and crc32(data[off + 4: off + 9 + ln]) == crc:
                    valid = True
            if not valid:
                # §7 step 3 and the decision table of §7.2
                if not last:
                    raise Failure(CONTENT, "invalid frame in a segment that is not the last (a sealed segment "
                                  "is never torn)", seg, off)
                kind, detail = judge_tail(data, off, end, self.sealed_size, self.log_id, self.epochs)
                if kind == "corrupt":
                    raise Failure(CONTENT, "invalid frame; this is corruption of committed data, not a torn "
                                  "tail: %s" % detail, seg, off)
                msg = ("torn tail: %s bytes [%d, %d) (%d bytes) are the remains of an unacknowledged write"
                       % (seg, off, end, end - off))
                if detail is not None:
                    msg += ("; they hold a validly signed seal for tree size %d at offset %d (compare with a "
                            "trusted checkpoint)" % (detail[1], detail[0]))
                self.warn(msg)
                return
            if footer_seen is not None:
                raise Failure(STRUCTURE, "footer at offset %d is not the last frame of the file (a valid "
                              "frame follows it)" % footer_seen, seg, off)
            body = data[off + 9: off + 9 + ln]
            if typ == T_ENTRY:
                try:
                    seq, prev, payload_hash, R, p, fields = decode_entry(body)
                except ValueError as e:
                    raise Failure(CONTENT, "bad entry: %s" % e, seg, off)
                if seq != self.next_seq:
                    raise Failure(STRUCTURE, "entry seq %d, expected %d" % (seq, self.next_seq), seg, off, seq)
                if prev != self.last_hash:
                    raise Failure(CONTENT, "chain broken: prev does not equal the hash of entry %d" % (seq - 1)
                                  if seq else "chain broken: prev of seq 0 is not zero", seg, off, seq)
                if payload_hash != _blake3.blake3(fields[5], derive_key_context=CTX_PAYLOAD).digest():
                    # §4.2.1: the erased form is judged once the whole log has walked,
                    # since the redaction that explains it comes later.
                    if not is_zeroed(fields[5]):
                        raise Failure(CONTENT, "payload hash mismatch", seg, off, seq)
                    self.zeroed.append((seg, off, seq, payload_hash))
                else:
                    red = redaction_of(seq, fields)
                    if red is not None:
                        self.redactions.append(red)
                    if bytes(fields[0]) == ROTATED_KIND:
                        try:
                            self.epochs.append(rotation_of(seq, fields, self.log_id, self.epochs[-1]))
                        except ValueError as e:
                            raise Failure(SIGNATURE, str(e), seg, off, seq)
                    if self.check_form:
                        self.check_payload_form(seg, off, seq, fields[5])
                e = entry_hash(body, R, p, fields)
                self.range.push(e)
                self.last_hash = e
                self.next_seq += 1
                seg_last_hash = e
                entry_count += 1
                if self.next_seq in self.wanted_roots:
                    self.wanted_roots[self.next_seq] = (self.range.root(), e)
            elif typ == T_SEAL:
                if ln != SEAL_LEN:
                    raise Failure(CONTENT, "seal body is %d bytes, want 148" % ln, seg, off)
                tree_size, root, head, ts_ns, key_id, sig = _seal.unpack_from(body, 0)
                if tree_size != self.next_seq:
                    raise Failure(STRUCTURE, "seal tree_size %d, but %d entries precede it"
                                  % (tree_size, self.next_seq), seg, off)
                if root != self.range.root():
                    raise Failure(CONTENT, "seal root does not match the Merkle root of %d entries" % tree_size,
                                  seg, off)
                if head != self.last_hash:
                    raise Failure(CONTENT, "seal head does not match the hash of the last entry", seg, off)
                # §4.7: signed by the key of the epoch holding seq tree_size - 1.
                ep = epoch_for(self.epochs, tree_size)
                if key_id != ep[3]:
                    raise Failure(SIGNATURE, "seal for tree size %d: key_id %s is not the key id %s of epoch %d"
                                  % (tree_size, key_id.hex(), ep[3].hex(), ep[0]), seg, off,
                                  tree_size - 1 if tree_size else None)
                msg = note_body(self.log_id, tree_size, root, head, ts_ns, key_id)
                bad = strict_verify(ep[2], sig, msg)
                if bad:
                    raise Failure(SIGNATURE, "seal (epoch %d's key): %s" % (ep[0], bad), seg, off,
                                  tree_size - 1 if tree_size else None)
                self.sealed_size = tree_size
            else:  # footer
                if prev_type != T_SEAL:
                    raise Failure(STRUCTURE, "footer does not directly follow a seal", seg, off)
                if ln != FOOTER_LEN:
                    raise Failure(STRUCTURE, "footer body is %d bytes, want 48" % ln, seg, off)
                f_base, f_count, f_last = _footer.unpack_from(body, 0)
                if f_base != base_seq:
                    raise Failure(STRUCTURE, "footer base_seq %d != header base_seq %d" % (f_base, base_seq),
                                  seg, off)
                if f_count != entry_count:
                    raise Failure(STRUCTURE, "footer entry_count %d, segment has %d entries"
                                  % (f_count, entry_count), seg, off)
                if f_last != seg_last_hash:
                    raise Failure(STRUCTURE, "footer last_hash does not match the segment's last entry", seg, off)
                # Bytes after the footer: a valid frame there is STRUCTURE (checked at the
                # top of the loop); anything else goes through §7 step 3 like any frame.
                footer_seen = off
            prev_type = typ
            off += 9 + ln
        # reached end of file
        if not last and footer_seen is None:
            raise Failure(STRUCTURE, "segment is not the last but does not end with a footer", seg, end)
        if compressed and footer_seen is None:
            raise Failure(STRUCTURE, "compressed segment does not end in a footer: only sealed segments "
                          "are compressed (§12)", seg, end)

    def check_checkpoint(self, cp):
        origin = origin_of(self.log_id)
        ep = epoch_for(self.epochs, cp.tree_size)   # §4.7
        key_id, pk = ep[3], ep[2]
        if cp.origin != origin:
            raise Failure(SIGNATURE, "checkpoint %s names %r, this log is %r" % (cp.path, cp.origin, origin))
        # C2SP: lines by other keys are ignored; every line by this key
        # (same name and key id) must verify, over the note text as given.
        mine = [(line, sig) for line, name, kid, sig in cp.sigs if name == origin and kid == key_id]
        if not mine:
            raise Failure(SIGNATURE, "checkpoint %s: no signature line for %s with key id %s"
                          % (cp.path, origin, key_id.hex()))
        for line, sig in mine:
            bad = strict_verify(pk, sig, cp.body)
            if bad is not None:
                raise Failure(SIGNATURE, "checkpoint %s: line %d: %s" % (cp.path, line, bad))
        if cp.key_id_line != key_id:
            raise Failure(SIGNATURE, "checkpoint %s: key line %s is not the key id %s"
                          % (cp.path, cp.key_id_line.hex(), key_id.hex()))
        if cp.tree_size > self.sealed_size:
            raise Failure(TRUNCATION, "checkpoint %s has tree_size %d but the log is sealed only to %d "
                          "(log was cut back)" % (cp.path, cp.tree_size, self.sealed_size), seq=cp.tree_size)
        root, head = self.wanted_roots[cp.tree_size]
        if root != cp.root:
            raise Failure(TRUNCATION, "checkpoint %s: Merkle root of the first %d entries differs "
                          "(rolled back or forked history)" % (cp.path, cp.tree_size), seq=cp.tree_size)
        if head != cp.head:
            raise Failure(TRUNCATION, "checkpoint %s: chain head of the first %d entries differs"
                          % (cp.path, cp.tree_size), seq=cp.tree_size)


# ---------------------------------------------------------------- proofs (§11)
#
# Written from RFC 9162 §2.1.3 and §2.1.4 by their recursive definitions of
# PATH and PROOF: a verifier walks the same split (k = largest power of two
# below n) from the top and consumes proof nodes from the end.

def _split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _node(l, r):
    return H(b"\x01" + l + r)


def _leaf(e):
    return H(b"\x00" + e)


def inclusion_root(m, n, leaf_hash, path):
    """The root that PATH(m, D[n]) = `path` leads to from `leaf_hash`, or None
    if the path does not have the shape PATH(m, D[n]) has."""
    if not 0 <= m < n:
        return None

    def up(m, n, i):
        # i: how many nodes of `path` (from its end) belong above this subtree
        if n == 1:
            return leaf_hash if i == len(path) else None
        if i >= len(path):
            return None
        k = _split(n)
        sib = path[len(path) - 1 - i]
        if m < k:
            sub = up(m, k, i + 1)
            return None if sub is None else _node(sub, sib)
        sub = up(m - k, n - k, i + 1)
        return None if sub is None else _node(sib, sub)

    return up(m, n, 0)


def consistency_ok(m, n, old_root, new_root, proof):
    """True when `proof` is PROOF(m, D[n]) for trees with these roots."""
    if m > n:
        return False
    if m == n:
        return not proof and old_root == new_root
    if m == 0:
        return not proof
    pos = [len(proof)]   # proof is consumed from its end

    def take():
        if pos[0] == 0:
            raise ValueError("proof too short")
        pos[0] -= 1
        return proof[pos[0]]

    def sub(m, n, b):
        # -> (hash of the old tree's part here, hash of the new subtree)
        if m == n:
            if b:
                return old_root, old_root
            x = take()
            return x, x
        k = _split(n)
        r = take()
        if m <= k:
            o, h = sub(m, k, b)
            return o, _node(h, r)
        o, h = sub(m - k, n - k, False)
        return _node(r, o), _node(r, h)

    try:
        o, h = sub(m, n, True)
    except ValueError:
        return False
    return pos[0] == 0 and o == old_root and h == new_root


_RFC3339 = re.compile(r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z\Z")


def _ts_ns(s):
    import calendar
    m = _RFC3339.match(s) if isinstance(s, str) else None
    if not m:
        return None
    y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh <= 23 and mi <= 59 and ss <= 60):
        return None
    frac = (m.group(7) or "").ljust(9, "0")
    secs = calendar.timegm((y, mo, d, hh, mi, ss, 0, 0, 0))
    return secs * 1_000_000_000 + int(frac or "0")


class BadBundle(Exception):
    pass


def _get(obj, name, label=None):
    label = label or name
    if not isinstance(obj, dict) or name not in obj:
        raise BadBundle("%s: missing" % label)
    return obj[name]


def _uint(obj, name, label=None):
    v = _get(obj, name, label)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= U64_MAX:
        raise BadBundle("%s: not an unsigned integer" % (label or name))
    return v


def _h32(v, label):
    if not isinstance(v, str) or not _HEX64.match(v):
        raise BadBundle("%s: not 64 lowercase hex digits" % label)
    return bytes.fromhex(v)


def _hashes(obj, name):
    v = _get(obj, name)
    if not isinstance(v, list):
        raise BadBundle("%s: not an array" % name)
    return [_h32(x, "%s[%d]" % (name, i)) for i, x in enumerate(v)]


def _cp(obj, name):
    v = _get(obj, name)
    if not isinstance(v, str):
        raise BadBundle("%s: not a string" % name)
    try:
        return parse_checkpoint_bytes(v.encode("utf-8"), name)
    except Usage as e:
        raise BadBundle(str(e))


def _entry_hash(e):
    """§4.2 from the entry's JSON fields; the payload hash is that of the
    payload's canonical JSON (§4.1.1)."""
    if not isinstance(e, dict):
        raise BadBundle("entry: not an object")
    seq = _uint(e, "seq", "entry.seq")
    ts = _ts_ns(_get(e, "ts", "entry.ts"))
    if ts is None or ts > U64_MAX:
        raise BadBundle("entry.ts: not RFC 3339 UTC time")
    parent = e.get("parent")
    if parent is None:
        parent = NO_PARENT
    elif isinstance(parent, bool) or not isinstance(parent, int) or not 0 <= parent < NO_PARENT:
        raise BadBundle("entry.parent: not an unsigned integer or null")
    prev = _h32(_get(e, "prev", "entry.prev"), "entry.prev")
    texts = []
    for name, required in (("kind", True), ("job_id", False), ("step_id", False),
                           ("agent", False), ("actor", True)):
        v = e.get(name)
        if v is None and not required:
            v = ""
        if not isinstance(v, str):
            raise BadBundle("entry.%s: not a string" % name)
        texts.append(v.encode("utf-8"))
    pv = _get(e, "payload", "entry.payload")
    if "payload_hash" in e:
        # A payload erased by a redaction is withheld: null, with its hash.
        if pv is not None:
            raise BadBundle("entry.payload_hash: given with a payload")
        ph = _h32(e["payload_hash"], "entry.payload_hash")
    else:
        try:
            ph = DK(CTX_PAYLOAD, canonical_json(pv))
        except NotCanonical as x:
            raise BadBundle("entry.payload: %s" % x)
    m = struct.pack("<QQQ", seq, ts, parent) + prev + ph
    for t in texts:
        m += struct.pack("<I", len(t)) + t
    return DK(CTX_ENTRY, m)


def _signed(cp, log_id, pk, name):
    """None, or a Failure(SIGNATURE) saying why `cp` is not log_id's key's."""
    origin = origin_of(log_id)
    kid = key_id_of(origin, pk)
    if cp.origin != origin:
        return Failure(SIGNATURE, "%s names %s, the bundle's log is %s" % (name, cp.origin, origin))
    mine = [(line, sig) for line, nm, k, sig in cp.sigs if nm == origin and k == kid]
    if not mine:
        return Failure(SIGNATURE, "%s: no signature line for %s with key id %s" % (name, origin, kid.hex()))
    for line, sig in mine:
        bad = strict_verify(pk, sig, cp.body)
        if bad is not None:
            return Failure(SIGNATURE, "%s: line %d: %s" % (name, line, bad))
    if cp.key_id_line != kid:
        return Failure(SIGNATURE, "%s: key line names %s, the key's id is %s" % (name, cp.key_id_line.hex(), kid.hex()))
    return None


def _altered_item(item, size, root):
    """None, or why one entry's inclusion proof (seq, entry, entry_hash,
    leaf_hash, audit_path) does not hold in a tree of `size` with `root`."""
    seq = _uint(item, "seq")
    entry = _get(item, "entry")
    eh = _h32(_get(item, "entry_hash"), "entry_hash")
    lh = _h32(_get(item, "leaf_hash"), "leaf_hash")
    path = _hashes(item, "audit_path")
    recomputed = _entry_hash(entry)
    stated = _h32(_get(entry, "hash", "entry.hash"), "entry.hash")
    if entry.get("seq") != seq:
        return "entry.seq is not the bundle's seq %d" % seq
    if recomputed != eh or stated != eh:
        return ("seq %d: entry hash from the entry's fields is %s, the bundle says %s"
                % (seq, recomputed.hex(), eh.hex()))
    if _leaf(eh) != lh:
        return "seq %d: leaf_hash is not the leaf hash of entry_hash" % seq
    if inclusion_root(seq, size, lh, path) != root:
        return "audit_path does not lead from leaf %d to the checkpoint's root" % seq
    return None


def _follow_chain(bundle, log_id, pk, cp):
    """§11 key_chain: (epochs, None) with epochs certified from pk as epoch
    0's key, or (None, Failure) naming the first chain item that fails; with
    no key_chain, ([], None): the checkpoint must then be signed by pk."""
    if "key_chain" not in bundle:
        return [], None
    items = bundle["key_chain"]
    if not isinstance(items, list):
        raise BadBundle("key_chain: not an array")
    checked = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise BadBundle("not an object")
            seq = _uint(item, "seq")
            entry = _get(item, "entry")
            altered = _altered_item(item, cp.tree_size, cp.root)
            pv = _get(entry, "payload", "entry.payload")
            try:
                payload = canonical_json(pv)
            except NotCanonical as x:
                raise BadBundle("entry.payload: %s" % x)
            fields = [entry.get(n) or "" for n in ("kind", "job_id", "step_id", "agent", "actor")]
            fields = [f.encode("utf-8") for f in fields] + [payload]
            checked.append((seq, fields, altered))
        except BadBundle as e:
            raise BadBundle("key_chain[%d].%s" % (i, e))
    epochs = [(0, 0, pk, key_id_of(origin_of(log_id), pk), None)]
    for i, (seq, fields, altered) in enumerate(checked):
        if altered:
            return None, Failure(CONTENT, "key_chain[%d] (seq %d) is not in the checkpoint's tree: %s" % (i, seq, altered))
        if fields[0] != ROTATED_KIND:
            return None, Failure(SIGNATURE, "key_chain[%d] (seq %d) is a %r entry, not a key.rotated certificate"
                                 % (i, seq, fields[0].decode("utf-8", "replace")))
        try:
            epochs.append(rotation_of(seq, fields, log_id, epochs[-1]))
        except ValueError as e:
            return None, Failure(SIGNATURE, "key_chain[%d]: %s" % (i, e))
    return epochs, None


def _signed_in_epoch(cp, log_id, pk, epochs, name):
    """§11: with a chain, `cp` must be signed by the key of the epoch that
    holds seq tree_size - 1 (§4.7); without one, by pk itself."""
    if not epochs:
        return _signed(cp, log_id, pk, name)
    ep = epoch_for(epochs, cp.tree_size)
    bad = _signed(cp, log_id, ep[2], name)
    if bad:
        return Failure(SIGNATURE, "%s: seq %d lies in epoch %d (key id %s), whose key must sign it: %s"
                       % (name, max(cp.tree_size - 1, 0), ep[0], ep[3].hex(), bad.message))
    return None


def verify_proof(bundle, pk):
    """Judge a proof bundle (parsed JSON) against the pinned key (32 bytes).
    Returns Failure(OK | USAGE | CONTENT | SIGNATURE, message)."""
    try:
        if not isinstance(bundle, dict):
            raise BadBundle("bundle: not a JSON object")
        if _uint(bundle, "version") != 1:
            raise BadBundle("version: not 1")
        lid = _get(bundle, "log_id")
        if not isinstance(lid, str) or not _HEX32.match(lid):
            raise BadBundle("log_id: not 32 lowercase hex digits")
        log_id = bytes.fromhex(lid)
        kinds = [k for k in ("seq", "old_size", "entries") if k in bundle]
        if kinds == ["seq"]:
            size = _uint(bundle, "tree_size")
            cp = _cp(bundle, "checkpoint")
            altered = _altered_item(bundle, size, cp.root)
            epochs, bad = _follow_chain(bundle, log_id, pk, cp)
            bad = bad or _signed_in_epoch(cp, log_id, pk, epochs, "checkpoint")
            if bad:
                return bad
            if cp.tree_size != size:
                return Failure(CONTENT, "tree_size %d, the checkpoint is of size %d" % (size, cp.tree_size))
            if altered:
                return Failure(CONTENT, altered)
            return Failure(OK, "entry seq %d is in log %s of size %d" % (bundle["seq"], lid, size))
        if kinds == ["entries"]:
            job = _get(bundle, "job_id")
            if not isinstance(job, str):
                raise BadBundle("job_id: not a string")
            size = _uint(bundle, "tree_size")
            cp = _cp(bundle, "checkpoint")
            items = _get(bundle, "entries")
            if not isinstance(items, list):
                raise BadBundle("entries: not an array")
            if not items:
                raise BadBundle("entries: empty")
            verdicts, last, own = [], None, 0
            for i, item in enumerate(items):
                try:
                    seq = _uint(item, "seq") if isinstance(item, dict) else None
                    if seq is None:
                        raise BadBundle("not an object")
                    if last is not None and seq <= last:
                        raise BadBundle("seq: not above the seq before it")
                    last = seq
                    entry = _get(item, "entry")
                    if isinstance(entry, dict) and entry.get("job_id") == job:
                        own += 1
                    verdicts.append(_altered_item(item, size, cp.root))
                except BadBundle as e:
                    raise BadBundle("entries[%d].%s" % (i, e))
            epochs, bad = _follow_chain(bundle, log_id, pk, cp)
            bad = bad or _signed_in_epoch(cp, log_id, pk, epochs, "checkpoint")
            if bad:
                return bad
            if cp.tree_size != size:
                return Failure(CONTENT, "tree_size %d, the checkpoint is of size %d" % (size, cp.tree_size))
            for v in verdicts:
                if v:
                    return Failure(CONTENT, v)
            return Failure(OK, "%d entries (%d of job %s) are in log %s of size %d"
                           % (len(items), own, json.dumps(job), lid, size))
        if kinds == ["old_size"]:
            m = _uint(bundle, "old_size")
            o_root = _h32(_get(bundle, "old_root"), "old_root")
            n = _uint(bundle, "new_size")
            n_root = _h32(_get(bundle, "new_root"), "new_root")
            proof = _hashes(bundle, "proof")
            old = _cp(bundle, "old_checkpoint")
            new = _cp(bundle, "new_checkpoint")
            # The chain is proved in the new tree; the consistency proof puts
            # its entries below old_size in the old tree too (§11).
            epochs, bad = _follow_chain(bundle, log_id, pk, new)
            if bad:
                return bad
            for cp, name in ((old, "old_checkpoint"), (new, "new_checkpoint")):
                bad = _signed_in_epoch(cp, log_id, pk, epochs, name)
                if bad:
                    return bad
            if (old.tree_size, old.root) != (m, o_root):
                return Failure(CONTENT, "old_size/old_root are not the old checkpoint's")
            if (new.tree_size, new.root) != (n, n_root):
                return Failure(CONTENT, "new_size/new_root are not the new checkpoint's")
            if not consistency_ok(m, n, o_root, n_root, proof):
                return Failure(CONTENT, "proof does not show the tree of %d is a prefix of the tree of %d" % (m, n))
            return Failure(OK, "log %s of size %d extends its checkpoint of size %d" % (lid, n, m))
        raise BadBundle("bundle: not exactly one of an inclusion (seq), a consistency (old_size) or a job (entries) bundle")
    except BadBundle as e:
        return Failure(USAGE, "malformed bundle: %s" % e)


def proof_main(argv):
    ap = argparse.ArgumentParser(prog="verify.py proof", description="Verify an Argus proof bundle (SPEC §11).")
    ap.add_argument("bundle")
    ap.add_argument("--key", required=True, help="pinned Ed25519 public key, 64 hex digits")
    args = ap.parse_args(argv)
    if not re.match(r"^[0-9a-fA-F]{64}$", args.key):
        print("FAIL usage: --key must be 64 hex digits")
        return USAGE
    try:
        with open(args.bundle, "rb") as f:
            bundle = json.loads(f.read())
    except OSError as e:
        print("FAIL error: %s" % e)
        return ERROR
    except ValueError as e:
        print("FAIL usage: malformed bundle: not JSON: %s" % e)
        return USAGE
    r = verify_proof(bundle, bytes.fromhex(args.key))
    print(("OK " if r.code == OK else "FAIL %s: " % CLASS_NAMES[r.code]) + r.message)
    return r.code


# ---------------------------------------------------------------- CLI

def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["proof"]:
        return proof_main(argv[1:])
    ap = argparse.ArgumentParser(prog="verify.py", description="Verify an Argus log (SPEC §7).")
    ap.add_argument("dir")
    ap.add_argument("--key", help="pinned Ed25519 public key, 64 hex digits")
    ap.add_argument("--checkpoint", action="append", default=[], help="trusted checkpoint file (repeatable)")
    ap.add_argument("-o", "--output", choices=("text", "json"), default="text")
    ap.add_argument("--check-payload-form", action="store_true",
                    help="warn (exit code unchanged) about payloads not in Argus canonical JSON (SPEC §4.1.1)")
    args = ap.parse_args(argv)

    warnings = []
    v = None
    try:
        if not os.path.isdir(args.dir):
            raise Usage("%s is not a directory" % args.dir)
        meta_path = os.path.join(args.dir, "argus.json")
        if not os.path.isdir(os.path.join(args.dir, "segments")) and not os.path.exists(meta_path):
            raise Usage("%s is not a log directory (no segments/ and no argus.json)" % args.dir)
        if args.key is not None:
            if not re.match(r"^[0-9a-fA-F]{64}$", args.key):
                raise Usage("--key must be 64 hex digits")
            pk = bytes.fromhex(args.key)
        else:
            try:
                with open(meta_path, "rb") as f:
                    meta = json.loads(f.read())
            except FileNotFoundError:
                raise Usage("no --key given and %s does not exist" % meta_path)
            except OSError as e:
                raise Failure(ERROR, "cannot read %s: %s" % (meta_path, e))
            except ValueError as e:
                raise Usage("no --key given and %s is not valid JSON: %s" % (meta_path, e))
            k = meta.get("public_key") if isinstance(meta, dict) else None
            if not isinstance(k, str) or not re.match(r"^[0-9a-fA-F]{64}$", k):
                raise Usage("no --key given and argus.json has no valid public_key")
            pk = bytes.fromhex(k)
            warnings.append("public key taken from argus.json, not pinned: whoever can rewrite the log "
                            "can rewrite that file too (use --key)")
        cps = [parse_checkpoint(p) for p in args.checkpoint]
        v = Verifier(args.dir, pk, cps)
        v.check_form = args.check_payload_form
        v.run()
        warnings.extend(v.warnings)
        result = Failure(OK, "intact: %d entries, sealed_size %d, %d segments"
                         % (v.next_seq, v.sealed_size, v.segments))
    except Usage as e:
        result = Failure(USAGE, str(e))
    except Failure as f:
        result = f
        if v is not None:
            warnings.extend(v.warnings)
    except OSError as e:
        result = Failure(ERROR, str(e))

    code = result.code
    cls = CLASS_NAMES[code]
    entries = v.next_seq if v else 0
    sealed = v.sealed_size if v else 0
    nsegs = v.segments if v else 0
    if args.output == "json":
        print(json.dumps({
            "status": "ok" if code == OK else "fail",
            "code": code,
            "class": cls,
            "segment": result.segment,
            "offset": result.offset,
            "seq": result.seq,
            "message": result.message,
            "warnings": warnings,
            "entries": entries,
            "sealed_size": sealed,
            "segments": nsegs,
            "erased": v.erased if v else [],
        }))
    else:
        for w in warnings:
            sys.stderr.write("warning: %s\n" % w)
        if code == OK:
            print("OK " + result.message)
            for e in v.erased:
                print("erased: seq %d by entry.redacted at seq %d (%s, reason %s)"
                      % (e["seq"], e["by_seq"], e["actor"], json.dumps(e["reason"], ensure_ascii=False)))
        elif code in (ERROR, USAGE):
            print("FAIL %s: %s" % (cls, result.message))
        else:
            where = []
            if result.segment is not None:
                where.append(result.segment)
            if result.offset is not None:
                where.append("offset %d" % result.offset)
            if result.seq is not None:
                where.append("seq %d" % result.seq)
            print("FAIL %s: %s%s" % (cls, " ".join(where) + ": " if where else "", result.message))
    return code


if __name__ == "__main__":
    sys.exit(main())
