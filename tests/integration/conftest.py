"""
Integration-test harness: starts the real petreld on 127.0.0.1 with a free
port, a temp spool and a generated config, and gives tests a raw SMTP
client and Maildir readers. $PETREL_BUILD (default "build", relative to the
repository) selects the binaries; under build/asan the sanitizer options are
set and any sanitizer report in petreld's stderr fails the test.
"""
import email.utils
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOSTNAME = "mx.example.org"
DOMAIN = "example.org"
DEFAULT_USERS = ["alice", "bob", "carol", "josé"]
DEFAULT_ALIASES = {
    "postmaster": ["alice"],
    "abuse": ["alice"],
    "sales": ["alice", "bob"],
    "team": ["alice", "bob", "carol"],
    "équipe": ["josé", "carol"],
}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
START_TIMEOUT = 20.0   # seconds until the port accepts (ASan builds start slowly)
STOP_TIMEOUT = 25.0    # SIGTERM grace before SIGKILL (config: timeout shutdown 10s)
DEFAULT_DEADLINE = 60  # per test, see pytest_runtest_call


# ---------------------------------------------------------------------------
# per-test hard deadline: a hung test fails instead of hanging `make test`

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    mark = item.get_closest_marker("deadline")
    limit = int(mark.args[0]) if mark else DEFAULT_DEADLINE

    def expired(signum, frame):
        raise TimeoutError(f"test exceeded its {limit} s deadline")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def build_dir():
    b = Path(os.environ.get("PETREL_BUILD", "build"))
    return b if b.is_absolute() else REPO / b


def petreld_path():
    return build_dir() / "petreld"


def petreld_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    return env


_ports_given = set()


def free_port(host="127.0.0.1"):
    """A port nothing listens on now, never one this process was given
    before: the kernel may hand the same free port to two calls in a row,
    and a test that asks for two listeners would then get one port twice."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no fresh free port in 100 tries")


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until true; returns its value or raises AssertionError."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# raw SMTP client

ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def status(self):
        """Enhanced status code of the last line ("2.1.0"), or None."""
        m = ENH_RE.match(self.lines[-1]) if self.lines else None
        return ".".join(m.groups()) if m else None

    def every_line_has_status(self):
        for ln in self.lines:
            m = ENH_RE.match(ln)
            if not m or m.group(1) != str(self.code)[0]:
                return False
        return True

    def __repr__(self):
        return " | ".join(f"{self.code} {ln}" for ln in self.lines) or f"{self.code}"


class Closed(Exception):
    pass


class SMTPConn:
    """A line-oriented SMTP client over a plain socket, for exact replies."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10.0, greet=True):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=src)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed("connection closed by petreld")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 100000:
                raise AssertionError("reply line without CRLF")
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def reply(self):
        lines, code = [], None
        while True:
            ln = self.line()
            assert len(ln) >= 3 and ln[:3].isdigit(), f"malformed reply line {ln!r}"
            c = int(ln[:3])
            assert code is None or c == code, f"code changed inside a reply: {ln!r}"
            code = c
            sep = ln[3:4]
            lines.append(ln[4:])
            if sep in ("", " "):
                return Reply(code, lines)
            assert sep == "-", f"malformed reply line {ln!r}"

    def cmd(self, line, code=None, status=None):
        self.send(line + "\r\n")
        r = self.reply()
        if code is not None:
            expect(r, code, status, f"after {line[:80]!r}")
        return r

    def ehlo(self, name="client.example.net"):
        return self.cmd(f"EHLO {name}", 250)

    def data(self, payload, code=250, status=None):
        """DATA, then payload (bytes; must end with CRLF.CRLF itself)."""
        self.cmd("DATA", 354)
        self.send(payload)
        r = self.reply()
        if code is not None:
            expect(r, code, status, "after end of data")
        return r

    def wait_closed(self, timeout=10.0):
        """True when the peer closes; data that arrives meanwhile is kept."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def expect(r, code, status=None, where=""):
    assert r.code == code, f"expected {code} {status or ''} {where}, got {r!r}"
    if status is not None:
        assert r.status == status, f"expected {code} {status} {where}, got {r!r}"


def queued_id(r):
    m = re.search(r"queued as (\S+)", r.text)
    assert m, f"no 'queued as QUEUEID' in {r!r}"
    return m.group(1)


def message(subject, body="hello\r\n", sender="sender@example.net", to="alice@example.org",
            headers=()):
    """An RFC 5322 message as bytes, CRLF line endings, without the final dot."""
    hdr = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}",
           f"Date: {email.utils.formatdate()}", f"Message-ID: <{subject}.{time.time_ns()}@test>"]
    hdr.extend(headers)
    text = "\r\n".join(hdr) + "\r\n\r\n" + body
    return text.encode("utf-8") if isinstance(text, str) else text


def send_raw(port, mail_from, rcpts, msg, ehlo="client.example.net", mail_params=""):
    """One transaction over a raw socket; msg without the final dot, CRLF
    endings, not yet dot-stuffed. Returns the queue id."""
    stuffed = re.sub(rb"(^|\r\n)\.", rb"\1..", msg)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    with SMTPConn(port) as c:
        expect(c.greeting, 220)
        c.ehlo(ehlo)
        c.cmd(f"MAIL FROM:<{mail_from}>{mail_params}", 250, "2.1.0")
        for rc in rcpts:
            c.cmd(f"RCPT TO:<{rc}>", 250, "2.1.5")
        r = c.data(stuffed + b".\r\n", 250, "2.0.0")
        c.cmd("QUIT", 221)
        return queued_id(r)


# ---------------------------------------------------------------------------
# Maildir

class Mail:
    def __init__(self, path, raw):
        self.path = path
        self.raw = raw
        head, sep, body = raw.partition(b"\n\n")
        self.head_raw = head
        self.body = body
        self.headers = []  # (name, value) in order, folded lines joined
        for ln in head.decode("utf-8", "replace").split("\n"):
            if ln[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + ln.strip())
            elif ":" in ln:
                n, v = ln.split(":", 1)
                self.headers.append((n, v.strip()))
            else:
                self.headers.append((ln, None))

    def get(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def first(self, name):
        v = self.get(name)
        return v[0] if v else None

    def __repr__(self):
        return f"<Mail {self.path.name} {self.raw[:200]!r}>"


def maildir_mails(path):
    """Every message in new/ and cur/ of a Maildir, oldest first."""
    path = Path(path)
    out = []
    for sub in ("new", "cur"):
        d = path / sub
        if not d.is_dir():
            continue
        for f in d.iterdir():
            if f.is_file():
                out.append(f)
    out.sort(key=lambda f: (f.stat().st_mtime_ns, f.name))
    return [Mail(f, f.read_bytes()) for f in out]


# ---------------------------------------------------------------------------
# the daemon

class Petrel:
    """One petreld with its own directory: petrel.conf, tables, spool, mail/."""

    def __init__(self, root, *, users=None, aliases=None, trusted=(), rules=None,
                 extra="", port=None, listen="127.0.0.1"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(listen)
        self.listen = listen
        self.conf = self.root / "petrel.conf"
        self.spool = self.root / "spool"
        self.mail = self.root / "mail"
        self.users = list(DEFAULT_USERS if users is None else users)
        self.aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        self.trusted = list(trusted)
        self.rules = rules
        self.extra = extra
        self.proc = None
        self.runs = 0
        self.logs = []
        self.returncodes = []
        self.write_config()

    # -- files

    def write_tables(self):
        (self.root / "users").write_text(
            "# local mailboxes\n" + "".join(u + "\n" for u in self.users), encoding="utf-8")
        (self.root / "aliases").write_text(
            "# name: target, target\n"
            + "".join(f"{k}: {', '.join(v)}\n" for k, v in self.aliases.items()),
            encoding="utf-8")
        (self.root / "trusted").write_text(
            "# networks allowed to relay\n" + "".join(n + "\n" for n in self.trusted),
            encoding="utf-8")

    def config_text(self):
        rules = self.rules
        if rules is None:
            rules = ('match for domain "example.org" action "local"\n'
                     'match from src <trusted> for any action "remote"\n'
                     'match from local for any action "remote"\n')
        return (
            "# generated by tests/integration/conftest.py\n"
            f"hostname {HOSTNAME}\n"
            'spool "spool"\n'
            f"listen on {self.listen} port {self.port}\n"
            'table users file:"users"\n'
            'table aliases file:"aliases"\n'
            'table trusted file:"trusted"\n'
            'action "local" maildir "mail/%{user}" users <users> aliases <aliases>\n'
            'action "remote" relay\n'
            + rules
            + ("" if "timeout shutdown" in self.extra else "timeout shutdown 10s\n")
            + ("" if "recipient-delimiter" in self.extra else 'recipient-delimiter "+"\n')
            # Never the machine's resolver: port 9 on loopback answers nothing,
            # so relay recipients stay deferred unless a test runs its own DNS.
            + ("" if "resolver" in self.extra else "resolver 127.0.0.1 port 9\n")
            + self.extra
        )

    def write_config(self):
        self.write_tables()
        self.conf.write_text(self.config_text(), encoding="utf-8")

    # -- process

    def start(self, wait=True):
        binary = petreld_path()
        if not binary.exists():
            pytest.fail(f"{binary} does not exist: run `make all` (PETREL_BUILD={build_dir()})")
        log = self.root / f"petreld.{self.runs}.stderr"
        self.runs += 1
        self.logs.append(log)
        with open(log, "wb") as err, open(self.root / "petreld.stdout", "ab") as out:
            self.proc = subprocess.Popen([str(binary), "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=petreld_env(),
                                         start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        end = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"petreld exited with {self.proc.returncode} at start:\n{self.stderr()}")
            try:
                s = socket.create_connection((self.listen, self.port), timeout=5)
            except OSError:
                if time.monotonic() > end:
                    pytest.fail(f"petreld did not listen on {self.port}:\n{self.stderr()}")
                time.sleep(0.02)
                continue
            # a polite probe: read the greeting, QUIT, wait for close
            try:
                s.settimeout(5)
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.sendall(b"QUIT\r\n")
                while s.recv(4096):
                    pass
            except OSError:
                pass
            finally:
                s.close()
            return

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.running(), "petreld is not running"
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.returncodes.append(rc)
        return rc

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status
        (negative signal number if killed), or None if not running."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            rc = self.proc.returncode
        else:
            os.kill(self.proc.pid, signal.SIGTERM)
            rc = self.wait_exit(timeout)
            if rc is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                rc = "killed after SIGTERM timeout"
        self.proc = None
        return rc

    def kill9(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def reload(self, **changes):
        """Rewrite config/tables with changes and send SIGHUP."""
        for k, v in changes.items():
            setattr(self, k, v)
        self.write_config()
        self.signal(signal.SIGHUP)

    # -- output

    def stderr(self):
        return "".join(log.read_text("utf-8", "replace") for log in self.logs if log.exists())

    def sanitizer_reports(self):
        """Each sanitizer report in stderr, with up to 30 lines of its stack."""
        lines = self.stderr().splitlines()
        out = []
        for i, ln in enumerate(lines):
            if any(m in ln for m in SANITIZER_MARKS):
                out.append("\n".join(lines[i:i + 30]))
        return out

    # -- mail and queue

    def maildir(self, user):
        return self.mail / user

    def mails(self, user):
        return maildir_mails(self.maildir(user))

    def all_mails(self):
        if not self.mail.is_dir():
            return []
        out = []
        for d in sorted(self.mail.iterdir()):
            out.extend(maildir_mails(d))
        return out

    def wait_mails(self, user, count=1, timeout=15):
        wait_until(lambda: len(self.mails(user)) >= count, timeout,
                   what=f"{count} message(s) in {user}'s Maildir")
        return self.mails(user)

    def queue_files(self):
        q = self.spool / "queue"
        if not q.is_dir():
            return []
        return [p for p in q.rglob("*") if p.is_file()]

    def queue_contains(self, token):
        tok = token.encode() if isinstance(token, str) else token
        return any(tok in p.read_bytes() for p in self.queue_files() if p.exists())

    def wait_queue_empty(self, timeout=15):
        wait_until(lambda: not self.queue_files(), timeout, what="an empty spool queue")

    def tmp_leftovers(self):
        """Files left in tmp/ of any Maildir."""
        if not self.mail.is_dir():
            return []
        return [f for d in self.mail.iterdir() for f in (d / "tmp").glob("*")]


@pytest.fixture
def petrel_factory(tmp_path):
    """make(**kwargs) -> a started Petrel (kwargs as Petrel()); every daemon
    is stopped at teardown and its stderr checked for sanitizer reports."""
    made = []

    def make(start=True, **kw):
        p = Petrel(tmp_path / f"petrel{len(made)}", **kw)
        made.append(p)
        if start:
            p.start()
        return p

    yield make
    reports = []
    for p in made:
        p.stop()
        reports += p.sanitizer_reports()
    if reports:
        pytest.fail(f"{len(reports)} sanitizer report(s) in petreld stderr; the first:\n"
                    + reports[0], pytrace=False)


@pytest.fixture
def petrel(petrel_factory):
    return petrel_factory()
