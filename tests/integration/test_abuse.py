"""Abuse resistance (docs/security.md): per-address connection and rate
limits, slowloris, password guessing, bounded memory under hostile input,
and the privilege drop (`user NAME`) with the modes of the spool, the
control socket and delivered mail."""
import base64
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (HOSTNAME, Petrel, SMTPConn, build_dir, expect, message, petreld_env,
                      petreld_path, queued_id, wait_until)
from test_auth import passwd_text, submission_petrel  # noqa: F401 (a fixture)

TEST_USER = "petrel-test"


def refused_421(c, what="connections"):
    """The 421 4.7.0 greeting of a refused connection, and the close."""
    expect(c.greeting, 421, "4.7.0")
    assert c.greeting.text == (f"4.7.0 {HOSTNAME} too many {what} from your address, "
                               "try again later"), c.greeting
    assert c.wait_closed(), "a refused connection must be closed"


def transaction(port, subject, source=None, rcpt="alice@example.org"):
    with SMTPConn(port, source=source) as c:
        expect(c.greeting, 220)
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
        qid = queued_id(c.data(message(subject, to=rcpt) + b".\r\n", 250, "2.0.0"))
        c.cmd("QUIT", 221)
        return qid


# ---------------------------------------------------------------------------
# per-address limits

def test_connections_per_ip(petrel_factory):
    p = petrel_factory(extra="limit connections-per-ip 3\n")
    held = [SMTPConn(p.port) for _ in range(3)]
    try:
        for c in held:
            expect(c.greeting, 220)
        with SMTPConn(p.port) as c:  # the 4th from 127.0.0.1
            refused_421(c)
        # the admitted sessions are served as before
        held[0].ehlo()
        held[0].cmd("MAIL FROM:<s@example.net>", 250)
        held[0].cmd("RCPT TO:<bob@example.org>", 250)
        held[0].data(message("held-session", to="bob@example.org") + b".\r\n", 250, "2.0.0")
        # another address has its own count
        transaction(p.port, "from-127.0.0.2", source="127.0.0.2")
        # a session of 127.0.0.1 ends: its slot is free again
        held[1].cmd("QUIT", 221)
        assert held[1].wait_closed()
        transaction(p.port, "after-quit")
    finally:
        for c in held:
            c.close()
    assert "refusing [127.0.0.1]: limit connections-per-ip 3 reached" in p.stderr()
    assert "refusing [127.0.0.2]" not in p.stderr()
    assert sorted(m.first("Subject") for m in p.wait_mails("alice", 2)) == [
        "after-quit", "from-127.0.0.2"]
    assert p.wait_mails("bob")[0].first("Subject") == "held-session"


def test_connection_rate(petrel_factory):
    # 3 a minute: the start-up probe took one; a new one every 20 s
    p = petrel_factory(extra="limit connection-rate 3\n")
    admitted = 0
    for _ in range(10):
        with SMTPConn(p.port) as c:
            if c.greeting.code == 421:
                refused_421(c)
                break
            expect(c.greeting, 220)
            admitted += 1
            c.cmd("QUIT", 221)
    else:
        pytest.fail("10 connections in a row were all admitted with connection-rate 3")
    assert admitted >= 1
    assert "refusing [127.0.0.1]: over limit connection-rate 3 per minute" in p.stderr()
    # the rate is per address: 127.0.0.2 is served
    transaction(p.port, "other-address", source="127.0.0.2")
    assert p.wait_mails("alice")[0].first("Subject") == "other-address"


def test_message_rate(petrel_factory):
    p = petrel_factory(extra="limit message-rate 2\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd("RSET", 250)
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(message("within-rate") + b".\r\n", 250, "2.0.0")
        r = c.cmd("MAIL FROM:<s@example.net>")
        expect(r, 421, "4.7.0", "(third MAIL within a minute)")
        assert "too many messages from your address" in r.text, r
    # the rate belongs to the address, not to the session
    with SMTPConn(p.port) as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@example.net>"), 421, "4.7.0")
    # another address is served
    transaction(p.port, "other-address", source="127.0.0.2", rcpt="bob@example.org")
    assert "refusing MAIL from [127.0.0.1]: over limit message-rate 2 per minute" in p.stderr()
    assert p.wait_mails("alice")[0].first("Subject") == "within-rate"
    assert p.wait_mails("bob")[0].first("Subject") == "other-address"


def test_limits_off_with_zero(petrel_factory):
    p = petrel_factory(extra="limit connections-per-ip 0\nlimit connection-rate 0\n"
                             "limit message-rate 0\n")
    held = [SMTPConn(p.port) for _ in range(60)]  # more than the default 50
    try:
        assert all(c.greeting.code == 220 for c in held)
        c = held[-1]
        c.ehlo()
        for _ in range(20):
            c.cmd("MAIL FROM:<s@example.net>", 250)
            c.cmd("RSET", 250)
    finally:
        for c in held:
            c.close()


def test_default_connections_per_ip_is_50(petrel):
    held = []
    try:
        for _ in range(50):
            held.append(SMTPConn(petrel.port))
            expect(held[-1].greeting, 220)
        with SMTPConn(petrel.port) as c:
            refused_421(c)
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------------------
# slow clients and password guessing

@pytest.mark.deadline(90)
def test_slowloris_beside_a_normal_client(petrel_factory):
    """Clients that dribble one byte a second hold only their own sessions."""
    p = petrel_factory()
    stop = threading.Event()
    results = []

    def dribble(n):
        try:
            with SMTPConn(p.port, timeout=60) as c:
                line = f"EHLO slow{n}.example.net\r\n".encode()
                sent = 0
                while not stop.is_set() and sent < len(line) - 2:
                    c.send(line[sent:sent + 1])
                    sent += 1
                    time.sleep(1)
                c.send(line[sent:])
                results.append(c.reply().code)
        except Exception as e:  # reported below
            results.append(e)

    slow = [threading.Thread(target=dribble, args=(n,), daemon=True) for n in range(5)]
    for t in slow:
        t.start()
    try:
        time.sleep(2)  # every dribbler is mid-command
        for i in range(3):
            transaction(p.port, f"fast-{i}")
    finally:
        stop.set()
        for t in slow:
            t.join(30)
    assert results == [250] * 5, results
    assert sorted(m.first("Subject") for m in p.wait_mails("alice", 3)) == [
        "fast-0", "fast-1", "fast-2"]


def test_password_guessing_refuses_the_address_on_every_listener(petrel_factory, passwd_text):
    # test_auth.py covers the 421 and the refusal on the submission port;
    # the throttle belongs to the address, so the MX port refuses it too
    p = submission_petrel(petrel_factory, passwd_text)
    p.extra += "limit auth-failures 2\nauth-throttle 1m\n"
    p.write_config()
    p.start()
    bad = base64.b64encode(b"\0alice\0wrong").decode()
    with SMTPConn(p.sub_port) as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {bad}", 535, "5.7.8")
        c.cmd(f"AUTH PLAIN {bad}", 535, "5.7.8")
        expect(c.reply(), 421, "4.7.0")
        assert c.wait_closed()
    with SMTPConn(p.port) as c:
        expect(c.greeting, 421, "4.7.0")
        assert "too many authentication failures from your address" in c.greeting.text
        assert c.wait_closed()
    transaction(p.port, "not-throttled", source="127.0.0.2")
    assert "refusing [127.0.0.1]: throttled after repeated authentication failures" in p.stderr()


# ---------------------------------------------------------------------------
# memory per session is bounded whatever the client sends

def vm_rss_kib(pid):
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


MIB = 1024 * 1024
HOSTILE = 20 * MIB


@pytest.mark.deadline(180)
def test_memory_bounded_under_hostile_input(petrel_factory, monkeypatch):
    """Three hostile sessions at once: a 20 MB line without a newline, 20 MB
    of DATA past a 1 MiB message-size, 5000 RCPTs. Each session may hold at
    most its message (message-size), its unconsumed input (256 KiB) and its
    unread replies (64 KiB plus one read's worth): about 1.5 MiB, so 3
    sessions stay far below the 16 MiB allowed over the warmed-up baseline,
    while holding any one hostile stream would take 20 MiB."""
    if "asan" in str(build_dir()):
        # ASan keeps freed blocks in a quarantine (256 MB by default) to find
        # use-after-free: RSS would measure the quarantine, not petreld.
        monkeypatch.setenv("ASAN_OPTIONS",
                           os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
                           + ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64")
    p = petrel_factory(extra="limit message-size 1M\n")
    pid = p.proc.pid
    for i in range(3):  # warm up: a delivery, so the baseline includes its buffers
        transaction(p.port, f"warm-{i}")
    p.wait_mails("alice", 3)
    base = vm_rss_kib(pid)
    peak = [base]
    done = threading.Event()
    progress = {"line": 0, "data": 0, "rcpt": 0}
    errors = []

    def monitor():
        while not done.is_set():
            peak[0] = max(peak[0], vm_rss_kib(pid))
            time.sleep(0.05)

    def long_line():
        with SMTPConn(p.port, timeout=30) as c:
            c.ehlo()
            chunk = b"NOOP " + b"y" * (64 * 1024 - 5)
            while progress["line"] < HOSTILE:
                c.send(chunk)
                progress["line"] += len(chunk)

    def endless_data():
        with SMTPConn(p.port, timeout=30) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<s@example.net>", 250)
            c.cmd("RCPT TO:<bob@example.org>", 250)
            c.cmd("DATA", 354)
            chunk = (b"x" * 78 + b"\r\n") * 800
            while progress["data"] < HOSTILE:
                c.send(chunk)
                progress["data"] += len(chunk)
            c.send(b".\r\n")
            expect(c.reply(), 552, "5.3.4")

    def many_rcpts():
        with SMTPConn(p.port, timeout=30) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<s@example.net>", 250)
            codes = []
            for _ in range(50):  # pipelined, 100 at a time
                c.send(b"".join(b"RCPT TO:<bob@example.org>\r\n" for _ in range(100)))
                codes += [c.reply().code for _ in range(100)]
                progress["rcpt"] += 100
            assert codes.count(250) == 1000 and codes.count(452) == 4000, set(codes)
            c.cmd("RSET", 250)

    def run(fn):
        try:
            fn()
        except Exception as e:  # reported below
            errors.append((fn.__name__, e))

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    hostile = [threading.Thread(target=run, args=(fn,), daemon=True)
               for fn in (long_line, endless_data, many_rcpts)]
    for t in hostile:
        t.start()
    try:
        # a normal client is served while the hostile ones are mid-stream
        wait_until(lambda: progress["line"] > MIB and progress["data"] > MIB, 60,
                   what="hostile clients under way")
        transaction(p.port, "normal-beside-hostile", rcpt="carol@example.org")
        for t in hostile:
            t.join(120)
    finally:
        done.set()
        mon.join(5)
    assert not errors, errors
    assert progress["rcpt"] == 5000
    assert progress["line"] >= HOSTILE and progress["data"] >= HOSTILE
    growth = peak[0] - base
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB (baseline {base} KiB)"
    assert p.wait_mails("carol")[0].first("Subject") == "normal-beside-hostile"
    assert p.mails("bob") == []  # the oversized message was refused
    # the long line was discarded, not kept: the session is still in sync
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("NOOP", 250)


def test_data_timeout_closes_a_stalled_transfer(petrel_factory):
    p = petrel_factory(extra="timeout data 1s\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.cmd("DATA", 354)
        c.send(b"Subject: stalled\r\n\r\nhalf a li")
        assert c.wait_closed(20), "a DATA transfer that stalls must be closed"
        assert c.buf.startswith(b"421 4.4.2"), c.buf
    assert p.mails("alice") == []
    transaction(p.port, "after-stall")


def test_command_timeout_mid_line(petrel_factory):
    p = petrel_factory(extra="timeout command 1s\n")
    with SMTPConn(p.port) as c:
        c.send(b"EHLO half")
        assert c.wait_closed(20), "a command line that stalls must be closed"
        assert c.buf.startswith(b"421 4.4.2"), c.buf


# ---------------------------------------------------------------------------
# privilege drop: `user NAME`

def need_root():
    if os.geteuid() != 0:
        pytest.skip("the privilege drop needs root: run the suite as root")


@pytest.fixture(scope="module")
def test_user():
    """The unprivileged account petreld drops to; created when missing."""
    need_root()
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip(f"no user {TEST_USER} and no useradd to create it")
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", TEST_USER],
                       check=True, capture_output=True, timeout=30)
        pw = pwd.getpwnam(TEST_USER)
    return pw


@pytest.fixture
def open_root():
    """A directory every user may traverse: pytest's tmp_path is 0700 root,
    which the dropped daemon could not reach its spool through."""
    d = Path(tempfile.mkdtemp(prefix="petrel-abuse-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dropping(open_root, test_user):
    """make(**kw) -> a Petrel with `user petrel-test`, not started."""
    made = []

    def make(**kw):
        p = Petrel(open_root / f"petrel{len(made)}", **kw)
        p.extra = f"user {TEST_USER}\n" + p.extra
        p.write_config()
        p.mail.mkdir()
        os.chown(p.mail, test_user.pw_uid, test_user.pw_gid)  # Maildirs are the user's
        made.append(p)
        return p

    yield make
    reports = []
    for p in made:
        p.stop()
        reports += p.sanitizer_reports()
    assert not reports, reports[0]


def proc_status(pid):
    out = {}
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = ln.partition(":")
        out[k] = v.split()
    return out


def assert_mode(path, mode, uid):
    st = os.lstat(path)
    assert stat.S_IMODE(st.st_mode) == mode, f"{path}: mode {oct(st.st_mode)}, want {oct(mode)}"
    assert st.st_uid == uid, f"{path}: owner {st.st_uid}, want {uid}"


def run_as(user, argv, **kw):
    """argv as another user (uid, gid and groups), for the refusals."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--clear-groups", *argv], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL, **kw)


@pytest.mark.deadline(90)
def test_privilege_drop(dropping, test_user):
    uid, gid = test_user.pw_uid, test_user.pw_gid
    p = dropping(trusted=["127.0.0.0/8"])
    # a spool from an earlier run as root: too open, with a root-owned file
    (p.spool / "corrupt").mkdir(parents=True)
    p.spool.chmod(0o755)
    (p.spool / "corrupt" / "leftover").write_bytes(b"x")
    p.start()

    status = proc_status(p.proc.pid)
    assert status["Uid"] == [str(uid)] * 4, status["Uid"]
    assert status["Gid"] == [str(gid)] * 4, status["Gid"]
    assert int(status["CapEff"][0], 16) == 0 and int(status["CapPrm"][0], 16) == 0, status
    assert status["Groups"] in ([], [str(gid)]), status["Groups"]
    tasks = list(Path(f"/proc/{p.proc.pid}/task").iterdir())
    assert len(tasks) > 1, "the worker threads are running"
    for task in tasks:  # every thread
        m = re.search(r"^Uid:\s+(.*)$", (task / "status").read_text(), re.M)
        assert m.group(1).split() == [str(uid)] * 4, (task, m.group(0))
    assert f"running as user {TEST_USER} (uid {uid}, gid {gid})" in p.stderr()

    # mail is delivered as the user, 0600; a relay message stays queued
    transaction(p.port, "dropped")
    [m] = p.wait_mails("alice")
    assert_mode(m.path, 0o600, uid)
    transaction(p.port, "stays-queued", rcpt="someone@remote.test")
    wait_until(p.queue_files, 15, what="the relay message in the queue")

    assert_mode(p.spool, 0o700, uid)
    for sub in ("tmp", "queue", "corrupt", "hold"):
        assert_mode(p.spool / sub, 0o700, uid)
    assert os.lstat(p.spool / "corrupt" / "leftover").st_uid == uid
    for f in p.queue_files():
        assert_mode(f, 0o600, uid)
    sock = p.spool / "control.sock"
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert_mode(sock, 0o600, uid)

    # root keeps the queue tools; anyone else is told permission denied
    tool = str(build_dir() / "petrel")
    r = subprocess.run([tool, "-c", str(p.conf), "flush"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([tool, "-c", str(p.conf), "queue"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "someone@remote.test" in r.stdout, r
    for cmd in ("flush", "queue"):
        r = run_as("nobody", [tool, "-c", str(p.conf), cmd])
        assert r.returncode != 0, r
        assert "Permission denied" in r.stderr, r.stderr
        assert "not running" not in r.stderr, r.stderr
        if cmd == "flush":  # over the control socket: say who may use it
            assert "run this as root or as the user" in r.stderr, r.stderr

    # a SIGHUP reload works without root
    p.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in p.stderr(), 10, what="the reload")
    transaction(p.port, "after-reload", rcpt="bob@example.org")
    p.wait_mails("bob")


def test_user_needs_root(dropping):
    p = dropping()
    r = run_as("nobody", [str(petreld_path()), "-c", str(p.conf)], env=petreld_env())
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert (f"user {TEST_USER}: petreld must be started as root or as {TEST_USER}"
            in r.stderr), r.stderr
    assert not p.spool.exists(), "nothing is created before the check"


@pytest.mark.deadline(90)
def test_started_as_the_user_already(dropping, test_user):
    p = dropping()
    p.spool.mkdir()
    os.chown(p.spool, test_user.pw_uid, test_user.pw_gid)
    proc = subprocess.Popen(["setpriv", f"--reuid={test_user.pw_uid}",
                             f"--regid={test_user.pw_gid}", "--clear-groups",
                             str(petreld_path()), "-c", str(p.conf)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(p.root / "petreld.0.stderr", "wb"),
                            env=petreld_env(), start_new_session=True)
    p.proc = proc
    p.logs.append(p.root / "petreld.0.stderr")
    try:
        p.wait_ready()
        assert proc_status(proc.pid)["Uid"] == [str(test_user.pw_uid)] * 4
        transaction(p.port, "as-user")
        assert_mode(p.wait_mails("alice")[0].path, 0o600, test_user.pw_uid)
    finally:
        p.stop()
    assert "running as root" not in p.stderr()


def test_root_without_user_is_warned(petrel):
    need_root()
    assert "running as root: add `user NAME`" in petrel.stderr()
