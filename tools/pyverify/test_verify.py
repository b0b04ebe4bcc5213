"""Tests for tools/pyverify/verify.py.

Run from the repository root:  python3 -m unittest tools/pyverify/test_verify.py

A minimal log writer is implemented here, independently of verify.py, from
log-format/SPEC.md.  verify.py is always run as a subprocess.
"""

import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import blake3
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY = os.path.join(HERE, "verify.py")


# ------------------------------------------------------------ minimal writer

def H(b):
    return blake3.blake3(b).digest()


def DK(ctx, b):
    return blake3.blake3(b, derive_key_context=ctx).digest()


def leaf(e):
    return H(b"\x00" + e)


def node(l, r):
    return H(b"\x01" + l + r)


class Frontier:
    def __init__(self):
        self.n = 0
        self.h = []

    def push(self, e):
        h, s = leaf(e), self.n
        while s & 1:
            h = node(self.h.pop(), h)
            s >>= 1
        self.h.append(h)
        self.n += 1

    def root(self):
        if not self.h:
            return H(b"")
        r = self.h[-1]
        for x in reversed(self.h[:-1]):
            r = node(x, r)
        return r


def frame(typ, body):
    lt = struct.pack("<IB", len(body), typ) + body
    return struct.pack("<I", zlib.crc32(lt)) + lt


def entry_body(seq, ts, parent, prev, kind, job, step, agent, actor, payload):
    fields = [kind, job, step, agent, actor, payload]
    R = sum(len(f) for f in fields)
    root = struct.pack("<QQQ", seq, ts, parent) + prev + DK("argus.log v1 payload", payload)
    pos = 0
    for k, f in enumerate(fields):
        root += struct.pack("<iI", pos - (R + 88 + 8 * k), len(f))
        pos += len(f)
    assert len(root) == 136
    M = root[:88] + b"".join(struct.pack("<I", len(f)) + f for f in fields[:5])
    return b"".join(fields) + root, DK("argus.log v1 entry", M)


class Writer:
    def __init__(self, d, sk=None, log_id=None):
        self.dir = d
        self.sk = sk or Ed25519PrivateKey.generate()
        self.pk = self.sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.log_id = log_id or os.urandom(16)
        self.origin = "argus.log/" + self.log_id.hex()
        self.key_id = hashlib.sha256(self.origin.encode() + b"\n\x01" + self.pk).digest()[:4]
        self.seq = 0
        self.last = bytes(32)
        self.fr = Frontier()
        self.pending = b""
        self.seg_entries = 0
        self.seg_base = 0
        self.last_note = None
        os.makedirs(os.path.join(d, "segments"), exist_ok=True)
        with open(os.path.join(d, "argus.json"), "w") as f:
            json.dump({"log_id": self.log_id.hex(), "public_key": self.pk.hex()}, f)
        self._new_segment()

    def seg_path(self, base=None):
        return os.path.join(self.dir, "segments", "%020d.seg" % (self.seg_base if base is None else base))

    def _new_segment(self):
        self.seg_base = self.seq
        self.seg_entries = 0
        self.seg_prev = self.last
        h = (b"ARGUSSEG" + struct.pack("<I", 1) + self.log_id + struct.pack("<Q", self.seq) + self.last
             + bytes([len(self.fr.h)]) + b"".join(self.fr.h))
        h += struct.pack("<I", zlib.crc32(h))
        with open(self.seg_path(), "wb") as f:
            f.write(h)

    def _write(self, b):
        with open(self.seg_path(), "ab") as f:
            f.write(b)

    def append(self, kind=b"tool.call", payload=b'{"x":1}', job=b"j1", actor=b"tester", parent=None):
        body, e = entry_body(self.seq, 1700000000000000000 + self.seq, 0xFFFFFFFFFFFFFFFF if parent is None
                             else parent, self.last, kind, job, b"", b"", actor, payload)
        self.pending += frame(1, body)
        self.fr.push(e)
        self.last = e
        self.seq += 1
        self.seg_entries += 1

    def seal_body(self, sig_override=None):
        ts = 1700000000999999999
        root = self.fr.root()
        note = ("%s\n%d\n%s\nchain %s\ntime %d key %s\n" % (
            self.origin, self.seq, base64.b64encode(root).decode(), self.last.hex(), ts, self.key_id.hex())).encode()
        sig = self.sk.sign(note) if sig_override is None else sig_override
        self.last_note = (note, sig)
        return struct.pack("<Q", self.seq) + root + self.last + struct.pack("<Q", ts) + self.key_id + sig

    def commit(self):
        self._write(self.pending + frame(2, self.seal_body()))
        self.pending = b""

    def flush_unsealed(self):
        self._write(self.pending)
        self.pending = b""

    def roll(self):
        self._write(frame(3, struct.pack("<QQ", self.seg_base, self.seg_entries) + self.last))
        self._new_segment()

    def checkpoint(self):
        note, sig = self.last_note
        return note.decode() + "\n\u2014 %s %s\n" % (self.origin, base64.b64encode(self.key_id + sig).decode())


def build(d, segments=3, commits=2, per_commit=3, **kw):
    w = Writer(d, **kw)
    for s in range(segments):
        for c in range(commits):
            for i in range(per_commit):
                w.append(payload=json.dumps({"s": s, "c": c, "i": i}).encode(),
                         parent=(w.seq - 1 if w.seq else None))
            w.commit()
        if s != segments - 1:
            w.roll()
    return w


def run(d, *extra, key=None):
    cmd = [sys.executable, VERIFY, d, "-o", "json"] + list(extra)
    if key is not None:
        cmd += ["--key", key]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = json.loads(p.stdout)
    assert out["code"] == p.returncode, (out, p.returncode)
    return p.returncode, out


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def wr(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def frames_of(path):
    """(offset, type, len) for each frame of a segment written by Writer."""
    data = rd(path)
    n = data[68]
    off = 73 + 32 * n
    res = []
    while off < len(data):
        ln, typ = struct.unpack_from("<IB", data, off + 4)
        res.append((off, typ, ln))
        off += 9 + ln
    return res


def patch(path, off, new):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(new)


def flip(path, off):
    # Inverts a byte: setting it to a fixed value changes nothing when the
    # byte (a signature's, a root's) happens to hold that value already.
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))


def refresh_crc(path, foff):
    data = bytearray(rd(path))
    ln = struct.unpack_from("<I", data, foff + 4)[0]
    struct.pack_into("<I", data, foff, zlib.crc32(bytes(data[foff + 4: foff + 9 + ln])))
    wr(path, data=bytes(data))


class VerifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyverify-")
        self.d = os.path.join(self.tmp, "log")
        self.w = build(self.d)
        self.key = self.w.pk.hex()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def seg(self, i):
        return sorted(os.path.join(self.d, "segments", n) for n in os.listdir(os.path.join(self.d, "segments")))[i]

    def assertCode(self, code, *extra, key="pinned"):
        rc, out = run(self.d, *extra, key=self.key if key == "pinned" else key)
        self.assertEqual(rc, code, out)
        return out

    def test_intact(self):
        out = self.assertCode(0)
        self.assertEqual(out["entries"], 18)
        self.assertEqual(out["sealed_size"], 18)
        self.assertEqual(out["segments"], 3)
        self.assertEqual(out["warnings"], [])
        # text mode summary line
        p = subprocess.run([sys.executable, VERIFY, self.d, "--key", self.key], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("OK "), p.stdout)

    def test_unpinned_key_warns(self):
        out = self.assertCode(0, key=None)
        self.assertTrue(any("not pinned" in w for w in out["warnings"]), out)
        p = subprocess.run([sys.executable, VERIFY, self.d], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("warning:", p.stderr)

    def test_checkpoint_ok(self):
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, mode="w", data=self.w.checkpoint())
        self.assertCode(0, "--checkpoint", cp)

    def test_flipped_entry_byte_is_content(self):
        path = self.seg(1)
        off, typ, ln = frames_of(path)[1]
        self.assertEqual(typ, 1)
        flip(path, off + 9 + 3)   # inside payload/kind data region
        out = self.assertCode(10)
        self.assertEqual(out["offset"], off)
        self.assertTrue(out["segment"].endswith(os.path.basename(path)))

    def test_flipped_entry_byte_crc_fixed_is_content(self):
        path = self.seg(0)
        off, typ, ln = frames_of(path)[0]
        data = rd(path)
        body = data[off + 9: off + 9 + ln]
        i = body.index(b'"s"')
        patch(path, off + 9 + i + 1, b"t")   # payload byte: payload_hash mismatch
        refresh_crc(path, off)
        out = self.assertCode(10)
        self.assertEqual(out["seq"], 0)
        self.assertIn("payload", out["message"])

    def test_noncanonical_pointer_is_content(self):
        path = self.seg(0)
        off, typ, ln = frames_of(path)[0]
        # rel_0 lives at ROOT+88; bump it by one and fix the CRC
        pos = off + 9 + (ln - 136) + 88
        rel = struct.unpack_from("<i", rd(path), pos)[0]
        patch(path, pos, struct.pack("<i", rel + 1))
        refresh_crc(path, off)
        self.assertCode(10)

    def test_bad_signature_is_signature(self):
        path = self.seg(1)
        seals = [f for f in frames_of(path) if f[1] == 2]
        off = seals[0][0]
        data = rd(path)
        sig_pos = off + 9 + 84
        patch(path, sig_pos + 5, bytes([data[sig_pos + 5] ^ 0x01]))
        refresh_crc(path, off)
        self.assertCode(11)

    def test_wrong_key_is_signature(self):
        other = Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        self.assertCode(11, key=other)

    def test_noncanonical_s_is_signature(self):
        path = self.seg(0)
        off = [f for f in frames_of(path) if f[1] == 2][0][0]
        data = rd(path)
        sig_pos = off + 9 + 84
        L = 2 ** 252 + 27742317777372353535851937790883648493
        s = int.from_bytes(data[sig_pos + 32: sig_pos + 64], "little") + L
        patch(path, sig_pos + 32, s.to_bytes(32, "little"))
        refresh_crc(path, off)
        out = self.assertCode(11)
        self.assertIn("S >= L", out["message"])

    def test_checkpoint_vs_truncated_log_is_truncation(self):
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, mode="w", data=self.w.checkpoint())
        # cut the last commit (entries + seal) off the last segment
        path = self.seg(2)
        fr = frames_of(path)
        seals = [f for f in fr if f[1] == 2]
        cut = seals[-2][0] + 9 + seals[-2][2]
        with open(path, "r+b") as f:
            f.truncate(cut)
        self.assertCode(0)                       # on its own the log looks fine
        self.assertCode(12, "--checkpoint", cp)

    def test_forked_history_is_truncation(self):
        # a fork: same key and log_id, different 5th entry
        d2 = os.path.join(self.tmp, "fork")
        w2 = Writer(d2, sk=self.w.sk, log_id=self.w.log_id)
        for i in range(5):
            w2.append(payload=b'{"fork":%d}' % i)
        w2.commit()
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, mode="w", data=w2.checkpoint())
        self.assertCode(12, "--checkpoint", cp)

    def test_checkpoint_bad_signature(self):
        text = self.w.checkpoint()
        body, sigline = text.rsplit("\n\n", 1)
        lines = body.split("\n")
        lines[1] = str(int(lines[1]) - 1)
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, mode="w", data="\n".join(lines) + "\n\n" + sigline)
        self.assertCode(11, "--checkpoint", cp)

    def test_checkpoint_other_log(self):
        d2 = os.path.join(self.tmp, "other")
        w2 = build(d2, segments=1, sk=self.w.sk)
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, mode="w", data=w2.checkpoint())
        self.assertCode(11, "--checkpoint", cp)

    def test_deleted_middle_segment_is_structure(self):
        os.remove(self.seg(1))
        out = self.assertCode(13)
        self.assertIn("gap", out["message"])

    def test_foreign_segment_is_structure(self):
        d2 = os.path.join(self.tmp, "other")
        build(d2, sk=self.w.sk)   # same key, different log_id, same seqs
        shutil.copy(os.path.join(d2, "segments", os.path.basename(self.seg(1))), self.seg(1))
        out = self.assertCode(13)
        self.assertIn("foreign", out["message"])

    def test_renamed_segment_is_structure(self):
        p = self.seg(2)
        os.rename(p, os.path.join(os.path.dirname(p), "%020d.seg" % 99))
        out = self.assertCode(13)
        self.assertIn("renamed", out["message"])

    def test_bad_segment_name_is_structure(self):
        wr(os.path.join(self.d, "segments", "junk.seg"), b"")
        self.assertCode(13)

    def test_symlinked_segment_is_structure(self):
        # The link points at a byte-identical copy: only the link is wrong.
        p = self.seg(2)
        real = os.path.join(self.tmp, "real.seg")
        os.rename(p, real)
        os.symlink(real, p)
        out = self.assertCode(13)
        self.assertIn("symbolic link", out["message"])

    def test_fifo_segment_is_structure_without_blocking(self):
        p = self.seg(2)
        os.remove(p)
        os.mkfifo(p)
        cmd = [sys.executable, VERIFY, self.d, "-o", "json", "--key", self.key]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 13, r.stdout)
        self.assertIn("FIFO", json.loads(r.stdout)["message"])

    def test_symlinked_segments_dir_is_structure(self):
        segs = os.path.join(self.d, "segments")
        moved = os.path.join(self.tmp, "segments-elsewhere")
        os.rename(segs, moved)
        os.symlink(moved, segs)
        out = self.assertCode(13)
        self.assertIn("symbolic link", out["message"])

    def test_tmp_ignored(self):
        wr(os.path.join(self.d, "segments", "%020d.seg.tmp" % 18), data=b"garbage")
        self.assertCode(0)

    def test_missing_footer_is_structure(self):
        path = self.seg(0)
        off, typ, ln = frames_of(path)[-1]
        self.assertEqual(typ, 3)
        with open(path, "r+b") as f:
            f.truncate(off)
        self.assertCode(13)

    def test_torn_tail_warns(self):
        self.w.append(payload=b'{"torn":true}')
        pending = self.w.pending
        self.w.pending = b""
        with open(self.seg(2), "ab") as f:
            f.write(pending[: len(pending) // 2])
        out = self.assertCode(0)
        self.assertTrue(any("torn tail" in w for w in out["warnings"]), out)
        p = subprocess.run([sys.executable, VERIFY, self.d, "--key", self.key], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("warning: torn tail", p.stderr)

    def test_frame_after_footer_is_structure(self):
        path = self.seg(0)
        off, typ, ln = frames_of(path)[-2]
        self.assertEqual(typ, 2)
        data = rd(path)
        with open(path, "ab") as f:
            f.write(data[off: off + 9 + ln])   # a valid (seal) frame after the footer
        self.assertCode(13)

    def test_garbage_after_footer_is_content(self):
        # not a frame, so the footer is still the last *frame*; §7 step 3
        # classifies the bytes: CONTENT in a non-last segment
        path = self.seg(0)
        with open(path, "ab") as f:
            f.write(b"\x00\x01\x02")
        self.assertCode(10)

    def test_corrupt_footer_in_middle_segment_is_content(self):
        # an invalid last frame is a torn tail only in the last segment
        path = self.seg(0)
        off, typ, ln = frames_of(path)[-1]
        flip(path, off + 9)
        out = self.assertCode(10)
        self.assertEqual(out["offset"], off)

    def test_corrupt_final_seal_is_torn_tail(self):
        # SPEC §8 known limit: indistinguishable from a torn write
        path = self.seg(2)
        off, typ, ln = frames_of(path)[-1]
        flip(path, off + 9 + 100)
        out = self.assertCode(0)
        self.assertTrue(any("torn tail" in w for w in out["warnings"]), out)
        self.assertTrue(any("unsealed" in w for w in out["warnings"]), out)

    def test_text_failure_line(self):
        os.remove(self.seg(1))
        p = subprocess.run([sys.executable, VERIFY, self.d, "--key", self.key], capture_output=True, text=True)
        self.assertEqual(p.returncode, 13)
        self.assertRegex(p.stdout, r"^FAIL STRUCTURE: segments/00000000000000000012\.seg offset 0 seq 12: ")

    def test_corrupt_frame_followed_by_valid_is_content(self):
        path = self.seg(2)
        off, typ, ln = frames_of(path)[0]
        patch(path, off + 4, struct.pack("<I", 0x7FFFFFFF))   # len out of range
        out = self.assertCode(10)
        self.assertEqual(out["offset"], off)

    def test_unsealed_entries_warn(self):
        self.w.append()
        self.w.append()
        self.w.flush_unsealed()
        out = self.assertCode(0)
        self.assertEqual(out["entries"], 20)
        self.assertEqual(out["sealed_size"], 18)
        self.assertTrue(any("unsealed" in w for w in out["warnings"]), out)

    def test_usage(self):
        rc, out = run(os.path.join(self.tmp, "nope"), key=self.key)
        self.assertEqual(rc, 2)
        p = subprocess.run([sys.executable, VERIFY], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)

    def test_strict_ed25519_rules(self):
        sys.path.insert(0, HERE)
        import verify
        ident = (1).to_bytes(32, "little")
        sig = ident + bytes(32)            # R = identity, S = 0
        self.assertIn("small-order", verify.strict_verify(ident, sig, b"any message"))
        good = self.w.sk.sign(b"m")
        self.assertIsNone(verify.strict_verify(self.w.pk, good, b"m"))
        self.assertIsNotNone(verify.strict_verify(self.w.pk, good, b"n"))
        p = 2 ** 255 - 19
        noncanon = (p + 5).to_bytes(32, "little")
        self.assertIn("non-canonical", verify.strict_verify(noncanon, good, b"m"))
        self.assertIn("small-order", verify.strict_verify(self.w.pk, ident + good[32:], b"m"))

    def test_no_segments_is_structure(self):
        for n in os.listdir(os.path.join(self.d, "segments")):
            os.remove(os.path.join(self.d, "segments", n))
        self.assertCode(13)


class ErasureTest(unittest.TestCase):
    """SPEC §4.2.1: a payload in the erased form (all zero bytes, same length) is
    accepted only with a later entry.redacted by an operator naming its seq and
    payload hash; the report lists each erasure."""

    PAYLOAD = b'{"api_key":"sk-live-hunter2"}'

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyverify-erase-")
        self.d = os.path.join(self.tmp, "log")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def log(self, actor=b"operator:uid:1:alice", target=1, hash_of=None, reason="leaked key"):
        w = Writer(self.d)
        for i in range(3):
            w.append(payload=self.PAYLOAD if i == 1 else b'{"i":%d}' % i)
        w.commit()
        ph = DK("argus.log v1 payload", hash_of if hash_of is not None else self.PAYLOAD).hex()
        red = json.dumps({"payload_hash": ph, "reason": reason, "target_seq": target},
                         separators=(",", ":"), sort_keys=True).encode()
        w.append(kind=b"entry.redacted", payload=red, actor=actor, job=b"")
        w.commit()
        return w

    def zero(self, w, seq=1):
        path = w.seg_path()
        off, typ, ln = frames_of(path)[seq]
        data = bytearray(rd(path))
        end = off + 9 + ln - 136
        start = end - len(self.PAYLOAD)
        self.assertEqual(bytes(data[start:end]), self.PAYLOAD)
        data[start:end] = bytes(len(self.PAYLOAD))
        wr(path, bytes(data))
        refresh_crc(path, off)
        return off

    def check(self, w):
        return run(self.d, key=w.pk.hex())

    def test_erased_with_a_matching_redaction_passes_and_is_reported(self):
        w = self.log()
        off = self.zero(w)
        rc, out = self.check(w)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["erased"], [{"seq": 1, "segment": "%020d.seg" % 0, "offset": off,
                                          "by_seq": 3, "actor": "operator:uid:1:alice",
                                          "reason": "leaked key"}])

    def test_redaction_alone_changes_nothing(self):
        w = self.log()
        rc, out = self.check(w)
        self.assertEqual((rc, out["erased"]), (0, []), out)

    def test_zeros_without_a_redaction_are_content(self):
        w = self.log(target=0)
        off = self.zero(w)
        rc, out = self.check(w)
        self.assertEqual((rc, out["seq"], out["offset"]), (10, 1, off), out)

    def test_a_redaction_by_an_agent_explains_nothing(self):
        w = self.log(actor=b"agent:uid:1:alice")
        self.zero(w)
        rc, out = self.check(w)
        self.assertEqual((rc, out["seq"]), (10, 1), out)

    def test_a_redaction_naming_another_hash_explains_nothing(self):
        w = self.log(hash_of=b'{"other":1}')
        self.zero(w)
        rc, out = self.check(w)
        self.assertEqual((rc, out["seq"]), (10, 1), out)

    def test_a_partly_zeroed_payload_is_content(self):
        w = self.log()
        path = w.seg_path()
        off, typ, ln = frames_of(path)[1]
        data = bytearray(rd(path))
        end = off + 9 + ln - 136
        data[end - 5:end] = bytes(5)
        wr(path, bytes(data))
        refresh_crc(path, off)
        rc, out = self.check(w)
        self.assertEqual((rc, out["seq"]), (10, 1), out)


class StrictCheckpointTest(unittest.TestCase):
    """SPEC §5.3: a checkpoint is a C2SP signed-note parsed as strictly as Go's
    note.Open, with the five-line §5.1 text.  Malformed -> 2, parses but no
    valid signature by the log's key -> 11."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyverify-cp-")
        self.d = os.path.join(self.tmp, "log")
        self.w = build(self.d, segments=1)
        self.key = self.w.pk.hex()
        self.text = self.w.checkpoint()
        self.body, sig_block = self.text.rsplit("\n\n", 1)
        self.body += "\n"
        self.sig = sig_block[:-1]

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def code_of(self, data):
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, data=data if isinstance(data, bytes) else data.encode("utf-8"))
        return run(self.d, "--checkpoint", cp, key=self.key)

    def line_by(self, name, sk, body):
        pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        kid = hashlib.sha256(name.encode() + b"\n\x01" + pk).digest()[:4]
        return "\u2014 %s %s\n" % (name, base64.b64encode(kid + sk.sign(body.encode())).decode())

    def assertAll(self, code, cases):
        for why, data in cases:
            rc, out = self.code_of(data)
            self.assertEqual(rc, code, "%s: %r -> %s" % (why, data, out))

    def test_writer_text_verifies(self):
        self.assertEqual(self.code_of(self.text)[0], 0)

    def test_note_framing_is_malformed(self):
        t, body, sig = self.text, self.body, self.sig
        self.assertAll(2, [
            ("CRLF", t.replace("\n", "\r\n")),
            ("tab", t.replace("chain ", "chain\t")),
            ("control char", t.replace("time", "\x01time")),
            ("not UTF-8", t.encode()[:3] + b"\xff" + t.encode()[4:]),
            ("two blank lines", body + "\n\n" + sig + "\n"),
            ("blank line inside the body", t.replace("\n", "\n\n", 1)),
            ("no signature block", body),
            ("no final newline", t[:-1]),
            ("extra final newline", t + "\n"),
            ("junk after signatures", t + "junk\n"),
            ("signature before body", sig + "\n\n" + body),
            ("101 signature lines", t + "\u2014 w AAAAAAA=\n" * 100),
        ])
        self.assertEqual(self.code_of(t + "\u2014 w AAAAAAA=\n" * 99)[0], 0)

    def test_signature_line_grammar_is_malformed(self):
        body, sig = self.body, self.sig
        b64 = sig.rsplit(" ", 1)[1]
        name = self.w.origin
        bad = [
            ("hyphen", sig.replace("\u2014", "-", 1)),
            ("en dash", sig.replace("\u2014", "\u2013", 1)),
            ("two spaces after dash", sig.replace("\u2014 ", "\u2014  ", 1)),
            ("two spaces before base64", "\u2014 %s  %s" % (name, b64)),
            ("trailing space", sig + " "),
            ("no base64", "\u2014 " + name),
            ("plus in name", "\u2014 a+b " + b64),
            ("NBSP in name", "\u2014 a\xa0b " + b64),
            ("unpadded", "\u2014 %s %s" % (name, b64.rstrip("="))),
            ("bad char", "\u2014 %s !%s" % (name, b64[1:])),
            ("4 bytes", "\u2014 %s %s" % (name, base64.b64encode(b"abcd").decode())),
            ("non-canonical trailing bits", "\u2014 w AAAAAAB="),
        ]
        self.assertAll(2, [(why, body + "\n" + ln + "\n") for why, ln in bad])

    def test_body_fields_are_malformed_unless_canonical(self):
        t, body = self.text, self.body
        lines = body.split("\n")[:-1]
        root, head, kid = lines[2], lines[3][6:], lines[4].split(" ")[3]
        # 32 bytes leave 2 spare bits in the 43rd character; setting one
        # gives a second spelling of the same bytes.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        noncanon = root[:-2] + alphabet[alphabet.index(root[-2]) | 1] + "="
        cases = [
            ("leading zero", t.replace("\n%d\n" % self.w.seq, "\n0%d\n" % self.w.seq, 1)),
            ("plus sign", t.replace("\n%d\n" % self.w.seq, "\n+%d\n" % self.w.seq, 1)),
            ("2^64", t.replace("\n%d\n" % self.w.seq, "\n18446744073709551616\n", 1)),
            ("uppercase origin", t.replace(self.w.origin, self.w.origin.upper(), 1)),
            ("BOM", "\ufeff" + t),
            ("uppercase chain", t.replace(head, head.upper(), 1)),
            ("uppercase key", t.replace("key " + kid, "key " + kid.upper(), 1)),
            ("time leading zero", t.replace("time ", "time 0", 1)),
            ("sixth line", t.replace("\n\n", "\nextension\n\n", 1)),
            ("four lines", "\n".join(lines[:4]) + "\n\n" + self.sig + "\n"),
        ]
        self.assertEqual(base64.b64decode(noncanon), base64.b64decode(root))
        cases.append(("non-canonical root", t.replace(root, noncanon, 1)))
        self.assertAll(2, cases)

    def test_signature_problems_are_signature(self):
        body = self.body
        own = self.line_by(self.w.origin, self.w.sk, body)
        witness = Ed25519PrivateKey.generate()
        wline = self.line_by("witness.example/w1", witness, body)
        self.assertEqual(self.code_of(body + "\n" + wline + own)[0], 0)
        self.assertEqual(self.code_of(body + "\n" + own + wline)[0], 0)
        lines = body.split("\n")
        lines[4] = lines[4].replace("time 1", "time 2", 1)
        self.assertAll(11, [
            ("witness only", body + "\n" + wline),
            ("log's name, other key", body + "\n" + self.line_by(self.w.origin, witness, body)),
            ("edited body, old signature", "\n".join(lines) + "\n" + own),
            ("bad second line by the log's key", body + "\n" + own + self.line_by(self.w.origin, self.w.sk, "x\n")),
            ("bad first line by the log's key", body + "\n" + self.line_by(self.w.origin, self.w.sk, "x\n") + own),
        ])


class PayloadFormTest(unittest.TestCase):
    """canonical_json and --check-payload-form (SPEC §4.1.1)."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        import verify
        cls.v = verify

    def test_rfc8785_appendix_b_numbers(self):
        table = [
            ("0000000000000000", "0"), ("8000000000000000", "0"),
            ("0000000000000001", "5e-324"), ("8000000000000001", "-5e-324"),
            ("7fefffffffffffff", "1.7976931348623157e+308"),
            ("ffefffffffffffff", "-1.7976931348623157e+308"),
            ("4340000000000000", "9007199254740992"), ("c340000000000000", "-9007199254740992"),
            ("4430000000000000", "295147905179352830000"),
            ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
            ("44b52d02c7e14af7", "1.0000000000000001e+23"),
            ("444b1ae4d6e2ef4e", "999999999999999700000"), ("444b1ae4d6e2ef4f", "999999999999999900000"),
            ("444b1ae4d6e2ef50", "1e+21"), ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
            ("3eb0c6f7a0b5ed8d", "0.000001"), ("41b3de4355555553", "333333333.3333332"),
            ("41b3de4355555554", "333333333.33333325"), ("41b3de4355555555", "333333333.3333333"),
            ("41b3de4355555556", "333333333.3333334"), ("41b3de4355555557", "333333333.33333343"),
            ("becbf647612f3696", "-0.0000033333333333333333"), ("43143ff3c1cb0959", "1424953923781206.2"),
        ]
        for bits, want in table:
            f = struct.unpack(">d", bytes.fromhex(bits))[0]
            self.assertEqual(self.v.canonical_json(f), want.encode(), bits)

    def test_rfc8785_sample_and_sorting(self):
        sample = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
                  ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
                  ' "literals": [null, true, false]}')
        self.assertEqual(
            self.v.canonical_json(json.loads(sample)),
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode())
        keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001F600", "\u0080", "\u00f6"]
        out = self.v.canonical_json({k: i for i, k in enumerate(keys)}).decode()
        self.assertEqual(out, '{"\\r":1,"1":3,"\u0080":5,"\u00f6":6,"\u20ac":0,"\U0001F600":4,"\ufb33":2}')

    def test_non_canonical_payloads_warn_but_verify(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        w = Writer(d)
        w.append(payload=b'{"a":1,"b":[0.5,"\xc3\xa9"]}')
        w.append(payload=b'{"b":1,"a":2}')
        w.append(payload=b'{"a": 1}')
        w.append(payload=b'{"a":1,"a":1}')
        w.append(payload=b'5.0')
        w.commit()
        rc, out = run(d, "--check-payload-form", key=w.pk.hex())
        self.assertEqual(rc, 0, out)
        form = [x for x in out["warnings"] if "canonical" in x]
        self.assertEqual([x.split(" seq ")[1].split(":")[0] for x in form], ["1", "2", "3", "4"], form)
        self.assertTrue(any("duplicate key" in x for x in form), form)
        rc, out = run(d, key=w.pk.hex())
        self.assertEqual((rc, out["warnings"]), (0, []))


# ------------------------------------------------------------ proofs (SPEC §11)

def _mth(d):
    if not d:
        return H(b"")
    if len(d) == 1:
        return leaf(d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return node(_mth(d[:k]), _mth(d[k:]))


def _path(m, d):
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(d) <= 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return _path(m, d[:k]) + [_mth(d[k:])]
    return _path(m - k, d[k:]) + [_mth(d[:k])]


def _subproof(m, d, b):
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [_mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return _subproof(m, d[:k], b) + [_mth(d[k:])]
    return _subproof(m - k, d[k:], False) + [_mth(d[:k])]


class ProofFunctionsTest(unittest.TestCase):
    """verify.py's inclusion_root / consistency_ok against PATH and PROOF
    generated here from RFC 9162's definitions."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        import verify
        cls.v = verify

    def test_inclusion_and_consistency_up_to_20_leaves(self):
        d = [H(bytes([i])) for i in range(20)]
        for n in range(1, len(d) + 1):
            root = _mth(d[:n])
            for m in range(n):
                path = _path(m, d[:n])
                self.assertEqual(self.v.inclusion_root(m, n, leaf(d[m]), path), root)
                self.assertNotEqual(self.v.inclusion_root(m, n, leaf(d[m]), path + [root]), root)
                if path:
                    bad = list(path)
                    bad[0] = H(bad[0])
                    self.assertNotEqual(self.v.inclusion_root(m, n, leaf(d[m]), bad), root)
            for m in range(1, n):
                old = _mth(d[:m])
                proof = _subproof(m, d[:n], True)
                self.assertTrue(self.v.consistency_ok(m, n, old, root, proof), (m, n))
                self.assertFalse(self.v.consistency_ok(m, n, H(old), root, proof))
                self.assertFalse(self.v.consistency_ok(m, n, old, root, proof[:-1]))
                bad = list(proof)
                bad[-1] = H(bad[-1])
                self.assertFalse(self.v.consistency_ok(m, n, old, root, bad))


# ------------------------------------------------ compressed segments (§12)

def compress_segment(path, block_size=200, content_size=True):
    """Writes PATH + "z" from the plain segment at PATH, by SPEC §12 alone, and removes PATH.
    Blocks hold whole frames (block 0 the header too), cut before a frame that would take a
    block past block_size."""
    data = rd(path)
    n = data[68]
    hlen = 73 + 32 * n
    base = struct.unpack_from("<Q", data, 28)[0]
    blocks, start, seq, first_seq, frames_in = [], 0, base, base, 0
    for off, typ, ln in frames_of(path):
        end = off + 9 + ln
        if frames_in and end - start > block_size:
            blocks.append((start, off, first_seq))
            start, frames_in, first_seq = off, 0, seq
        frames_in += 1
        seq += typ == 1
    blocks.append((start, len(data), first_seq))
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=content_size)
    head = b"ARGUSZST" + struct.pack("<IQQI", 1, base, len(data), block_size)
    out = head + struct.pack("<I", zlib.crc32(head))
    index = b""
    for a, b, fs in blocks:
        z = cctx.compress(data[a:b])
        index += struct.pack("<QQIIQ", a, len(out), len(z), b - a, fs)
        out += z
    out += index + struct.pack("<QII", len(out), len(blocks), zlib.crc32(index)) + b"ARGUSZIX"
    wr(path + "z", out)
    os.remove(path)
    return path + "z"


class CompressedTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyverify-z-")
        self.d = os.path.join(self.tmp, "log")
        self.w = build(self.d, segments=4, commits=3, per_commit=4)
        self.key = self.w.pk.hex()
        segs = sorted(os.listdir(os.path.join(self.d, "segments")))
        self.plain = [os.path.join(self.d, "segments", n) for n in segs]
        self.originals = [rd(p) for p in self.plain]
        # Every sealed segment but the last, as compaction leaves them.
        self.z = [compress_segment(p) for p in self.plain[:-1]]

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def code(self, *extra):
        rc, out = run(self.d, *extra, key=self.key)
        return rc, out

    def test_compressed_log_is_intact_with_the_same_counts(self):
        rc, out = self.code()
        self.assertEqual(rc, 0, out)
        self.assertEqual((out["entries"], out["segments"]), (48, 4))
        self.assertEqual(out["warnings"], [])
        # The blocks really are several per segment, cut on frame boundaries.
        data = rd(self.z[0])
        self.assertGreater(struct.unpack_from("<I", data, len(data) - 16)[0], 3)

    def test_checkpoint_made_before_compression_still_verifies(self):
        cp = os.path.join(self.tmp, "cp.txt")
        wr(cp, mode="w", data=self.w.checkpoint())
        rc, out = self.code("--checkpoint", cp)
        self.assertEqual(rc, 0, out)

    def test_both_forms_of_one_segment_use_the_plain_one(self):
        wr(self.plain[1], self.originals[1])
        rc, out = self.code()
        self.assertEqual(rc, 0, out)
        self.assertTrue(any("duplicates" in w for w in out["warnings"]), out)
        # The plain one is judged: damage there is found, damage in the copy is not.
        data = bytearray(rd(self.z[1]))
        data[40] ^= 0xFF
        wr(self.z[1], bytes(data))
        self.assertEqual(self.code()[0], 0)

    def test_flipped_byte_in_a_block_is_content_naming_the_segment(self):
        data = bytearray(rd(self.z[1]))
        data[60] ^= 0x01
        wr(self.z[1], bytes(data))
        rc, out = self.code()
        self.assertEqual(rc, 10, out)
        self.assertEqual(out["segment"], "segments/" + os.path.basename(self.z[1]))

    def test_every_truncation_is_content(self):
        data = rd(self.z[0])
        for keep in (len(data) - 1, len(data) - 24, len(data) // 2, 35, 0):
            wr(self.z[0], data[:keep])
            rc, out = self.code()
            self.assertEqual(rc, 10, (keep, out))
            self.assertIn("compressed", out["message"])

    def test_flipped_index_byte_is_content(self):
        data = bytearray(rd(self.z[2]))
        data[len(data) - 24 - 5] ^= 0x01
        wr(self.z[2], bytes(data))
        self.assertEqual(self.code()[0], 10)

    def test_a_block_whose_frame_does_not_declare_the_index_length_is_content(self):
        # §12: each block's zstd frame declares its content size, equal to the index's length,
        # so a decoder can refuse before inflating.
        os.remove(self.z[0])
        wr(self.plain[0], self.originals[0])
        z = compress_segment(self.plain[0], content_size=False)
        data = bytearray(rd(z))
        t = len(data) - 24
        index = struct.unpack_from("<Q", data, t)[0]
        # Declare block 0 one byte shorter and block 1 one byte longer (the tiling still holds).
        l0 = struct.unpack_from("<I", data, index + 20)[0]
        struct.pack_into("<I", data, index + 20, l0 - 1)
        u1, = struct.unpack_from("<Q", data, index + 32)
        struct.pack_into("<Q", data, index + 32, u1 - 1)
        l1 = struct.unpack_from("<I", data, index + 32 + 20)[0]
        struct.pack_into("<I", data, index + 32 + 20, l1 + 1)
        struct.pack_into("<I", data, t + 12, zlib.crc32(bytes(data[index:t])))
        wr(z, bytes(data))
        rc, out = self.code()
        self.assertEqual(rc, 10, out)
        self.assertIn("block 0", out["message"])

    def test_compressed_segment_without_footer_is_structure(self):
        # The last segment, compressed while it had no footer: never done by compaction.
        last = self.plain[-1]
        compress_segment(last)
        rc, out = self.code()
        self.assertEqual(rc, 13, out)

    def test_symlinked_compressed_segment_is_structure(self):
        real = os.path.join(self.tmp, "real.segz")
        os.rename(self.z[1], real)
        os.symlink(real, self.z[1])
        rc, out = self.code()
        self.assertEqual(rc, 13, out)
        self.assertIn("symbolic link", out["message"])


if __name__ == "__main__":
    unittest.main()


class KeyChainBundleTest(unittest.TestCase):
    """SPEC §11 key_chain, built from SPEC §4.2, §4.7, §5 and §6 alone: a
    checkpoint signed by epoch 1's key verifies from the first key only
    through the key.rotated entry the bundle carries."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        import verify
        cls.v = verify

    def setUp(self):
        v = self.v
        raw = lambda k: k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.log_id = bytes(range(16))
        self.k0, self.k1 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        self.pk0, self.pk1 = raw(self.k0), raw(self.k1)
        origin = v.origin_of(self.log_id)
        self.kid0, self.kid1 = v.key_id_of(origin, self.pk0), v.key_id_of(origin, self.pk1)
        msg = (b"argus key-rotation v1\n" + self.log_id + struct.pack("<Q", 1) + self.pk1 + self.kid0
               + struct.pack("<Q", 2))
        rotated = {"epoch": 1, "public_key": self.pk1.hex(), "key_id": self.kid1.hex(),
                   "prev_key_id": self.kid0.hex(), "from_seq": 2,
                   "cert": self.k0.sign(msg).hex(), "possession": self.k1.sign(msg).hex()}
        self.entries, prev = [], b"\0" * 32
        for seq, kind, actor, payload in ((0, "x.a", "tester", {"i": 0}), (1, "key.rotated", "argus", rotated),
                                          (2, "x.a", "tester", {"i": 2})):
            e = {"seq": seq, "ts": "2026-01-01T00:00:0%d.000000000Z" % seq, "kind": kind, "job_id": None,
                 "step_id": None, "agent": None, "actor": actor, "parent": None, "payload": payload,
                 "prev": prev.hex()}
            prev = v._entry_hash(e)
            e["hash"] = prev.hex()
            self.entries.append(e)
        self.hashes = [bytes.fromhex(e["hash"]) for e in self.entries]
        self.root = _mth(self.hashes)

    def checkpoint(self, key, kid, size=3):
        note = self.v.note_body(self.log_id, size, _mth(self.hashes[:size]), self.hashes[size - 1], 1, kid)
        sig = base64.b64encode(kid + key.sign(note)).decode()
        return note.decode() + "\n\u2014 %s %s\n" % (self.v.origin_of(self.log_id), sig)

    def item(self, seq):
        h = self.hashes[seq]
        return {"seq": seq, "entry": json.loads(json.dumps(self.entries[seq])), "entry_hash": h.hex(),
                "leaf_hash": leaf(h).hex(), "audit_path": [x.hex() for x in _path(seq, self.hashes)]}

    def bundle(self, key=None, kid=None, chain=(1,)):
        b = dict(self.item(0), version=1, log_id=self.log_id.hex(), tree_size=3,
                 checkpoint=self.checkpoint(key or self.k1, kid or self.kid1))
        if chain is not None:
            b["key_chain"] = [self.item(s) for s in chain]
        return b

    def code(self, b, pk=None):
        return self.v.verify_proof(b, pk or self.pk0).code

    def test_the_chain_leads_from_the_first_key_to_the_signer(self):
        self.assertEqual(self.code(self.bundle()), self.v.OK)
        # Consistency from the epoch-0 checkpoint of size 1 to size 3.
        old = self.checkpoint(self.k0, self.kid0, size=1)
        c = {"version": 1, "log_id": self.log_id.hex(), "old_size": 1, "old_root": leaf(self.hashes[0]).hex(),
             "new_size": 3, "new_root": self.root.hex(), "proof": [x.hex() for x in _subproof(1, self.hashes, True)],
             "old_checkpoint": old, "new_checkpoint": self.checkpoint(self.k1, self.kid1),
             "key_chain": [self.item(1)]}
        self.assertEqual(self.code(c), self.v.OK)

    def test_without_the_chain_only_the_signer_verifies(self):
        b = self.bundle(chain=None)
        self.assertEqual(self.code(b), self.v.SIGNATURE)
        self.assertEqual(self.code(b, self.pk1), self.v.OK)

    def test_a_tampered_chain_or_an_old_key_past_its_epoch_fails(self):
        b = self.bundle()
        b["key_chain"][0]["entry"]["payload"]["cert"] = "00" * 64
        self.assertEqual(self.code(b), self.v.CONTENT)
        self.assertEqual(self.code(self.bundle(chain=(2,))), self.v.SIGNATURE)
        self.assertEqual(self.code(self.bundle(chain=())), self.v.SIGNATURE)
        self.assertEqual(self.code(self.bundle(self.k0, self.kid0)), self.v.SIGNATURE)
        b = self.bundle()
        b["key_chain"] = "no"
        self.assertEqual(self.code(b), self.v.USAGE)
