"""Python smtplib as the client: what lands in the Maildir, byte by byte."""
import email.utils
import re
import smtplib

from conftest import HOSTNAME, SMTPConn, expect, message, queued_id

RECEIVED_RE = re.compile(
    r"^from (\S+) \(\[127\.0\.0\.1\]\) by " + re.escape(HOSTNAME)
    + r" \(petrel\) with (\S+) id (\S+)(?: for <([^>]*)>)?; (.+)$")


def smtp_send(port, sender, rcpts, msg, mail_options=(), helo=None, ehlo="client.example.net"):
    """One transaction with smtplib's low-level calls; returns (code, text) of
    the reply to the end of data."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=ehlo, timeout=10) as s:
        if helo:
            code, _ = s.helo(helo)
        else:
            code, _ = s.ehlo()
        assert code == 250
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, resp
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (r, resp)
        code, resp = s.data(msg)
        return code, resp.decode("utf-8", "replace")


def qid_of(text):
    m = re.search(r"queued as (\S+)", text)
    assert m, f"no 'queued as' in {text!r}"
    return m.group(1)


def check_trace(mail, sender, rcpt, proto, qid, ehlo="client.example.net", single=True):
    """The three trace headers petrel prepends, in this order. The "for"
    clause names the recipient only when the message had exactly one
    (docs/smtp.md: listing several would disclose them to each other)."""
    n0, v0 = mail.headers[0]
    n1, v1 = mail.headers[1]
    n2, v2 = mail.headers[2]
    assert (n0, v0) == ("Return-Path", f"<{sender}>"), mail.headers[:3]
    assert n1 == "Delivered-To" and v1.lower() == rcpt.lower(), mail.headers[:3]
    assert n2 == "Received", mail.headers[:3]
    rec = re.sub(r"\s+", " ", v2)
    m = RECEIVED_RE.match(rec)
    assert m, f"Received header not in the documented form: {rec!r}"
    assert m.group(1) == ehlo
    assert m.group(2) == proto
    assert m.group(3) == qid
    if single:
        assert m.group(4) is not None and m.group(4).lower() == rcpt.lower()
    else:
        assert m.group(4) is None, "a multi-recipient message must not name one recipient"
    assert email.utils.parsedate_to_datetime(m.group(5)) is not None


def test_plain_message_headers_body_and_lf_endings(petrel):
    body = "first line\r\n\r\nsecond paragraph\r\n"
    msg = message("plain-1", body)
    code, text = smtp_send(petrel.port, "sender@example.net", ["alice@example.org"], msg)
    assert code == 250 and "2.0.0" in text
    [m] = petrel.wait_mails("alice")
    check_trace(m, "sender@example.net", "alice@example.org", "ESMTP", qid_of(text))
    assert b"\r" not in m.raw, "Maildir file must use LF line endings"
    assert m.first("Subject") == "plain-1"
    assert m.first("From") == "<sender@example.net>"
    assert m.body == b"first line\n\nsecond paragraph\n"
    # the original header block follows the trace headers unchanged
    assert msg.split(b"\r\n\r\n")[0].replace(b"\r\n", b"\n") in m.head_raw
    assert not petrel.tmp_leftovers()
    md = petrel.maildir("alice")
    assert all((md / d).is_dir() for d in ("new", "cur", "tmp")), "Maildir needs new/ cur/ tmp/"
    assert m.path.parent == md / "new"


def test_helo_session_is_recorded_as_smtp(petrel):
    code, text = smtp_send(petrel.port, "old@example.net", ["bob@example.org"],
                           message("helo-1", to="bob@example.org"), helo="oldclient.example.net")
    assert code == 250
    [m] = petrel.wait_mails("bob")
    check_trace(m, "old@example.net", "bob@example.org", "SMTP", qid_of(text),
                ehlo="oldclient.example.net")


def test_dot_stuffing_round_trip(petrel):
    # smtplib stuffs ".x" -> "..x" on the wire; petrel must undo it exactly
    body = "line1\r\n.x\r\n..y\r\n.\r\n...\r\nend\r\n"
    code, text = smtp_send(petrel.port, "s@example.net", ["alice@example.org"],
                           message("dots-1", body))
    assert code == 250
    [m] = petrel.wait_mails("alice")
    assert m.body == b"line1\n.x\n..y\n.\n...\nend\n"


def test_dot_unstuffing_raw(petrel):
    # on the wire "..x" is the stuffed form of ".x"
    raw = (b"Subject: raw-dots\r\n\r\n..x\r\n...two\r\nplain\r\n.\r\n")
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.data(raw, 250, "2.0.0")
    [m] = petrel.wait_mails("alice")
    assert m.body == b".x\n..two\nplain\n"


def test_8bitmime_body_kept_byte_exact(petrel):
    body = "Grüße aus Köln, naïve café\r\n".encode("utf-8") + b"latin1: caf\xe9\r\n"
    msg = message("8bit-1", "").rstrip(b"\r\n") + b"\r\nContent-Type: text/plain; charset=utf-8\r\n" \
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    code, text = smtp_send(petrel.port, "s@example.net", ["carol@example.org"], msg,
                           mail_options=["BODY=8BITMIME"])
    assert code == 250
    [m] = petrel.wait_mails("carol")
    assert m.body == body.replace(b"\r\n", b"\n")
    check_trace(m, "s@example.net", "carol@example.org", "ESMTP", qid_of(text))


def test_smtputf8_local_part_to_user(petrel):
    msg = ("From: <rené@example.net>\r\nTo: <josé@example.org>\r\nSubject: utf8-1\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nÇa marche.\r\n").encode("utf-8")
    code, text = smtp_send(petrel.port, "rené@example.net", ["josé@example.org"], msg,
                           mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert code == 250
    [m] = petrel.wait_mails("josé")
    check_trace(m, "rené@example.net", "josé@example.org", "UTF8SMTP", qid_of(text))
    assert m.body == "Ça marche.\n".encode("utf-8")


def test_smtputf8_alias_expands_to_members(petrel):
    msg = ("From: <rené@example.net>\r\nSubject: utf8-alias\r\n\r\nbonjour\r\n").encode("utf-8")
    code, _ = smtp_send(petrel.port, "rené@example.net", ["équipe@example.org"], msg,
                        mail_options=["SMTPUTF8"])
    assert code == 250
    [mj] = petrel.wait_mails("josé")
    [mc] = petrel.wait_mails("carol")
    for m in (mj, mc):
        assert m.first("Subject") == "utf8-alias"
        assert m.first("Return-Path") == "<rené@example.net>"
    assert mc.first("Delivered-To").lower() == "carol@example.org"
    assert mj.first("Delivered-To").lower() == "josé@example.org"


def test_multi_recipient_one_copy_each(petrel):
    rcpts = ["alice@example.org", "bob@example.org", "carol@example.org"]
    code, text = smtp_send(petrel.port, "s@example.net", rcpts, message("multi-1"))
    assert code == 250
    qid = qid_of(text)
    for r in rcpts:
        user = r.split("@")[0]
        mails = petrel.wait_mails(user)
        petrel.wait_queue_empty()
        mails = petrel.mails(user)
        assert len(mails) == 1, f"{user} got {len(mails)} copies"
        check_trace(mails[0], "s@example.net", r, "ESMTP", qid, single=False)
        assert mails[0].first("Subject") == "multi-1"


def test_null_sender(petrel):
    code, text = smtp_send(petrel.port, "", ["bob@example.org"],
                           message("bounce-1", sender="MAILER-DAEMON@example.net"))
    assert code == 250
    [m] = petrel.wait_mails("bob")
    check_trace(m, "", "bob@example.org", "ESMTP", qid_of(text))


def test_sendmail_high_level_api(petrel):
    # the everyday smtplib path: sendmail() with its own EHLO and QUIT
    with smtplib.SMTP("127.0.0.1", petrel.port, timeout=10) as s:
        refused = s.sendmail("s@example.net", ["alice@example.org", "bob@example.org"],
                             message("hl-1"))
    assert refused == {}
    assert petrel.wait_mails("alice")[0].first("Subject") == "hl-1"
    assert petrel.wait_mails("bob")[0].first("Subject") == "hl-1"


def test_queued_as_matches_received_id(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        r = c.data(message("qid-1") + b".\r\n")
        assert r.text.startswith("2.0.0 Ok: queued as "), r
        qid = queued_id(r)
    [m] = petrel.wait_mails("alice")
    check_trace(m, "s@example.net", "alice@example.org", "ESMTP", qid)
    expect(r, 250, "2.0.0")
