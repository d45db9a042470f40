"""ATRN (RFC 2645, on-demand mail relay): mail for a customer's domain waits
in the queue; the customer connects, authenticates, says ATRN, and petrel
delivers that mail back over the same connection, as a client."""
import base64

import pytest

from conftest import SMTPConn, free_port, wait_until
from test_auth import PASSWORDS, passwd_text  # noqa: F401 (a fixture)

RULES = ('table odmr file:"odmr"\n'
         'action "odmr" atrn <odmr>\n'
         'match for domain "example.org" action "local"\n'
         'match for domain "customer.example" action "odmr"\n'
         'match for domain "other.example" action "odmr"\n')


def plain(user):
    return base64.b64encode(f"\0{user}\0{PASSWORDS[user]}".encode()).decode()


@pytest.fixture
def odmr(petrel_factory, passwd_text):  # noqa: F811
    port = free_port()
    p = petrel_factory(
        start=False, rules=RULES,
        extra='table passwd file:"passwd"\n'
              f"listen on 127.0.0.1 port {port} auth <passwd> insecure\n")
    (p.root / "passwd").write_text(passwd_text, encoding="utf-8")
    (p.root / "odmr").write_text("alice: customer.example\nbob: other.example\n")
    p.odmr_port = port
    return p.start()


def queue_for(p, rcpt, subject):
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.net>", 250)
        c.cmd(f"RCPT TO:<{rcpt}>", 250)
        c.data(f"Subject: {subject}\r\n\r\nfor the customer\r\n.\r\n".encode())
    wait_until(lambda: "held for on-demand relay" in p.stderr(), 15,
               what="the message deferred for ATRN")


def logged_in(p, user="alice"):
    c = SMTPConn(p.odmr_port)
    r = c.ehlo()
    assert "ATRN" in r.lines, r
    c.cmd("AUTH PLAIN " + plain(user), 235)
    return c


def serve_one(c):
    """Plays the customer's SMTP server on the turned connection; returns
    the envelope and the message it received."""
    c.send(b"220 customer.example ESMTP ready\r\n")
    ehlo = c.line()
    assert ehlo.startswith("EHLO "), ehlo
    c.send(b"250-customer.example\r\n250 8BITMIME\r\n")
    mail = c.line()
    assert mail.startswith("MAIL FROM:<sender@example.net>"), mail
    c.send(b"250 2.1.0 ok\r\n")
    rcpt = c.line()
    c.send(b"250 2.1.5 ok\r\n")
    assert c.line() == "DATA"
    c.send(b"354 go\r\n")
    body = []
    while (ln := c.line()) != ".":
        body.append(ln)
    c.send(b"250 2.0.0 stored\r\n")
    return rcpt, "\n".join(body)


@pytest.mark.deadline(90)
def test_atrn_delivers_over_the_same_connection(odmr):
    queue_for(odmr, "bob@customer.example", "pull me")
    c = logged_in(odmr)
    c.cmd("ATRN customer.example", 250, "2.0.0")
    rcpt, body = serve_one(c)
    assert rcpt == "RCPT TO:<bob@customer.example>"
    assert "Subject: pull me" in body
    assert c.line() == "QUIT"  # once nothing more is waiting
    c.send(b"221 bye\r\n")
    assert c.wait_closed()
    c.close()
    odmr.wait_queue_empty()
    assert "status=sent" in odmr.stderr()


def test_atrn_needs_auth_and_ownership(odmr):
    queue_for(odmr, "x@other.example", "bob's")
    with SMTPConn(odmr.odmr_port) as c:
        c.ehlo()
        c.cmd("ATRN", 530, "5.7.0")
    with logged_in(odmr) as c:
        c.cmd("ATRN other.example", 450, "4.7.1")    # bob's domain, not alice's
        c.cmd("ATRN customer.example", 453, "4.3.0")  # alice's, but empty
        c.cmd("ATRN bad_domain!", 501, "5.5.4")
        c.cmd("NOOP", 250)                            # still a normal session
    assert odmr.queue_contains("x@other.example")


def test_atrn_without_connection_keeps_mail_queued(odmr):
    queue_for(odmr, "carol@customer.example", "waits")
    assert odmr.queue_contains("carol@customer.example")
    with SMTPConn(odmr.port) as c:  # port 25 offers no ATRN
        r = c.ehlo()
        assert "ATRN" not in r.lines
        c.cmd("ATRN", 502)
