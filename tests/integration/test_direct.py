"""The direct path (src/delivery/local_direct.c): a message for local
Maildirs only is in every Maildir, durably, before its 250, and never
touches the queue; anything else, or a Maildir that fails, takes the queue."""
from conftest import SMTPConn, message, send_raw, wait_until


def spool_files(p):
    return [f for sub in ("queue", "tmp") for f in (p.spool / sub).glob("*")
            if (p.spool / sub).is_dir()]


def test_local_mail_is_in_the_maildir_at_the_250(petrel):
    qid = send_raw(petrel.port, "s@example.net", ["alice@example.org", "sales@example.org"],
                   message("direct"))
    # no waiting: the 250 came after the Maildir copies were synced
    assert len(petrel.mails("alice")) == 1, "alice once, though named twice (sales)"
    assert len(petrel.mails("bob")) == 1
    assert spool_files(petrel) == [], "the queue was never used"
    log = petrel.stderr()
    assert f"{qid}: s=" in log and "nrcpt=2 (delivered directly)" in log, log
    assert log.count(f"{qid}: to=<") == 2, "one log line per mailbox"
    mail = petrel.mails("alice")[0]
    assert mail.first("Return-Path") == "<s@example.net>"
    assert mail.first("Received").startswith("from client.example.net ([127.0.0.1])")
    assert b"\r\n" not in mail.raw, "Maildir files use LF line ends"


def test_success_dsn_takes_the_queue(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<carol@example.org>", 250)
        c.cmd("RCPT TO:<alice@example.org> NOTIFY=SUCCESS", 250)
        c.data(message("notify") + b".\r\n", 250)
    assert len(petrel.wait_mails("alice")) == 1
    # the success DSN (RFC 3461) goes back to carol through the queue
    dsn = petrel.wait_mails("carol")[0]
    assert "multipart/report" in (dsn.first("Content-Type") or "")
    assert "(delivered directly)" not in petrel.stderr()


def test_a_failing_mailbox_falls_back_to_the_queue(petrel):
    petrel.mail.mkdir(exist_ok=True)
    petrel.maildir("bob").write_text("not a directory\n")
    qid = send_raw(petrel.port, "s@example.net", ["alice@example.org", "bob@example.org"],
                   message("fallback"))
    assert len(petrel.mails("alice")) == 1  # delivered before the 250
    assert petrel.queue_contains(qid), "bob's copy waits in the queue"
    state = petrel.spool / "queue" / f"{qid}.state"
    assert state.read_text().startswith("d 0"), "alice is journaled as delivered"
    petrel.maildir("bob").unlink()
    petrel.restart()
    assert len(petrel.wait_mails("bob")) == 1
    petrel.wait_queue_empty()
    assert len(petrel.mails("alice")) == 1, "no second copy for alice"
    wait_until(lambda: "direct delivery failed" in petrel.stderr(), 5, what="the fallback logged")
