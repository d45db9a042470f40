"""
The sendmail command: -t with Bcc, the "." line and -i, header fixes, the
trace field, -f/-F, refused recipients and their sysexits codes, -bs, storing
while petreld is down (delivered at its next start), and the "pickup" it
sends to a running daemon (against the real daemon once it serves the
control socket, and against a fake one here).
"""
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import SMTPConn, build_dir, petreld_env, wait_until

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOPERM = 64, 65, 67, 77


def run_tool(name, *args, input=b"", timeout=30):
    return subprocess.run([str(build_dir() / name), *args], input=input, capture_output=True,
                          env=petreld_env(), timeout=timeout)


def sendmail(p, *args, input=b""):
    """The sendmail symlink, configured with -C."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    return run_tool("sendmail", "-C", str(p.conf), *args, input=input)


def queued(p):
    """Queue ids in <spool>/queue."""
    q = p.spool / "queue"
    return sorted(f.name for f in q.iterdir() if re.fullmatch(r"[0-9A-F]{16}", f.name)) \
        if q.is_dir() else []


def stored_message(p, qid):
    """The message part of a queue file (after the envelope), as bytes."""
    raw = (p.spool / "queue" / qid).read_bytes()
    return raw.split(b"\n\n", 1)[1]


def control_wired(p):
    return (p.spool / "control.sock").exists()


def require_control(p):
    if not control_wired(p):
        pytest.skip("petreld does not serve <spool>/control.sock yet (daemon wiring pending)")


def bind_unix(sock, path):
    """bind() even when path is longer than sun_path, through the directory's fd."""
    path = str(path)
    if len(path.encode()) < 100:
        sock.bind(path)
        return
    d = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        sock.bind(f"/proc/self/fd/{d}/{os.path.basename(path)}")
    finally:
        os.close(d)


class FakeDaemon:
    """Listens on <spool>/control.sock like petreld; records each request line
    and answers reply(line)."""

    def __init__(self, path, reply=lambda line: "ok fine"):
        self.path = path
        self.reply = reply
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bind_unix(self.sock, path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(5)
                data = b""
                try:
                    while b"\n" not in data:
                        chunk = c.recv(1024)
                        if not chunk:
                            break
                        data += chunk
                    line = data.decode("utf-8", "replace")
                    self.requests.append(line)
                    c.sendall((self.reply(line) + "\n").encode())
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@pytest.fixture
def stopped(petrel_factory):
    """A configured petreld that is not running."""
    return petrel_factory(start=False)


# ---------------------------------------------------------------------------
# with petreld down: the message waits in the spool

def test_stored_while_down_then_delivered_at_start(stopped):
    p = stopped
    r = sendmail(p, "alice", input="Subject: while down\n\nhello\n")
    assert r.returncode == 0, r.stderr
    [qid] = queued(p)
    assert p.maildir("alice").exists() is False
    p.start()
    [m] = p.wait_mails("alice")
    assert m.first("Subject") == "while down"
    assert m.body == b"hello\n"
    p.wait_queue_empty()


def test_t_recipients_bcc_removed_and_headers_added(stopped):
    p = stopped
    msg = ("To: alice, Carol <carol@example.org>\n"
           "Cc: sales\n"
           "Bcc: bob@example.org,\n"
           " josé\n"
           "Subject: -t\n"
           "\n"
           "Bcc: this line is body text\n")
    r = sendmail(p, "-t", input=msg)
    assert r.returncode == 0, r.stderr
    [qid] = queued(p)
    env = (p.spool / "queue" / qid).read_text("utf-8").split("\n\n", 1)[0]
    rcpts = [ln.split()[4] for ln in env.splitlines() if ln.startswith("rcpt ")]
    # sales = alice + bob: one copy each
    assert sorted(rcpts) == ["alice@example.org", "bob@example.org", "carol@example.org",
                             "josé@example.org"], env
    body = stored_message(p, qid)
    head = body.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in head and not head.startswith(b"Bcc:"), head
    assert " josé".encode() not in head, "the folded Bcc line must go too"
    assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n", head), head
    assert re.search(rb"\r\nMessage-ID: <" + qid.encode() + rb"@mx\.example\.org>\r\n", head), head
    assert re.search(rb"\r\nFrom: (.*<[^@>]+@mx\.example\.org>|[^@\s]+@mx\.example\.org)(\r\n|$)",
                     head), head
    assert head.startswith(b"Received: by mx.example.org (petrel, from userid %d)\r\n\tid %s; "
                           % (os.getuid(), qid.encode())), head
    assert b"Bcc: this line is body text\r\n" in body

    p.start()
    for user in ("alice", "bob", "carol", "josé"):
        [m] = p.wait_mails(user)
        assert m.get("Bcc") == []
        assert m.first("Subject") == "-t"


def test_dot_line_ends_input_unless_i(stopped):
    p = stopped
    r = sendmail(p, "alice", input="Subject: a\n\nline 1\n.\nline 2\n")
    assert r.returncode == 0, r.stderr
    r = sendmail(p, "-i", "alice", input="Subject: b\n\nline 1\n.\nline 2\n")
    assert r.returncode == 0, r.stderr
    r = sendmail(p, "-oi", "alice", input="Subject: c\r\n\r\n..\r\n.\r\nend")
    assert r.returncode == 0, r.stderr
    first, second, third = (stored_message(p, q) for q in queued(p))
    assert first.endswith(b"\r\n\r\nline 1\r\n")
    assert second.endswith(b"\r\n\r\nline 1\r\n.\r\nline 2\r\n")
    assert third.endswith(b"\r\n\r\n..\r\n.\r\nend\r\n")  # no dot-unstuffing outside SMTP


def test_dot_line_returns_without_eof(stopped):
    """A program that writes "." and keeps the pipe open is not kept waiting."""
    p = stopped
    proc = subprocess.Popen([str(build_dir() / "sendmail"), "-C", str(p.conf), "alice"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=petreld_env())
    try:
        proc.stdin.write(b"Subject: open pipe\n\nhi\n.\n")
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert len(queued(p)) == 1


def test_f_and_F(stopped):
    p = stopped
    r = sendmail(p, "-f", "list-bounces@lists.example.net", "-F", "The List", "bob",
                 input="Subject: from\n\nx\n")
    assert r.returncode == 0, r.stderr
    r = sendmail(p, "-f", "<>", "bob", input="Subject: null\n\nx\n")
    assert r.returncode == 0, r.stderr
    r = sendmail(p, "-f", "ann@example.net", "bob",
                 input="From: Ann <ann@example.net>\nSubject: has From\n\nx\n")
    assert r.returncode == 0, r.stderr
    p.start()
    mails = {m.first("Subject"): m for m in p.wait_mails("bob", 3)}
    one, two, three = mails["from"], mails["null"], mails["has From"]
    assert one.first("Return-Path") == "<list-bounces@lists.example.net>"
    assert one.first("From") == "The List <list-bounces@lists.example.net>"
    assert two.first("Return-Path") == "<>"
    assert re.fullmatch(r".*<[^@]+@mx\.example\.org>|[^@ ]+@mx\.example\.org", two.first("From"))
    assert three.get("From") == ["Ann <ann@example.net>"]


def test_petrel_sendmail_subcommand(stopped):
    p = stopped
    r = run_tool("petrel", "-c", str(p.conf), "sendmail", "-t",
                 input=b"To: carol@example.org\nSubject: sub\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert len(queued(p)) == 1


# ---------------------------------------------------------------------------
# refusals: nothing is queued, a sysexits code says why

def test_unknown_local_user_is_67(stopped):
    p = stopped
    r = sendmail(p, "alice", "nobody", input="Subject: x\n\nx\n")
    assert r.returncode == EX_NOUSER, r
    assert b"nobody" in r.stderr and b"5.1.1" in r.stderr
    r = sendmail(p, "nobody@example.org", input="x\n")
    assert r.returncode == EX_NOUSER
    r = sendmail(p, "-t", input="To: ghost@example.org\n\nx\n")
    assert r.returncode == EX_NOUSER
    assert queued(p) == []


def test_relay_denied_is_77(petrel_factory):
    p = petrel_factory(start=False, rules='match for domain "example.org" action "local"\n')
    r = sendmail(p, "someone@remote.example", input="x\n")
    assert r.returncode == EX_NOPERM, r
    assert b"5.7.1" in r.stderr
    assert queued(p) == []


def test_usage_errors(stopped):
    p = stopped
    r = sendmail(p, input="Subject: nobody\n\nx\n")
    assert r.returncode == EX_USAGE
    assert b"no recipients" in r.stderr
    r = sendmail(p, "-t", input="Subject: no To\n\nx\n")
    assert r.returncode == EX_USAGE
    r = sendmail(p, "-q", input="")
    assert r.returncode == EX_USAGE
    r = sendmail(p, "-f", "a@@b", "alice", input="x\n")
    assert r.returncode == EX_USAGE
    r = sendmail(p, "bad address@example.org", input="x\n")
    assert r.returncode == EX_DATAERR
    assert queued(p) == []


def test_ignored_options_are_accepted(stopped):
    p = stopped
    r = sendmail(p, "-oem", "-odb", "-oQ/var/spool/x", "-v", "-B", "8BITMIME", "-N", "never",
                 "-i", "--", "alice", input="Subject: ignored\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert len(queued(p)) == 1


def test_message_size_limit_is_65(petrel_factory):
    p = petrel_factory(start=False, extra="limit message-size 1K\n")
    r = sendmail(p, "alice", input="Subject: big\n\n" + "x" * 2000 + "\n")
    assert r.returncode == EX_DATAERR, r
    assert b"too large" in r.stderr
    assert queued(p) == []


def test_bad_config_is_78(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("this is not a directive\n")
    r = run_tool("sendmail", "-C", str(conf), "alice", input=b"x\n")
    assert r.returncode == 78
    assert b"bad.conf:1" in r.stderr


# ---------------------------------------------------------------------------
# -bs: SMTP on stdin/stdout

def smtp_replies(out):
    """[(code, [lines])] from a -bs transcript."""
    replies, cur = [], []
    for ln in out.decode("utf-8", "replace").split("\r\n"):
        if not ln:
            continue
        cur.append(ln[4:])
        if ln[3:4] == " ":
            replies.append((int(ln[:3]), cur))
            cur = []
    return replies


def test_bs_session(stopped):
    p = stopped
    script = ("EHLO client.example\r\n"
              "MAIL FROM:<sender@example.net>\r\n"
              "RCPT TO:<alice@example.org>\r\n"
              "RCPT TO:<nobody@example.org>\r\n"
              "RCPT TO:<sales@example.org>\r\n"
              "DATA\r\n"
              "Subject: over -bs\r\n\r\n..leading dot\r\n.\r\n"
              "QUIT\r\n")
    r = run_tool("sendmail", "-C", str(p.conf), "-bs", input=script.encode())
    assert r.returncode == 0, r.stderr
    replies = smtp_replies(r.stdout)
    codes = [c for c, _ in replies]
    assert codes == [220, 250, 250, 250, 550, 250, 354, 250, 221], replies
    assert "SMTPUTF8" in replies[1][1]
    m = re.search(r"queued as ([0-9A-F]{16})", replies[7][1][-1])
    assert m, replies[7]
    assert queued(p) == [m.group(1)]
    p.start()
    [a] = p.wait_mails("alice")
    [b] = p.wait_mails("bob")
    assert a.first("Subject") == "over -bs"
    assert a.body == b".leading dot\n"
    assert a.first("Return-Path") == "<sender@example.net>"
    rcv = a.first("Received")
    assert rcv.startswith("from client.example by mx.example.org (petrel, from userid")
    assert "with ESMTP id " + m.group(1) in rcv
    assert b.first("Message-ID") == a.first("Message-ID")


def test_bs_refuses_what_the_daemon_refuses(petrel_factory):
    p = petrel_factory(start=False, rules='match for domain "example.org" action "local"\n')
    script = ("HELO c\r\nMAIL FROM:<s@example.net>\r\nRCPT TO:<x@remote.example>\r\n"
              "RCPT TO:<a%b@example.org>\r\nQUIT\r\n")
    r = run_tool("sendmail", "-C", str(p.conf), "-bs", input=script.encode())
    assert r.returncode == 0
    codes = [c for c, _ in smtp_replies(r.stdout)]
    assert codes == [220, 250, 250, 550, 550, 221], r.stdout


def test_bs_end_of_input_without_quit(stopped):
    p = stopped
    r = run_tool("sendmail", "-C", str(p.conf), "-bs",
                 input=b"EHLO c\r\nMAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\n"
                       b"DATA\r\nSubject: cut\r\n\r\nunfinished")
    assert r.returncode == 0
    assert queued(p) == []


# ---------------------------------------------------------------------------
# pickup: a running daemon is told at once

def test_pickup_sent_to_the_daemon_socket(stopped):
    p = stopped
    p.spool.mkdir(parents=True, exist_ok=True)
    fake = FakeDaemon(p.spool / "control.sock")
    try:
        r = sendmail(p, "alice", input="Subject: pickup\n\nx\n")
        assert r.returncode == 0, r.stderr
        [qid] = queued(p)
        wait_until(lambda: fake.requests, 10, what="a request on the control socket")
        assert fake.requests == [f"pickup {qid}\n"]
    finally:
        fake.close()


def test_pickup_refused_or_absent_still_succeeds(stopped):
    p = stopped
    p.spool.mkdir(parents=True, exist_ok=True)
    fake = FakeDaemon(p.spool / "control.sock", reply=lambda line: "error no such message")
    try:
        r = sendmail(p, "alice", input="x\n")
        assert r.returncode == 0, r.stderr
    finally:
        fake.close()
    r = sendmail(p, "alice", input="x\n")  # nobody listening
    assert r.returncode == 0, r.stderr
    assert len(queued(p)) == 2


def test_t_delivered_at_once_by_running_daemon(petrel):
    require_control(petrel)
    r = sendmail(petrel, "-t", input="To: alice@example.org\nBcc: bob\nSubject: now\n\nhi\n")
    assert r.returncode == 0, r.stderr
    # well before a spool scan or retry could find it: the pickup did it
    for user in ("alice", "bob"):
        [m] = petrel.wait_mails(user, timeout=10)
        assert m.get("Bcc") == []
        assert m.first("Subject") == "now"
    petrel.wait_queue_empty()
    assert re.search(r"control: uid=\d+ pid=\d+: pickup [0-9A-F]{16}", petrel.stderr())


def test_bs_delivered_at_once_by_running_daemon(petrel):
    require_control(petrel)
    r = run_tool("sendmail", "-C", str(petrel.conf), "-bs",
                 input=b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n"
                       b"Subject: bs now\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r.stderr
    [m] = petrel.wait_mails("carol", timeout=10)
    assert m.first("Subject") == "bs now"


@pytest.mark.deadline(120)
def test_sendmail_beside_a_busy_daemon(petrel):
    """sendmail must not touch the daemon's commits in flight (it once
    emptied tmp/ as a daemon does at start: their clients got 451)."""
    replies, codes, done = [], [], threading.Event()

    def smtp_client():
        with SMTPConn(petrel.port, timeout=30) as c:
            c.ehlo()
            for _ in range(40):
                c.cmd("MAIL FROM:<s@example.net>")
                c.cmd("RCPT TO:<alice@example.org>")
                c.cmd("DATA")
                c.send(b"Subject: busy\r\n\r\n" + (b"y" * 998 + b"\r\n") * 20 + b".\r\n")
                replies.append(c.reply().code)

    def sendmail_loop():
        while not done.is_set():
            codes.append(sendmail(petrel, "bob", input="Subject: beside\n\nx\n").returncode)

    clients = [threading.Thread(target=smtp_client) for _ in range(4)]
    loop = threading.Thread(target=sendmail_loop)
    loop.start()
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    done.set()
    loop.join()
    assert replies == [250] * 160, [r for r in replies if r != 250][:5]
    assert codes and set(codes) == {0}, codes
    petrel.wait_mails("alice", 160, timeout=60)
    petrel.wait_mails("bob", len(codes), timeout=60)
    assert "spool commit failed" not in petrel.stderr()
