"""
Local delivery: per-recipient outcomes survive a failure of one recipient
(the others are not redone), the queue tool shows them, and one event loop
holds thousands of sessions while still serving a new client.
"""
import resource
import socket
import subprocess

from conftest import SMTPConn, build_dir, expect, message, send_raw, wait_until


def petrel_tool(p, *args):
    return subprocess.run([str(build_dir() / "petrel"), "-c", str(p.conf), *args],
                          capture_output=True, text=True, timeout=30)


def test_one_failing_mailbox_does_not_redo_the_others(petrel):
    petrel.mail.mkdir(exist_ok=True)
    blocker = petrel.maildir("bob")
    blocker.write_text("not a directory\n")  # bob's Maildir cannot be created
    qid = send_raw(petrel.port, "s@example.net", ["alice@example.org", "bob@example.org"],
                   message("partial"))
    assert len(petrel.wait_mails("alice", 1)) == 1
    wait_until(lambda: "status=deferred" in petrel.stderr(), 15, what="bob deferred in the log")
    assert petrel.queue_contains(qid), "the message must stay queued for bob"

    listing = petrel_tool(petrel, "queue")
    assert listing.returncode == 0, listing.stderr
    assert qid in listing.stdout
    lines = {ln.split()[1]: ln.split()[0] for ln in listing.stdout.splitlines()
             if ln.startswith("    ")}
    assert lines == {"<alice@example.org>": "delivered", "<bob@example.org>": "deferred"}, \
        listing.stdout

    blocker.unlink()
    petrel.restart()  # recovery retries what is pending, and only that
    assert len(petrel.wait_mails("bob", 1)) == 1
    petrel.wait_queue_empty()
    assert len(petrel.mails("alice")) == 1, "alice must not get a second copy"
    assert petrel.tmp_leftovers() == []


def test_thousands_of_idle_sessions_and_a_new_client_is_served(petrel_factory):
    # all from 127.0.0.1: lift the per-address limit (default 50)
    petrel = petrel_factory(extra="limit connections 5000\nlimit connections-per-ip 0\n")
    want = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 200), hard))
    held = []
    try:
        for _ in range(want):
            held.append(socket.create_connection(("127.0.0.1", petrel.port), timeout=10))
        for s in held:  # every one is greeted
            s.settimeout(15)
            assert s.recv(512).startswith(b"220 ")
        with SMTPConn(petrel.port) as c:
            expect(c.greeting, 220)
            c.ehlo()
            c.cmd("MAIL FROM:<s@example.net>", 250)
            c.cmd("RCPT TO:<carol@example.org>", 250)
            c.data(message("beside-2000") + b"\r\n.\r\n", 250)
        assert petrel.wait_mails("carol", 1)[0].first("Subject") == "beside-2000"
    finally:
        for s in held:
            s.close()
