"""
RFC 821 terminal delivery with `terminal-delivery on`: SEND, SOML and SAML
against a user "logged in" on a pseudo-terminal this test owns, via a utmp
file the test writes.
"""
import os
import select
import struct
import time

from conftest import SMTPConn, expect, message, wait_until

USER_PROCESS = 7
UTMP = struct.Struct("<hxxi32s4s32s256shhiii4i20s")  # glibc x86-64 struct utmp


def utmp_record(user, line):
    now = int(time.time())
    return UTMP.pack(USER_PROCESS, os.getpid(), line.encode(), b"ts1", user.encode(),
                     b"", 0, 0, 0, now, 0, 0, 0, 0, 0, b"")


class Terminal:
    def __init__(self):
        self.master, self.slave = os.openpty()
        self.line = os.ttyname(self.slave)[len("/dev/"):]
        self.seen = b""

    def read_until(self, token, timeout=15):
        end = time.monotonic() + timeout
        while token not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"{token!r} never reached the terminal; got {self.seen[-500:]!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                self.seen += os.read(self.master, 65536)
        return self.seen

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def make(petrel_factory, tmp_path, term):
    p = petrel_factory(start=False, extra='terminal-delivery on\nutmp-file "utmp"\n')
    (p.root / "utmp").write_bytes(utmp_record("alice", term.line))
    p.start()
    return p


def legacy(p, verb, rcpt, subject, body="hello terminal\r\n", rcpt_code=250):
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"{verb} FROM:<sender@example.net>", 250, "2.1.0")
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        if rcpt_code != 250:
            expect(r, rcpt_code)
            return r
        expect(r, 250)
        c.data(message(subject, body) + b"\r\n.\r\n", 250)
        c.cmd("QUIT", 221)


def test_saml_writes_terminal_and_mailbox(petrel_factory, tmp_path):
    term = Terminal()
    try:
        p = make(petrel_factory, tmp_path, term)
        legacy(p, "SAML", "alice@example.org", "saml-both")
        out = term.read_until(b"EOF")
        assert b"Message from <sender@example.net>" in out
        assert b"saml-both" in out and b"hello terminal" in out
        mails = p.wait_mails("alice", 1)
        assert mails[0].first("Subject") == "saml-both"
    finally:
        term.close()


def test_soml_terminal_when_logged_in_else_mailbox(petrel_factory, tmp_path):
    term = Terminal()
    try:
        p = make(petrel_factory, tmp_path, term)
        legacy(p, "SOML", "alice@example.org", "soml-tty")
        term.read_until(b"soml-tty")
        p.wait_queue_empty()
        assert p.mails("alice") == [], "SOML to a logged-in user must not fill the mailbox"
        legacy(p, "SOML", "bob@example.org", "soml-mailbox")
        assert p.wait_mails("bob", 1)[0].first("Subject") == "soml-mailbox"
    finally:
        term.close()


def test_send_needs_login_and_skips_mailbox(petrel_factory, tmp_path):
    term = Terminal()
    try:
        p = make(petrel_factory, tmp_path, term)
        r = legacy(p, "SEND", "bob@example.org", "never", rcpt_code=450)
        assert r.status == "4.2.1"
        legacy(p, "SEND", "alice@example.org", "send-tty")
        term.read_until(b"send-tty")
        p.wait_queue_empty()
        assert p.mails("alice") == []
        assert p.mails("bob") == []
    finally:
        term.close()


def test_terminal_escape_sequences_are_defused(petrel_factory, tmp_path):
    term = Terminal()
    try:
        p = make(petrel_factory, tmp_path, term)
        legacy(p, "SEND", "alice@example.org", "escape", body="red \x1b[31m alert\x07\r\n")
        out = term.read_until(b"EOF")
        assert b"\x1b[31m" not in out
        assert b"red ?[31m alert?" in out
    finally:
        term.close()
