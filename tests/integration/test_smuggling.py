"""SMTP smuggling: only CRLF.CRLF ends DATA. A bare-LF / bare-CR "end of
data" followed by a second transaction must never produce a second message."""
import pytest

from conftest import SMTPConn, expect, queued_id

SMUGGLED = b"MAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nevil\r\n.\r\n"
FAKE_ENDS = {
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "lf-dot-lf": b"\n.\n",
    "crlf-dot-cr": b"\r\n.\r",
    "crlf-dot-lf": b"\r\n.\n",
}


def smuggle(c, fake_end):
    c.ehlo()
    c.cmd("MAIL FROM:<honest@example.net>", 250, "2.1.0")
    c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")
    c.cmd("DATA", 354)
    # SMUGGLED ends with the real CRLF.CRLF: a correct server answers once
    # (250 or 554); a vulnerable one 250, 250 2.1.0, 250 2.1.5, 354, 250
    c.send(b"Subject: smuggle\r\n\r\nhello" + fake_end + SMUGGLED)
    first = c.reply()
    after = c.cmd("NOOP")
    return first, after


def no_evil(petrel):
    for m in petrel.all_mails():
        assert m.first("Return-Path") != "<evil@x>", f"smuggled message delivered: {m!r}"
    assert not any(b"evil@x" in p.read_bytes() and b"honest@example.net" not in p.read_bytes()
                   for p in petrel.queue_files() if p.exists()), "smuggled message queued"


@pytest.mark.parametrize("name", list(FAKE_ENDS))
def test_normalize_delivers_exactly_one_message(petrel, name):
    with SMTPConn(petrel.port) as c:
        first, after = smuggle(c, FAKE_ENDS[name])
        expect(first, 250, "2.0.0")
        queued_id(first)
        # the reply to our NOOP must be the next one: no extra replies queued up
        expect(after, 250, "2.0.0", "(NOOP after the message: a different reply means smuggling)")
        c.cmd("QUIT", 221)
    [m] = petrel.wait_mails("alice")
    petrel.wait_queue_empty()
    assert len(petrel.mails("alice")) == 1
    assert petrel.mails("bob") == [], "smuggled transaction reached bob"
    assert m.first("Return-Path") == "<honest@example.net>"
    assert b"MAIL FROM:<evil@x>" in m.body and b"\nevil\n" in m.body
    no_evil(petrel)


@pytest.mark.parametrize("name", list(FAKE_ENDS))
def test_reject_refuses_message(petrel_factory, name):
    p = petrel_factory(extra="bare-newline reject\n")
    with SMTPConn(p.port) as c:
        first, after = smuggle(c, FAKE_ENDS[name])
        expect(first, 554, "5.6.0")
        expect(after, 250, "2.0.0", "(NOOP after the refusal: a different reply means smuggling)")
        c.cmd("QUIT", 221)
    # an honest message afterwards proves the daemon is done with the refused one
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<later@example.net>", 250)
        c.cmd("RCPT TO:<carol@example.org>", 250)
        c.data(b"Subject: later\r\n\r\nfine\r\n.\r\n", 250)
    p.wait_mails("carol")
    p.wait_queue_empty()
    assert p.mails("alice") == [] and p.mails("bob") == []
    assert not any(b"smuggle" in f.read_bytes() for f in p.queue_files() if f.exists())
    no_evil(p)


def test_reject_accepts_clean_message(petrel_factory):
    p = petrel_factory(extra="bare-newline reject\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(b"Subject: clean\r\n\r\nonly\r\nCRLF\r\n.\r\n", 250, "2.0.0")
    assert p.wait_mails("alice")[0].body == b"only\nCRLF\n"


def test_normalize_turns_bare_newlines_into_lines(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(b"Subject: bare\r\n\r\none\ntwo\r\nthree\r\n.\r\n", 250, "2.0.0")
    [m] = petrel.wait_mails("alice")
    assert m.body == b"one\ntwo\nthree\n"
    assert b"\r" not in m.raw
