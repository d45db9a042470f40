#!/usr/bin/env python3
"""
The crash campaign: petreld is killed with SIGKILL at chosen moments while
several clients send at full speed, restarted, N times; afterwards every
message that got a 250 must be in its Maildir or at the sink (an SMTP
server on loopback standing for the Internet). Then the disk-full run
(the spool on a 2 MB tmpfs) and the fsync check (strace shows the file
data and directory syncs before the 250, with `sync filesystem` and with
`sync files`). docs/durability.md explains it all.

    tests/crash/crash_campaign.py [--cycles 100] [--seed S] [--build build]

Each kill cycle uses one variant (every block of four cycles has each
variant once, in a seeded order):

    data    killed while a client is in the middle of sending DATA
    commit  killed right after a client sent the final ".\\r\\n", before
            the reply (the kill comes from the sending thread itself)
    local   killed while messages wait for Maildir delivery (petreld pauses
            before each queued one: PETREL_TEST_LOCAL_DELAY_MS)
    remote  killed while the sink holds DATA replies (outbound in flight)

Exit status 0 when nothing was lost and every check passed, 1 otherwise,
77 when a phase could not run at all (reported, not hidden). Standard
library only (the integration harness, tests/integration/conftest.py,
is imported for the Petrel class; it needs pytest installed).
"""
import argparse
import errno
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402  (Petrel, SMTPConn, maildir_mails)
from sink import SUBJECT_RE, Sink  # noqa: E402

VARIANTS = ("data", "commit", "local", "remote")
USERS = ["alice", "bob", "carol", "dave", "erin"]
REMOTE_DOMAIN = "remote.test"
TRIGGER_TIMEOUT = 3.0  # seconds to wait for a variant's moment before killing anyway
# petreld pauses this long before each queued Maildir delivery during the kill
# cycles (PETREL_TEST_LOCAL_DELAY_MS), so that "local" kills find some under way:
# without it they are done within a millisecond of being queued
LOCAL_DELAY_MS = 200
CHUNK = 8192
QID_RE = re.compile(r"^[0-9A-F]{16}$")


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# petreld under test

def make_petrel(root, sink_port, extra=""):
    rules = (f'action "smart" relay host 127.0.0.1 port {sink_port}\n'
             'match for domain "example.org" action "local"\n'
             f'match for domain "{REMOTE_DOMAIN}" action "smart"\n')
    return conftest.Petrel(root, users=USERS, aliases={}, rules=rules,
                           extra="retry 1s\n" + extra)


def queue_ids(p):
    try:
        return [n for n in os.listdir(p.spool / "queue") if QID_RE.match(n)]
    except OSError:
        return []


def local_pending(p):
    """Queued messages with Maildir recipients and no journal yet: their
    local delivery has not happened."""
    n = 0
    names = set()
    try:
        names = set(os.listdir(p.spool / "queue"))
    except OSError:
        return 0
    for qid in names:
        if not QID_RE.match(qid) or qid + ".state" in names:
            continue
        try:
            with open(p.spool / "queue" / qid, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue
        n += b"\nrcpt maildir " in head
    return n


# ---------------------------------------------------------------------------
# messages: a token in the Subject, a body that proves it arrived whole

def body_lines(token, nlines):
    pad = "x" * 60
    lines = [f"{token} {i:05d} {pad}\r\n" for i in range(nlines)]
    lines.append(f"END {token} {nlines}\r\n")
    return "".join(lines).encode()


def whole(raw, token, nlines):
    """True when a delivered copy has every body line and the end mark."""
    tok = token.encode()
    return (raw.count(b"\n" + tok + b" ") == nlines
            and f"END {token} {nlines}".encode() in raw)


class Kill:
    """One armed kill: the first thread to take it sends SIGKILL."""

    def __init__(self):
        self.lock = threading.Lock()
        self.armed = None  # (kind, pid)
        self.fired = threading.Event()
        self.by = None

    def arm(self, kind, pid):
        with self.lock:
            self.armed = (kind, pid)
            self.fired.clear()
            self.by = None

    def take(self, kind, who):
        """Kills if armed for kind; True when this call killed."""
        with self.lock:
            if self.armed is None or (kind is not None and self.armed[0] != kind):
                return False
            pid = self.armed[1]
            self.armed = None
            self.by = who
        os.kill(pid, signal.SIGKILL)
        self.fired.set()
        return True


class Load:
    """Sender threads at full speed (one streams its DATA slowly so that a
    transfer is always in progress). acked: token -> (rcpts, nlines),
    recorded only after the 250 to the final dot."""

    def __init__(self, petrel, senders, seed, kill, tag="m"):
        self.p = petrel
        self.kill = kill
        self.tag = tag
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}
        self.attempted = {}
        self.replies = {}  # end-of-DATA reply code -> count
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(n, random.Random(seed * 100 + n)),
                                         daemon=True) for n in range(senders)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self, timeout=30):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        if any(t.is_alive() for t in self.threads):
            self.errors.append("a sender thread hung")

    def _pick(self, rng, n, i):
        token = f"{self.tag}{n}x{i}"
        r = rng.random()
        if r < 0.55:
            rcpts = [f"{rng.choice(USERS)}@example.org"]
        elif r < 0.75:
            rcpts = [f"{u}@example.org" for u in rng.sample(USERS, rng.randint(2, 4))]
        elif r < 0.92:
            rcpts = [f"{token}@{REMOTE_DOMAIN}"]
        else:
            rcpts = [f"{rng.choice(USERS)}@example.org", f"{token}@{REMOTE_DOMAIN}"]
        s = rng.random()
        nlines = 4 if s < 0.6 else rng.randint(50, 400) if s < 0.93 else rng.randint(1500, 3000)
        return token, rcpts, nlines

    def _run(self, n, rng):
        try:
            self._loop(n, rng)
        except BaseException as e:  # a dead sender would weaken the campaign unseen
            with self.lock:
                self.errors.append(f"sender {n} died: {e!r}")

    def _loop(self, n, rng):
        streamer = n == 0
        i = 0
        while not self.stop.is_set():
            i += 1
            token, rcpts, nlines = self._pick(rng, n, i)
            if streamer:
                nlines = max(nlines, 200)
            try:
                c = conftest.SMTPConn(self.p.port, timeout=15)
            except (OSError, conftest.Closed):
                time.sleep(0.02)  # petreld is down: try again
                continue
            try:
                self._one(c, n, rng, streamer, token, rcpts, nlines)
            except (OSError, conftest.Closed):
                pass  # killed mid-transaction: not acknowledged
            except AssertionError as e:
                with self.lock:
                    self.errors.append(f"{token}: {e}")
            finally:
                c.close()

    def _one(self, c, n, rng, streamer, token, rcpts, nlines):
        if c.greeting.code != 220:
            return
        c.ehlo()
        if c.cmd("MAIL FROM:<crash@example.net>").code != 250:
            return
        for r in rcpts:
            if c.cmd(f"RCPT TO:<{r}>").code != 250:
                return
        if c.cmd("DATA").code != 354:
            return
        head = (f"From: <crash@example.net>\r\nTo: <{rcpts[0]}>\r\nSubject: {token}\r\n"
                f"Message-ID: <{token}@crash.test>\r\n\r\n").encode()
        data = head + body_lines(token, nlines)
        with self.lock:
            self.attempted[token] = (rcpts, nlines)
        for off in range(0, len(data), CHUNK):
            c.send(data[off:off + CHUNK])
            if off + CHUNK < len(data):
                self.kill.take("data", f"sender {n}")
                if streamer:
                    time.sleep(rng.uniform(0.005, 0.02))
        c.send(b".\r\n")
        self.kill.take("commit", f"sender {n}")
        r = c.reply()
        with self.lock:
            self.replies[r.code] = self.replies.get(r.code, 0) + 1
            if r.code == 250:
                self.acked[token] = (rcpts, nlines)
        if r.code >= 500 or (r.code != 250 and r.code < 400):
            raise AssertionError(f"unexpected reply {r!r} to the end of DATA")
        c.cmd("QUIT")


# ---------------------------------------------------------------------------
# counting

def delivered(p, sink):
    """{(token, dest): [raw, ...]}: dest is 'user' for a Maildir copy and
    the address for a copy the sink received."""
    got = {}
    for user in USERS:
        for m in conftest.maildir_mails(p.maildir(user)):
            mt = SUBJECT_RE.search(m.raw)
            if mt:
                got.setdefault((mt.group(1).decode(), user), []).append(m.raw)
    for token, rcpt, data in sink.copies():
        if token:
            got.setdefault((token, rcpt), []).append(data)
    return got


def dest_of(rcpt):
    local, _, domain = rcpt.lower().partition("@")
    return local if domain == "example.org" else rcpt.lower()


def expected_pairs(acked):
    return {(t, dest_of(r)): nl for t, (rcpts, nl) in acked.items() for r in rcpts}


def tally(acked, attempted, got):
    exp = expected_pairs(acked)
    possible = expected_pairs(attempted)
    lost = sorted(k for k in exp if k not in got)
    dup_local = sum(len(v) - 1 for k, v in got.items() if "@" not in k[1])
    dup_remote = sum(len(v) - 1 for k, v in got.items() if "@" in k[1])
    mixed = {t for t, (rcpts, _) in attempted.items() if any("@example.org" not in r for r in rcpts)}
    dup_mixed = sum(len(v) - 1 for k, v in got.items() if "@" not in k[1] and k[0] in mixed)
    broken = sorted(k for k, v in got.items() if k in possible
                    and not all(whole(raw, k[0], possible[k]) for raw in v))
    stray = sorted(k for k in got if k not in possible)
    unacked = len({k[0] for k in got if k[0] not in acked})
    return {"expected": len(exp), "lost": lost, "dup_local": dup_local, "dup_remote": dup_remote,
            "dup_mixed": dup_mixed,
            "broken": broken, "stray": stray, "unacked_delivered": unacked}


def drain(p, sink, acked, timeout):
    """Waits until every acknowledged copy arrived and the queue is empty."""
    exp = expected_pairs(acked)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = delivered(p, sink)
        if all(k in got for k in exp) and not queue_ids(p):
            return True
        time.sleep(0.25)
    return False


# ---------------------------------------------------------------------------
# the kill cycles

def schedule(cycles, rng):
    out = []
    while len(out) < cycles:
        block = list(VARIANTS)
        rng.shuffle(block)
        out.extend(block)
    return out[:cycles]


def wait_for(pred, timeout, interval=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return False


def kill_cycle(p, sink, kill, variant, rng, stats):
    pid = p.proc.pid
    time.sleep(rng.uniform(0.15, 0.6))  # let the load build up
    if variant in ("data", "commit"):
        kill.arm(variant, pid)
        hit = kill.fired.wait(TRIGGER_TIMEOUT)
    elif variant == "local":
        before = set(p.tmp_leftovers())  # files earlier kills left in Maildir tmp/
        # a delivery from the queue pending (petreld pauses before each one),
        # else one being written on the direct path (a new file in tmp/)
        hit = (wait_for(lambda: local_pending(p) >= 1, TRIGGER_TIMEOUT / 2, 0.002)
               or wait_for(lambda: set(p.tmp_leftovers()) - before, TRIGGER_TIMEOUT / 2, 0.002))
        stats["local_pending_at_kill"].append(local_pending(p))
        kill.arm(None, pid)
    else:
        hit = wait_for(lambda: sink.holding > 0, TRIGGER_TIMEOUT)
        if hit:
            time.sleep(rng.uniform(0, 0.05))
        stats["held_at_kill"].append(sink.holding)
        kill.arm(None, pid)
    if not kill.fired.is_set():
        kill.take(None, "campaign")
    stats["hit" if hit else "missed"][variant] += 1
    p.proc.wait(timeout=10)
    p.returncodes.append(p.proc.returncode)
    p.proc = None
    time.sleep(rng.uniform(0, 0.05))
    p.start()


def run_cycles(workdir, cycles=100, seed=1, senders=4):
    """The kill campaign; returns a result dict (see report_cycles)."""
    rng = random.Random(seed)
    workdir = Path(workdir)
    sink = Sink(hold=(0.05, 0.6), seed=seed)
    p = make_petrel(workdir / "campaign", sink.port)
    kill = Kill()
    load = None
    stats = {"hit": dict.fromkeys(VARIANTS, 0), "missed": dict.fromkeys(VARIANTS, 0),
             "local_pending_at_kill": [], "held_at_kill": []}
    t0 = time.monotonic()
    os.environ["PETREL_TEST_LOCAL_DELAY_MS"] = str(LOCAL_DELAY_MS)  # petreld_env() passes it on
    try:
        p.start()
        load = Load(p, senders, seed, kill)
        load.start()
        for i, variant in enumerate(schedule(cycles, rng)):
            kill_cycle(p, sink, kill, variant, rng, stats)
            if (i + 1) % 10 == 0:
                log(f"crash: {i + 1}/{cycles} cycles, {len(load.acked)} acknowledged")
        time.sleep(0.3)
        load.finish()
        t_kill = time.monotonic() - t0
        sink.hold = (0.0, 0.0)
        drained = drain(p, sink, load.acked, 120)
        res = tally(load.acked, load.attempted, delivered(p, sink))
        rc = p.stop()
        res.update(cycles=cycles, seed=seed, senders=senders, acked=len(load.acked),
                   attempted=len(load.attempted), replies=dict(load.replies),
                   errors=list(load.errors), drained=drained, leftover=queue_ids(p),
                   stop_rc=rc, sanitizer=p.sanitizer_reports(), stats=stats,
                   maildir_tmp=len(p.tmp_leftovers()), corrupt=os.listdir(p.spool / "corrupt"),
                   kill_seconds=round(t_kill, 1), seconds=round(time.monotonic() - t0, 1))
        return res
    finally:
        os.environ.pop("PETREL_TEST_LOCAL_DELAY_MS", None)
        if load:
            load.stop.set()
        if p.proc is not None and p.proc.poll() is None:
            p.kill9()
        sink.stop()


def cycle_failures(r):
    f = []
    if r["lost"]:
        f.append(f"lost {len(r['lost'])} acknowledged copies: {r['lost'][:10]}")
    if r["broken"]:
        f.append(f"truncated or damaged copies: {r['broken'][:10]}")
    if r["stray"]:
        f.append(f"copies at a destination never asked for: {r['stray'][:10]}")
    if r["errors"]:
        f.append(f"client errors: {r['errors'][:5]}")
    if not r["drained"] or r["leftover"]:
        f.append(f"queue did not drain: {r['leftover'][:10]}")
    if r["corrupt"]:
        f.append(f"files quarantined in spool/corrupt: {r['corrupt'][:10]}")
    if r["sanitizer"]:
        f.append("sanitizer report:\n" + r["sanitizer"][0])
    if r["stop_rc"] != 0:
        f.append(f"petreld exited with {r['stop_rc']} on SIGTERM at the end")
    if r["acked"] < r["cycles"]:
        f.append(f"too few messages acknowledged to mean anything: {r['acked']}")
    if r["cycles"] >= 20 and not any(r["stats"]["local_pending_at_kill"]):
        f.append("no local kill found a delivery from the queue pending")
    ran = {v for v in VARIANTS if r["stats"]["hit"][v] + r["stats"]["missed"][v]}
    if r["cycles"] >= len(VARIANTS) and ran != set(VARIANTS):
        f.append(f"variants that never ran: {set(VARIANTS) - ran}")
    return f


def report_cycles(r):
    s = r["stats"]
    lp, held = s["local_pending_at_kill"], s["held_at_kill"]
    lines = [
        f"crash campaign: {r['cycles']} cycles (seed {r['seed']}, {r['senders']} senders), "
        f"{r['kill_seconds']} s of kills, {r['seconds']} s in all",
        f"  messages: {r['attempted']} attempted, {r['acked']} acknowledged "
        f"({r['expected']} copies due), end-of-DATA replies {r['replies']}",
        f"  lost {len(r['lost'])}, duplicated {r['dup_local'] + r['dup_remote']} "
        f"(Maildir {r['dup_local']}, of which {r['dup_mixed']} of messages that also had a "
        f"remote recipient; sink {r['dup_remote']}), damaged {len(r['broken'])}, "
        f"delivered without a 250 seen {r['unacked_delivered']}",
        "  variants (kills at the intended moment / fallback kills after "
        f"{TRIGGER_TIMEOUT:g} s): "
        + ", ".join(f"{v} {s['hit'][v]}/{s['missed'][v]}" for v in VARIANTS),
        f"  local kills: Maildir deliveries pending at the kill, mean "
        f"{sum(lp) / len(lp) if lp else 0:.1f}, max {max(lp, default=0)}; "
        f"remote kills: DATA replies held, mean {sum(held) / len(held) if held else 0:.1f}",
        f"  Maildir tmp/ files left by kills: {r['maildir_tmp']}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# disk full: the spool and the Maildirs on a 2 MB tmpfs

def mount_tmpfs(path, size="2m"):
    """None when mounted, else the reason it could not be."""
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs for the spool"
    if not shutil.which("mount"):
        return "no mount(8)"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"mount -t tmpfs failed: {r.stderr.strip()}"
    return None


def umount(path):
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path):
    """Appends zeros to path until ENOSPC; returns its size."""
    with open(path, "ab", buffering=0) as f:
        block = b"\0" * 65536
        while True:
            try:
                if f.write(block) < len(block):
                    continue  # a short write: the next one says ENOSPC
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return f.tell()


def send_one(p, token, rcpts, nlines):
    """One transaction; returns the reply to the final dot (or None when
    the transaction could not get that far)."""
    with conftest.SMTPConn(p.port, timeout=15) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<full@example.net>", 250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>", 250)
        c.cmd("DATA", 354)
        c.send(f"Subject: {token}\r\n\r\n".encode() + body_lines(token, nlines) + b".\r\n")
        r = c.reply()
        c.cmd("QUIT")
        return r


def run_disk_full(workdir, seed=1):
    """Returns a result dict; result['skipped'] is a reason when no tmpfs."""
    rng = random.Random(seed)
    root = Path(workdir) / "diskfull"
    spool = root / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    why = mount_tmpfs(spool)
    if why:
        return {"skipped": why}
    # The Maildirs share the small file system: local mail takes the direct
    # path (straight into the Maildir before the 250), so a full disk must
    # refuse it there too.
    (spool / "maildirs").mkdir()
    (root / "mail").symlink_to(spool / "maildirs")
    sink = Sink(seed=seed)
    sink.refuse = True  # remote mail stays queued (and journals retries) while the disk fills
    p = make_petrel(root, sink.port)
    acked, attempted, errors, codes = {}, {}, [], {}
    filler = spool / "filler"
    t0 = time.monotonic()

    def note(token, rcpts, nlines, r, phase, want=None):
        attempted[token] = (rcpts, nlines)
        key = f"{phase}:{r.code}"
        codes[key] = codes.get(key, 0) + 1
        if r.code == 250:
            acked[token] = (rcpts, nlines)
        elif r.code not in (451, 452):
            errors.append(f"{phase} {token}: unexpected {r!r}")
        if want and (r.code, r.status) != want:
            errors.append(f"{phase} {token}: expected {want}, got {r!r}")

    def mixed(i):
        return ([f"{USERS[i % 5]}@example.org"] if i % 3 else
                [f"{USERS[i % 5]}@example.org", f"full{i}@{REMOTE_DOMAIN}"])

    try:
        p.start()
        # 1. space: everything is accepted
        for i in range(8):
            tok = f"fullA{i}"
            note(tok, mixed(i), 20, send_one(p, tok, mixed(i), 20), "space", (250, "2.0.0"))
        # 2. nearly full: some fit, some get 452 mid-write, concurrently
        fill(filler)
        os.truncate(filler, max(0, filler.stat().st_size - 384 * 1024))
        lock = threading.Lock()

        def sender(n):
            r2 = random.Random(seed * 10 + n)
            for i in range(8):
                tok = f"fullB{n}x{i}"
                rcpts, nl = mixed(i + n), r2.randint(100, 2500)
                try:
                    r = send_one(p, tok, rcpts, nl)
                except (OSError, conftest.Closed, AssertionError) as e:
                    with lock:
                        errors.append(f"nearly full {tok}: {e!r}")
                    continue
                with lock:
                    note(tok, rcpts, nl, r, "nearly-full")

        ts = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        # 3. full: give queued local copies a chance (the Maildirs share the small file
        # system, so they may have to wait for space: phase 5 checks they all arrive),
        # then fill to the last byte
        local_done = lambda: all((t, dest_of(r)) in delivered(p, sink)  # noqa: E731
                                 for t, (rc, _) in acked.items() for r in rc if "@example.org" in r)
        if not wait_for(local_done, 10, 0.1):
            log("disk full: some local copies wait for space")
        for i in range(4):
            fill(filler)
            tok = f"fullC{i}"
            note(tok, mixed(i), 50 + 400 * i, send_one(p, tok, mixed(i), 50 + 400 * i), "full",
                 (452, "4.3.1"))
        # 4. killed while full; recovery must start on a full spool and still say 452
        p.kill9()
        p.start()
        fill(filler)
        note("fullD0", mixed(1), 30, send_one(p, "fullD0", mixed(1), 30), "full-after-restart",
             (452, "4.3.1"))
        left_tmp = os.listdir(spool / "tmp")
        if left_tmp:
            errors.append(f"half-written files left in spool/tmp: {left_tmp}")
        # 5. space returns: accepted again, and everything acknowledged is delivered
        filler.unlink()
        sink.refuse = False
        for i in range(6):
            tok = f"fullE{i}"
            note(tok, mixed(i), 20, send_one(p, tok, mixed(i), 20), "space-again", (250, "2.0.0"))
        drained = drain(p, sink, acked, 60)
        res = tally(acked, attempted, delivered(p, sink))
        p.kill9()  # no SIGTERM grace needed: everything is final
        p.start()
        res.update(drained=drained, acked=len(acked), attempted=len(attempted), codes=codes,
                   errors=errors, leftover=queue_ids(p), corrupt=os.listdir(spool / "corrupt"),
                   tmp=os.listdir(spool / "tmp"), sanitizer=p.sanitizer_reports(),
                   enospc_logged=p.stderr().count("No space left on device"),
                   seconds=round(time.monotonic() - t0, 1))
        return res
    finally:
        if p.proc is not None and p.proc.poll() is None:
            p.stop()
        sink.stop()
        umount(spool)


def disk_full_failures(r):
    f = list(r["errors"])
    if r["lost"]:
        f.append(f"lost {len(r['lost'])} acknowledged copies: {r['lost'][:10]}")
    if r["broken"]:
        f.append(f"damaged copies: {r['broken'][:10]}")
    if not r["drained"] or r["leftover"]:
        f.append(f"queue did not drain after space returned: {r['leftover']}")
    if r["corrupt"] or r["tmp"]:
        f.append(f"spool/corrupt {r['corrupt']}, spool/tmp {r['tmp']} after recovery")
    if r["sanitizer"]:
        f.append("sanitizer report:\n" + r["sanitizer"][0])
    if not any(k.endswith(":452") for k in r["codes"]):
        f.append(f"no 452 seen at all: {r['codes']}")
    return f


def report_disk_full(r):
    if "skipped" in r:
        return f"disk full: skipped ({r['skipped']})"
    return (f"disk full: {r['attempted']} messages, {r['acked']} acknowledged, "
            f"lost {len(r['lost'])}, duplicated {r['dup_local'] + r['dup_remote']}; "
            f"end-of-DATA replies by phase {r['codes']}; {r['enospc_logged']} ENOSPC commit "
            f"failures logged; {r['seconds']} s")


# ---------------------------------------------------------------------------
# fsync evidence: strace shows data sync, rename, directory sync, then 250

STRACE_CALLS = "write,writev,sendto,sendmsg,fsync,fdatasync,syncfs,rename,renameat,renameat2,unlink,unlinkat"
LINE_RE = re.compile(r"^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$")


def parse_strace(text):
    """[(entry index, done index, time, call text)]: unfinished calls are
    joined with their resumption in the same thread."""
    events, pending = [], {}
    for i, ln in enumerate(text.splitlines()):
        m = LINE_RE.match(ln)
        if not m:
            continue
        tid, ts, rest = m.groups()
        if rest.startswith("<... "):
            if tid in pending:
                j, ts0, call = pending.pop(tid)
                events.append((j, i, ts0, call + " " + rest))
            continue
        if rest.endswith("<unfinished ...>"):
            pending[tid] = (i, ts, rest)
        else:
            events.append((i, i, ts, rest))
    events.sort()
    return events


def data_sync(events, fd_suffix, written, before, method):
    """The call that made the data written to a file durable: after its
    last write returned (index written) and done before index before,
    either an fsync/fdatasync of that file (strace -y shows its path ending
    in fd_suffix) or, with `sync filesystem`, a syncfs that started after
    the write. None if there is none."""
    for ev in events:
        c = ev[3]
        if ev[0] <= written or ev[1] >= before or "= 0" not in c:
            continue
        if c.startswith(("fdatasync(", "fsync(")) and f"{fd_suffix}>" in c:
            return ev
        if method == "filesystem" and c.startswith("syncfs("):
            return ev
    return None


def last_write(events, fd_suffix, before):
    """The last write to the file whose path ends in fd_suffix that
    started before index before, or None."""
    found = None
    for ev in events:
        if ev[0] < before and ev[3].startswith(("write(", "writev(")) and f"{fd_suffix}>" in ev[3]:
            found = ev
    return found


def check_order(events, qid, method="filesystem"):
    """None when, for qid, a data sync of tmp/ID (its fdatasync, or a
    syncfs that started after its last write) < rename tmp/ID -> queue/ID <
    fsync(queue/) < the write of "queued as ID"; else what is missing."""
    def first(pred, after):
        for ev in events:
            if ev[0] > after and pred(ev[3]):
                return ev
        return None

    ren = first(lambda c: c.startswith("rename") and f"tmp/{qid}" in c and f"queue/{qid}" in c
                and "= 0" in c, -1)
    if not ren:
        return f"no rename of tmp/{qid} into queue/"
    wrote = last_write(events, f"tmp/{qid}", ren[0])
    if not wrote:
        return f"no write of tmp/{qid} before its rename"
    if not data_sync(events, f"tmp/{qid}", wrote[1], ren[0], method):
        return (f"no data sync of tmp/{qid} ("
                + ("fdatasync" if method == "files" else "fdatasync or a later syncfs")
                + ") between its last write and its rename")
    dsync = first(lambda c: c.startswith("fsync(") and "/queue>" in c and "= 0" in c, ren[1])
    if not dsync:
        return f"no fsync of queue/ after the rename of {qid}"
    ack = first(lambda c: f"queued as {qid}" in c, -1)
    if not ack:
        return f"no write of the 250 for {qid}"
    if ack[0] < dsync[1]:
        return f"250 for {qid} written before the directory fsync returned"
    return None


def maildir_durable(events, qid, method="filesystem"):
    """The event of the fsync of new/ that made the Maildir copy of qid
    durable after its data sync and rename, or what is missing (a str)."""
    def first(pred, after):
        for ev in events:
            if ev[0] > after and pred(ev[3]):
                return ev
        return None

    body = first(lambda c: c.startswith("write(") and "/tmp/" in c and f"id {qid}" in c, -1)
    m = body and re.search(r"</([^>]*)/tmp/([^>/]+)>", body[3])
    if not m:
        return f"no Maildir write of {qid}"
    mdir, name = m.groups()
    ren = first(lambda c: c.startswith("rename") and f"{mdir}/new/{name}" in c and "= 0" in c,
                body[1])
    if not ren:
        return f"no rename into new/ of {qid}"
    wrote = last_write(events, f"{mdir}/tmp/{name}", ren[0])
    if not wrote or not data_sync(events, f"{mdir}/tmp/{name}", wrote[1], ren[0], method):
        return f"no data sync of the Maildir file of {qid} between its last write and its rename"
    dsync = first(lambda c: c.startswith("fsync(") and f"{mdir}/new>" in c and "= 0" in c, ren[1])
    if not dsync:
        return f"no fsync of {mdir}/new after the rename of {qid}"
    return dsync


def check_delivery_order(events, qid, method="filesystem"):
    """None when the Maildir copy of qid was synced, renamed into new/
    and new/ fsync'ed before queue/ID was unlinked; else what is wrong."""
    dsync = maildir_durable(events, qid, method)
    if isinstance(dsync, str):
        return dsync
    gone = next((ev for ev in events if ev[3].startswith("unlink")
                 and re.search(f"/queue/{qid}\"", ev[3])), None)
    if not gone:
        return f"queue/{qid} was not removed while traced"
    if gone[0] < dsync[1]:
        return f"queue/{qid} removed before its Maildir copy was durable"
    return None


def check_direct_order(events, qid, method="filesystem"):
    """The direct path (local mail only): None when the Maildir copy was
    synced, renamed and new/ fsync'ed before the 250 was written, and no
    queue file was made; else what is wrong."""
    dsync = maildir_durable(events, qid, method)
    if isinstance(dsync, str):
        return dsync
    ack = next((ev for ev in events if f"queued as {qid}" in ev[3]), None)
    if not ack:
        return f"no write of the 250 for {qid}"
    if ack[0] < dsync[1]:
        return f"250 for {qid} written before its Maildir copy was durable"
    if any(f"tmp/{qid}>" in ev[3] for ev in events):
        return f"{qid} went through the spool though all its recipients are local"
    return None


def attach_strace(pid, out, calls):
    """strace -f -tt -y on every thread of pid, writing to out: (tracer,
    None) once every thread is traced, or (None, why not)."""
    strace = shutil.which("strace")
    if not strace:
        return None, "strace is not installed"
    tracer = subprocess.Popen([strace, "-f", "-tt", "-y", "-s", "200", "-e", "trace=" + calls,
                               "-o", str(out), "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def traced():
        if tracer.poll() is not None:
            return True
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
            return all(re.search(r"TracerPid:\s+[1-9]", Path(f"/proc/{pid}/task/{t}/status").read_text())
                       for t in tasks)
        except OSError:
            return False
    wait_for(traced, 10, 0.02)
    if tracer.poll() is not None:
        return None, ("strace cannot attach: "
                      + tracer.stderr.read().decode(errors="replace").strip()[:300])
    return tracer, None


def run_fsync_check(workdir, messages=3, method="filesystem"):
    """strace's proof of the order, with `sync METHOD` (files or filesystem)."""
    strace = shutil.which("strace")
    if not strace:
        return {"skipped": "strace is not installed"}
    root = Path(workdir) / f"fsync-{method}"
    sink = Sink()
    p = make_petrel(root, sink.port, extra=f"sync {method}\n")
    out = root / "strace.out"
    tracer = None
    try:
        p.start()
        tracer, why = attach_strace(p.proc.pid, out, STRACE_CALLS)
        if tracer is None:
            return {"skipped": why}
        ids, direct = [], []
        for i in range(2 * messages):
            # even: local only (the direct path); odd: a remote recipient too (the spool)
            rcpts = [f"{USERS[i % 5]}@example.org"]
            if i % 2:
                rcpts.append(f"fsync{i}@{REMOTE_DOMAIN}")
            r = send_one(p, f"fsync{i}", rcpts, 10)
            if r.code != 250:
                return {"errors": [f"message {i} not accepted: {r!r}"], "ids": ids}
            (ids if i % 2 else direct).append(conftest.queued_id(r))
        wait_for(lambda: not queue_ids(p) and len(conftest.maildir_mails(p.maildir(USERS[0]))),
                 15, 0.05)
        time.sleep(0.2)
        tracer.send_signal(signal.SIGINT)  # detaches; petreld runs on
        tracer.wait(timeout=20)
        events = parse_strace(out.read_text(errors="replace"))
        errors = [e for q in ids for e in (check_order(events, q, method),
                                           check_delivery_order(events, q, method)) if e]
        errors += [e for q in direct if (e := check_direct_order(events, q, method))]
        syncfs = sum(1 for ev in events if ev[3].startswith("syncfs("))
        if method == "files" and syncfs:
            errors.append(f"sync files: {syncfs} syncfs calls")
        # One message at a time: with `sync filesystem` each data sync may be
        # the file's own fdatasync (a caller alone) or a syncfs; both are
        # checked above. test_sync.py makes concurrent callers share syncfs.
        return {"errors": errors, "ids": ids, "direct": direct, "events": len(events),
                "syncfs": syncfs}
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
            tracer.wait(timeout=10)
        if p.proc is not None:
            p.stop()
        sink.stop()


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--build", default=os.environ.get("PETREL_BUILD", "build"),
                    help="directory with petreld (default build, or $PETREL_BUILD)")
    ap.add_argument("--workdir", help="keep everything here (default: a temporary directory, "
                    "removed unless something failed)")
    ap.add_argument("--skip-disk-full", action="store_true")
    ap.add_argument("--skip-fsync", action="store_true")
    args = ap.parse_args()
    os.environ["PETREL_BUILD"] = str(Path(args.build).resolve())
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="petrel-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"crash: build {args.build}, seed {seed}, work in {work}")
    failures, skipped = [], []
    try:
        if args.cycles > 0:
            r = run_cycles(work, args.cycles, seed, args.senders)
            log(report_cycles(r))
            failures += cycle_failures(r)
        if not args.skip_disk_full:
            d = run_disk_full(work, seed)
            log(report_disk_full(d))
            if "skipped" in d:
                skipped.append("disk full")
            else:
                failures += ["disk full: " + f for f in disk_full_failures(d)]
        for method in ([] if args.skip_fsync else ["filesystem", "files"]):
            f = run_fsync_check(work, method=method)
            sync = "fdatasync" if method == "files" else "fdatasync or syncfs"
            if "skipped" in f:
                log(f"fsync check (sync {method}): skipped ({f['skipped']})")
                skipped.append(f"fsync ({method})")
            else:
                log(f"fsync check (sync {method}): {len(f['ids'])} queued and "
                    f"{len(f['direct'])} direct messages, {f['events']} traced calls, "
                    + (f"queued: data {sync}, rename, queue/ fsync, then 250; Maildir {sync}, "
                       "rename, new/ fsync, then the queue file removed; direct: Maildir "
                       f"{sync}, rename, new/ fsync, then 250, no queue file: in that order"
                       if not f["errors"] else "FAILED"))
                failures += [f"fsync ({method}): " + e for e in f["errors"]]
    except BaseException as e:  # pytest.fail from the harness is a BaseException
        failures.append(f"{type(e).__name__}: {e}")
        raise
    finally:
        for f in failures:
            log("FAIL " + f)
        if failures:
            log(f"crash: kept {work} for inspection")
        elif not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    log("crash: " + ("FAILED" if failures else "ok") + (f" (skipped: {', '.join(skipped)})"
                                                         if skipped else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
