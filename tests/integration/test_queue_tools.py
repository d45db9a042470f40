"""
The petrel tool's queue commands: `queue`, `mailq`, `sendmail -bp` and
`queue show ID` read the spool directly (no daemon needed) and show each
recipient's state from the journal; flush, delete, hold and release go over
the control socket: a fake daemon checks the requests the tool sends and how
it reports the replies, the real one (once it serves the socket) does the
work. With petreld down they fail with a clear message and exit 1.
"""
import re
import time

import pytest

from conftest import message, send_raw, wait_until
from test_outbound import net, relay_petrel  # noqa: F401 (net is a fixture)
from test_sendmail import FakeDaemon, queued, require_control, run_tool, sendmail

QID_RE = r"[0-9A-F]{16}"


def petrel_cmd(p, *args):
    r = run_tool("petrel", "-c", str(p.conf), *args)
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def listing_entries(text):
    """{qid: (header line, {address: state line})} from a queue listing."""
    out, cur = {}, None
    for ln in text.splitlines():
        m = re.match(rf"^({QID_RE})  ", ln)
        if m:
            cur = m.group(1)
            out[cur] = (ln, {})
        elif ln.startswith("    ") and cur:
            words = ln.split()
            out[cur][1][words[1].rstrip(":")] = ln.strip()
    return out


@pytest.fixture
def stopped(petrel_factory):
    return petrel_factory(start=False)


# ---------------------------------------------------------------------------
# listings from the spool files

def test_queue_lists_a_relay_message_without_the_daemon(stopped):
    p = stopped
    r = sendmail(p, "-f", "me@example.net", "someone@remote.example", "alice",
                 input="Subject: relay\n\nx\n")
    assert r.returncode == 0, r.stderr
    [qid] = queued(p)
    for args in (("queue",), ("mailq",), ("sendmail", "-bp")):
        r = petrel_cmd(p, *args)
        assert r.returncode == 0, (args, r.err)
        entries = listing_entries(r.out)
        assert list(entries) == [qid], r.out
        head, rcpts = entries[qid]
        assert re.match(rf"^{qid}\s+\d+\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  <me@example.net>$",
                        head), head
        assert rcpts == {"<someone@remote.example>": "pending   <someone@remote.example> (relay)",
                         "<alice@example.org>": "pending   <alice@example.org>"}, r.out
        assert r.out.rstrip().endswith("-- 1 message in the queue")
    # the mailq symlink, and sendmail -bp by its own name
    for name, args in (("mailq", ("-C", str(p.conf))), ("sendmail", ("-C", str(p.conf), "-bp"))):
        r = run_tool(name, *args)
        assert r.returncode == 0, r.stderr
        assert qid.encode() in r.stdout and b"(relay)" in r.stdout


def test_queue_empty_and_missing_spool(stopped):
    p = stopped
    r = petrel_cmd(p, "queue")
    assert r.returncode == 1  # no spool yet: nothing is created to list it
    assert "cannot read the spool" in r.err
    assert not p.spool.exists()
    sendmail(p, "alice", input="x\n")
    (p.spool / "queue" / queued(p)[0]).unlink()
    r = petrel_cmd(p, "queue")
    assert r.returncode == 0
    assert r.out == "-- 0 messages in the queue\n"


def test_queue_shows_journal_states(stopped):
    p = stopped
    r = sendmail(p, "alice", "bob", "carol", "someone@remote.example", input="x\n")
    assert r.returncode == 0, r.stderr
    [qid] = queued(p)
    nxt = int(time.time()) + 600
    # d: delivered, f: failed, t: deferred (docs/queue-format.md); an
    # unknown line and a torn last line are ignored
    (p.spool / "queue" / f"{qid}.state").write_text(
        "d 0\n"
        "f 1 550%205.1.1%20mailbox%20disabled\n"
        f"t 3 {nxt} 2 451%204.4.1%20no%20answer%20from%20mx.remote.example\n"
        "z 2 whatever\n"
        "d 2")
    r = petrel_cmd(p, "queue")
    assert r.returncode == 0, r.err
    _, rcpts = listing_entries(r.out)[qid]
    assert rcpts["<alice@example.org>"] == "delivered <alice@example.org>"
    assert rcpts["<bob@example.org>"] == "failed    <bob@example.org>: 550 5.1.1 mailbox disabled"
    assert rcpts["<carol@example.org>"] == "pending   <carol@example.org>"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(nxt))
    assert rcpts["<someone@remote.example>"] == (
        f"deferred  <someone@remote.example> (relay) attempts 2, next {when}: "
        "451 4.4.1 no answer from mx.remote.example"), r.out


def test_queue_shows_held_messages(stopped):
    p = stopped
    sendmail(p, "alice", input="Subject: one\n\nx\n")
    sendmail(p, "bob", input="Subject: two\n\nx\n")
    first, second = queued(p)
    (p.spool / "hold").mkdir(exist_ok=True)
    (p.spool / "queue" / first).rename(p.spool / "hold" / first)
    r = petrel_cmd(p, "queue")
    entries = listing_entries(r.out)
    assert list(entries) == [first, second]  # oldest first, held or not
    assert entries[first][0].endswith("  held")
    assert not entries[second][0].endswith("held")
    assert r.out.rstrip().endswith("-- 2 messages in the queue (1 held)")
    r = petrel_cmd(p, "queue", "show", first)
    assert r.returncode == 0
    assert "status:     held" in r.out


def test_queue_show(stopped):
    p = stopped
    r = sendmail(p, "-f", "me@example.net", "sales", "someone@remote.example",
                 input="Subject: shown\nX-Evil: a\x1b[2Jb\n\nbody text\n")
    assert r.returncode == 0, r.stderr
    [qid] = queued(p)
    r = petrel_cmd(p, "queue", "show", qid.lower())
    assert r.returncode == 0, r.err
    out = r.out
    assert f"id:         {qid}\n" in out
    assert "status:     queued\n" in out
    assert "sender:     <me@example.net>\n" in out
    assert "client:     local\n" in out
    assert "recipients: 3\n" in out
    assert "    pending   <alice@example.org>\n" in out
    assert 'maildir "local" user alice, given as <sales@example.org>' in out
    assert 'relay "remote", given as <someone@remote.example>' in out
    assert "\nSubject: shown\n" in out
    assert f"\tid {qid}; " in out
    assert "X-Evil: a?[2Jb\n" in out  # no terminal escapes from a message
    assert "body text" not in out
    assert "\r" not in out


def test_queue_show_errors(stopped):
    p = stopped
    sendmail(p, "alice", input="x\n")
    r = petrel_cmd(p, "queue", "show", "0123456789ABCDEF")
    assert r.returncode == 1
    assert "no message 0123456789ABCDEF" in r.err
    r = petrel_cmd(p, "queue", "show", "nonsense")
    assert r.returncode == 2
    assert "bad queue id" in r.err
    r = petrel_cmd(p, "queue", "show")
    assert r.returncode == 2
    r = petrel_cmd(p, "queue", "extra")
    assert r.returncode == 2


# ---------------------------------------------------------------------------
# control commands: the tool side

@pytest.mark.parametrize("args", [("flush",), ("flush", "example.org"), ("delete", "all"),
                                  ("delete", "6B02E3C067D66000"), ("hold", "6B02E3C067D66000"),
                                  ("release", "6B02E3C067D66000"), ("ping",)])
def test_daemon_down(stopped, args):
    p = stopped
    r = petrel_cmd(p, *args)
    assert r.returncode == 1
    sock = p.spool / "control.sock"
    assert r.err.startswith(f"petrel: petreld is not running (cannot connect to {sock}): "), r.err


def test_usage_errors_are_2_and_send_nothing(stopped):
    p = stopped
    p.spool.mkdir(parents=True)
    fake = FakeDaemon(p.spool / "control.sock")
    try:
        for args in (("delete",), ("hold",), ("hold", "xyz"), ("release", "6B02E3C067D6600"),
                     ("flush", "a@b"), ("ping", "x"), ("hold", "6B02E3C067D66000", "x"),
                     ("bogus",), ()):
            r = petrel_cmd(p, *args)
            assert r.returncode == 2, (args, r.out, r.err)
        assert fake.requests == []
    finally:
        fake.close()


def test_requests_and_replies_with_a_fake_daemon(stopped):
    p = stopped
    p.spool.mkdir(parents=True)

    def reply(line):
        if line.startswith("hold"):
            return "error 6B02E3C067D66000: no such message"
        if line.startswith("release"):
            return "garbage"
        return "ok 2 messages scheduled for delivery"

    fake = FakeDaemon(p.spool / "control.sock", reply)
    try:
        r = petrel_cmd(p, "flush", "Example.ORG")
        assert (r.returncode, r.out) == (0, "ok"[:0] + "2 messages scheduled for delivery\n")
        r = petrel_cmd(p, "flush")
        assert r.returncode == 0
        r = petrel_cmd(p, "delete", "all")
        assert r.returncode == 0
        r = petrel_cmd(p, "delete", "6b02e3c067d66000")
        assert r.returncode == 0
        r = petrel_cmd(p, "hold", "6B02E3C067D66000")
        assert r.returncode == 1
        assert r.err == "petrel: 6B02E3C067D66000: no such message\n"
        r = petrel_cmd(p, "release", "6B02E3C067D66000")
        assert r.returncode == 1
        assert "Protocol error" in r.err
        assert fake.requests == ["flush example.org\n", "flush\n", "delete all\n",
                                 "delete 6B02E3C067D66000\n", "hold 6B02E3C067D66000\n",
                                 "release 6B02E3C067D66000\n"]
    finally:
        fake.close()


# ---------------------------------------------------------------------------
# control commands against the real daemon (need the daemon's wiring)

def stuck_message(p, subject="stuck"):
    """A message whose bob recipient is deferred: bob's Maildir is a file."""
    p.mail.mkdir(exist_ok=True)
    if not p.maildir("bob").exists():
        p.maildir("bob").write_text("not a directory\n")
    qid = send_raw(p.port, "s@example.net", ["alice@example.org", "bob@example.org"],
                   message(subject))
    wait_until(lambda: any(m.first("Subject") == subject for m in p.mails("alice")), 15,
               what="alice's copy")
    # its first delivery pass is over: every bob is deferred, none pending
    wait_until(lambda: "deferred  <bob" in (out := petrel_cmd(p, "queue").out) and
               "pending   <bob" not in out, 15, what="bob deferred")
    return qid


def until_ok(p, *args, timeout=15):
    """Retries while a delivery of the message is running (EBUSY)."""
    def attempt():
        r = petrel_cmd(p, *args)
        if r.returncode == 0:
            return r
        assert "try again" in r.err, r.err
        return None
    return wait_until(attempt, timeout, interval=0.2, what=" ".join(args))


def test_ping(petrel):
    require_control(petrel)
    r = petrel_cmd(petrel, "ping")
    assert r.returncode == 0, r.err
    assert "petreld is running" in r.out
    assert re.search(r"control: uid=\d+ pid=\d+: ping", petrel.stderr())


def test_socket_mode_and_removal(petrel):
    require_control(petrel)
    sock = petrel.spool / "control.sock"
    assert sock.stat().st_mode & 0o777 == 0o600
    petrel.stop()
    assert not sock.exists()


def test_stale_socket_replaced_at_start(petrel):
    require_control(petrel)
    petrel.kill9()  # leaves the socket file behind
    assert (petrel.spool / "control.sock").exists()
    petrel.start()
    assert petrel_cmd(petrel, "ping").returncode == 0


def test_hold_release_delete(petrel):
    require_control(petrel)
    qid = stuck_message(petrel)
    r = until_ok(petrel, "hold", qid)
    assert qid in r.out
    assert (petrel.spool / "hold" / qid).exists()
    assert not (petrel.spool / "queue" / qid).exists()
    assert listing_entries(petrel_cmd(petrel, "queue").out)[qid][0].endswith("held")
    r = petrel_cmd(petrel, "hold", qid)
    assert r.returncode == 1

    r = until_ok(petrel, "release", qid)
    assert (petrel.spool / "queue" / qid).exists()
    r = petrel_cmd(petrel, "release", qid)
    assert r.returncode == 1

    until_ok(petrel, "delete", qid)
    assert not (petrel.spool / "queue" / qid).exists()
    assert not (petrel.spool / "queue" / f"{qid}.state").exists()
    r = petrel_cmd(petrel, "delete", qid)
    assert r.returncode == 1
    assert "no such message" in r.err
    assert re.search(rf"control: uid=\d+ pid=\d+: delete {qid}", petrel.stderr())


def test_flush_delivers_deferred_now(petrel):
    require_control(petrel)
    qid = stuck_message(petrel, "flushed")
    petrel.maildir("bob").unlink()  # bob can be delivered now
    r = petrel_cmd(petrel, "flush")
    assert r.returncode == 0, r.err
    assert re.fullmatch(r"\d+ messages? scheduled for delivery\n", r.out), r.out
    # long before the first retry (60 s) would come
    [m] = petrel.wait_mails("bob", timeout=10)
    assert m.first("Subject") == "flushed"
    petrel.wait_queue_empty()
    assert not (petrel.spool / "queue" / qid).exists()


def test_flush_domain_and_deferred_relay_listing(petrel_factory, net):
    """A relay recipient deferred by its MX: listed with its attempt and
    error, then delivered by `flush DOMAIN` long before its retry time."""
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")  # defers "tempfirst" once
    p = relay_petrel(petrel_factory, net, dns)
    require_control(p)
    r = sendmail(p, "-f", "alice@example.org", "tempfirst@dest.test", input="Subject: f\n\nx\n")
    assert r.returncode == 0, r.stderr
    [qid] = queued(p)

    def deferred_line():
        entries = listing_entries(petrel_cmd(p, "queue").out)
        line = entries.get(qid, ("", {}))[1].get("<tempfirst@dest.test>", "")
        return line if line.startswith("deferred") else None

    line = wait_until(deferred_line, 20, what="the recipient deferred in the listing")
    assert re.match(r"deferred  <tempfirst@dest\.test> \(relay\) attempts 1, "
                    r"next \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: .*4\d\d", line), line
    r = petrel_cmd(p, "flush", "other.test")
    assert (r.returncode, r.out) == (0, "0 messages scheduled for delivery\n")
    r = petrel_cmd(p, "flush", "@test")  # dest.test is a subdomain
    assert (r.returncode, r.out) == (0, "1 message scheduled for delivery\n"), r.out
    wait_until(lambda: peer.received("tempfirst@dest.test"), 20, what="delivery after flush")
    p.wait_queue_empty()


def test_delete_all(petrel):
    require_control(petrel)
    stuck_message(petrel, "one")
    stuck_message(petrel, "two")
    # a message in a delivery pass is skipped ("try again"): count every try
    deleted = 0

    def attempt():
        nonlocal deleted
        r = petrel_cmd(petrel, "delete", "all")
        m = re.match(r"(\d+) (messages? )?deleted", r.out if r.returncode == 0 else r.err)
        assert m, (r.out, r.err)
        deleted += int(m.group(1))
        return r.returncode == 0

    wait_until(attempt, 15, what="delete all without a message being delivered")
    assert deleted == 2
    assert queued(petrel) == []
