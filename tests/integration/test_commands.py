"""The SMTP command set over raw sockets: exact reply codes and enhanced
status codes (RFC 5321, 2034, 1870, 3030, 3461, 6531)."""
import re

import pytest

from conftest import HOSTNAME, SMTPConn, expect, message, queued_id


@pytest.fixture
def conn(petrel):
    with SMTPConn(petrel.port) as c:
        yield c


def ehloed(petrel):
    c = SMTPConn(petrel.port)
    c.ehlo()
    return c


# --- greeting, EHLO, HELO ---------------------------------------------------

def test_greeting(conn):
    expect(conn.greeting, 220)
    assert conn.greeting.lines[-1] == f"{HOSTNAME} ESMTP petrel"


def test_ehlo_keywords(conn):
    r = conn.cmd("EHLO client.example.net", 250)
    assert r.lines[0] == f"{HOSTNAME} Hello client.example.net [127.0.0.1]"
    kw = [ln.upper() for ln in r.lines[1:]]
    for k in ("PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
              "CHUNKING", "DSN", "ETRN"):
        assert k in kw, f"EHLO lacks {k}: {r!r}"
    words = {k.split()[0] for k in kw}
    assert "STARTTLS" not in words and "AUTH" not in words, r
    assert words <= {"PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                     "CHUNKING", "DSN", "ETRN", "HELP"}, f"unexpected keyword: {r!r}"


def test_helo(conn):
    r = conn.cmd("HELO client.example.net", 250)
    assert HOSTNAME in r.text


def test_ehlo_without_name_is_a_syntax_error(conn):
    r = conn.cmd("EHLO")
    assert r.code == 501, r


def test_every_reply_after_ehlo_has_enhanced_status(conn):
    conn.ehlo()
    replies = [conn.cmd(c) for c in (
        "NOOP", "RSET", "HELP", "VRFY alice", "EXPN sales", "MAIL FROM:<s@example.net>",
        "MAIL FROM:<t@example.net>", "RCPT TO:<alice@example.org>", "RCPT TO:<nobody@example.org>",
        "RCPT TO:<x@other.net>", "FOOBAR", "TURN", "BDAT x")]
    replies.append(conn.cmd("QUIT"))
    for r in replies:
        assert r.every_line_has_status(), f"reply without a matching enhanced status: {r!r}"


# --- order of commands ------------------------------------------------------

def test_mail_before_helo(conn):
    conn.cmd("MAIL FROM:<s@example.net>", 503, "5.5.1")


def test_mail_rcpt_data_ok_codes(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")
        r = c.cmd("DATA", 354)
        c.send(message("codes-1") + b".\r\n")
        r = c.reply()
        expect(r, 250, "2.0.0")
        assert re.fullmatch(r"2\.0\.0 Ok: queued as [A-Za-z0-9._-]+", r.lines[-1]), r
        c.cmd("QUIT", 221, "2.0.0")
        assert c.wait_closed()
    assert petrel.wait_mails("alice")[0].first("Subject") == "codes-1"


def test_nested_mail(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd("MAIL FROM:<t@example.net>", 503, "5.5.1")


def test_rcpt_before_mail(petrel):
    with ehloed(petrel) as c:
        c.cmd("RCPT TO:<alice@example.org>", 503, "5.5.1")


def test_data_without_rcpt(petrel):
    with ehloed(petrel) as c:
        c.cmd("DATA", 503, "5.5.1")
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("DATA", 503, "5.5.1")


def test_data_when_every_rcpt_refused(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<nobody@example.org>", 550, "5.1.1")
        r = c.cmd("DATA")
        assert (r.code, r.status) in ((554, "5.5.1"), (503, "5.5.1")), r
        c.cmd("NOOP", 250, "2.0.0")


def test_rset_noop_quit(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RSET", 250, "2.0.0")
        c.cmd("RCPT TO:<alice@example.org>", 503, "5.5.1")  # RSET cleared the transaction
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")
        c.cmd("NOOP", 250, "2.0.0")
        c.cmd("NOOP with an argument", 250, "2.0.0")
        c.cmd("QUIT", 221, "2.0.0")
        assert c.wait_closed()


def test_commands_case_insensitive(petrel):
    with SMTPConn(petrel.port) as c:
        c.cmd("ehlo client.example.net", 250)
        c.cmd("mail from:<s@example.net>", 250, "2.1.0")
        c.cmd("rcpt to:<alice@example.org>", 250, "2.1.5")
        c.cmd("rset", 250, "2.0.0")


# --- HELP, VRFY, EXPN -------------------------------------------------------

def test_help(petrel):
    with ehloed(petrel) as c:
        r = c.cmd("HELP", 214)
        assert len(r.lines) > 1, f"HELP should be a multi-line list: {r!r}"
        for verb in ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT",
                     "HELP", "VRFY"):
            assert verb in r.text.upper(), f"HELP does not list {verb}: {r!r}"


def test_help_mail(petrel):
    with ehloed(petrel) as c:
        r = c.cmd("HELP MAIL", 214)
        assert "MAIL FROM:<" in r.text.upper(), r


def test_vrfy_default_252(petrel):
    with ehloed(petrel) as c:
        c.cmd("VRFY alice", 252, "2.5.0")
        c.cmd("VRFY nobody", 252, "2.5.0")


def test_vrfy_on(petrel_factory):
    p = petrel_factory(extra="vrfy on\n")
    with ehloed(p) as c:
        r = c.cmd("VRFY alice", 250)
        assert "alice@example.org" in r.text.lower(), r
        r = c.cmd("VRFY <bob@example.org>", 250)
        assert "bob@example.org" in r.text.lower(), r
        c.cmd("VRFY nobody", 550, "5.1.1")


def test_expn_default_502(petrel):
    with ehloed(petrel) as c:
        c.cmd("EXPN sales", 502, "5.5.1")


def test_expn_on(petrel_factory):
    p = petrel_factory(extra="expn on\n")
    with ehloed(p) as c:
        r = c.cmd("EXPN sales", 250)
        assert len(r.lines) == 2, r
        assert "alice@example.org" in r.text.lower() and "bob@example.org" in r.text.lower(), r
        assert r.every_line_has_status(), r
        r = c.cmd("EXPN nosuchlist")
        assert r.code == 550, r


# --- historical and not (yet) implemented verbs -------------------------------

def test_send_refused_without_terminal_delivery(petrel):
    with ehloed(petrel) as c:
        r = c.cmd("SEND FROM:<s@example.net>", 502)
        assert "terminal" in r.text.lower(), r


@pytest.mark.parametrize("verb", ["SOML", "SAML"])
def test_soml_saml_act_like_mail(petrel, verb):
    with ehloed(petrel) as c:
        c.cmd(f"{verb} FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.data(message(f"{verb.lower()}-1", to="bob@example.org") + b".\r\n", 250, "2.0.0")
    [m] = petrel.wait_mails("bob")
    assert m.first("Subject") == f"{verb.lower()}-1"


def test_turn(petrel):
    with ehloed(petrel) as c:
        c.cmd("TURN", 502, "5.7.0")


@pytest.mark.parametrize("line", ["ATRN example.org", "AUTH PLAIN AGJvYgBi", "STARTTLS"])
def test_not_implemented_502(petrel, line):
    with ehloed(petrel) as c:
        r = c.cmd(line)
        assert r.code == 502, r
        assert r.status and r.status.startswith("5."), r
        c.cmd("NOOP", 250)  # the session goes on


def test_etrn_codes(petrel_factory):
    """RFC 1985: 459 for a node this client may not relay to, 251 when
    nothing waits, 501 without a node, 458 for #queue names, 503 inside a
    transaction."""
    p = petrel_factory(trusted=["127.0.0.1"])
    with ehloed(p) as c:
        c.cmd("ETRN", 501, "5.5.4")
        c.cmd("ETRN #queue", 458)
        c.cmd("ETRN example.org", 459, "4.7.1")  # ours: nothing is relayed for it
        c.cmd("ETRN other.test", 251, "2.0.0")
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("ETRN other.test", 503, "5.5.1")
    untrusted = petrel_factory()
    with ehloed(untrusted) as c:
        c.cmd("ETRN other.test", 459, "4.7.1")


def test_unknown_command(petrel):
    with ehloed(petrel) as c:
        c.cmd("FOOBAR baz", 500, "5.5.2")
        c.cmd("NOOP", 250)


# --- line length and syntax ---------------------------------------------------

def test_command_line_at_512_octets_is_accepted(petrel):
    with ehloed(petrel) as c:
        line = "NOOP " + "x" * (512 - 2 - 5)
        assert len(line) + 2 == 512
        c.cmd(line, 250, "2.0.0")


def test_command_line_over_512_octets(petrel):
    with ehloed(petrel) as c:
        c.cmd("NOOP " + "x" * 600, 500, "5.5.2")
        c.cmd("NOOP", 250, "2.0.0")  # resynchronised on the next line
        # MAIL and RCPT may be longer by what their parameters add (RFC 5321
        # 4.5.3.1.4), but not without bound
        c.cmd("MAIL FROM:<" + "a" * 3000 + "@example.net>", 500, "5.5.2")
        c.cmd("MAIL FROM:<s@example.net>", 250, "2.1.0")


def test_very_long_line_does_not_kill_session(petrel):
    with ehloed(petrel) as c:
        c.cmd("NOOP " + "y" * 100000, 500, "5.5.2")
        c.cmd("NOOP", 250)


@pytest.mark.parametrize("line,status", [
    ("MAIL", {"5.5.4"}),
    ("MAIL TO:<s@example.net>", {"5.5.4"}),
    ("MAIL FROM:", {"5.5.4", "5.1.7"}),
    ("MAIL FROM:<s@@example.net>", {"5.1.7"}),
    ("MAIL FROM:<s@example.net", {"5.5.4", "5.1.7"}),
    ("MAIL FROM:<s@exa mple.net>", {"5.5.4", "5.1.7"}),
    ("MAIL FROM:<@example.net>", {"5.1.7"}),
])
def test_mail_syntax(petrel, line, status):
    with ehloed(petrel) as c:
        r = c.cmd(line)
        assert r.code == 501 and r.status in status, f"{line!r}: expected 501 {status}, got {r!r}"
        c.cmd("MAIL FROM:<s@example.net>", 250)  # still no transaction open


@pytest.mark.parametrize("line,status", [
    ("RCPT", {"5.5.4"}),
    ("RCPT FROM:<alice@example.org>", {"5.5.4"}),
    ("RCPT TO:<alice@@example.org>", {"5.1.3"}),
    ("RCPT TO:<alice@>", {"5.1.3"}),
    ("RCPT TO:<>", {"5.1.3"}),
    ("RCPT TO:<alice@example.org", {"5.5.4", "5.1.3"}),
])
def test_rcpt_syntax(petrel, line, status):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        r = c.cmd(line)
        assert r.code == 501 and r.status in status, f"{line!r}: expected 501 {status}, got {r!r}"
        c.cmd("RCPT TO:<alice@example.org>", 250)


def test_local_part_length_limit(petrel):
    with ehloed(petrel) as c:
        r = c.cmd("MAIL FROM:<" + "a" * 65 + "@example.net>")
        assert r.code == 501 and r.status and r.status.startswith("5."), r
        c.cmd("MAIL FROM:<" + "a" * 64 + "@example.net>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<" + "b" * 65 + "@example.org>")
        assert r.code == 501 and r.status and r.status.startswith("5."), r


def test_domain_length_limit(petrel):
    long_domain = ".".join(["d" * 63] * 4) + ".net"  # 259 octets
    ok_domain = ".".join(["d" * 63] * 3) + ".example.net"  # 203 octets
    with ehloed(petrel) as c:
        r = c.cmd(f"MAIL FROM:<s@{long_domain}>")
        assert r.code == 501 and r.status and r.status.startswith("5."), r
        c.cmd(f"MAIL FROM:<s@{ok_domain}>", 250, "2.1.0")
        r = c.cmd(f"RCPT TO:<alice@{long_domain}>")
        assert r.code == 501 and r.status and r.status.startswith("5."), r


# --- parameters -------------------------------------------------------------

def test_unknown_mail_parameter(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net> FOO=BAR", 555, "5.5.4")
        c.cmd("MAIL FROM:<s@example.net> SIZE=100 BODY=8BITMIME", 250, "2.1.0")


def test_unknown_rcpt_parameter(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org> XYZZY", 555, "5.5.4")
        c.cmd("RCPT TO:<alice@example.org>", 250)


def test_size_parameter_over_limit(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net> SIZE=26214401", 552, "5.3.4")
        c.cmd("MAIL FROM:<s@example.net> SIZE=26214400", 250, "2.1.0")


def test_dsn_parameters(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net> RET=HDRS ENVID=QQ314159", 250, "2.1.0")
        c.cmd("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org",
              250, "2.1.5")
        c.cmd("RCPT TO:<bob@example.org> NOTIFY=NEVER", 250, "2.1.5")
        c.data(message("dsn-1") + b".\r\n", 250, "2.0.0")
        c.cmd("MAIL FROM:<s@example.net> RET=FULL", 250, "2.1.0")
    assert petrel.wait_mails("alice")[0].first("Subject") == "dsn-1"
    assert petrel.wait_mails("bob")[0].first("Subject") == "dsn-1"


def test_body_and_smtputf8_parameters(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net> BODY=8BITMIME SMTPUTF8", 250, "2.1.0")
        c.cmd("RSET", 250)
        c.cmd("MAIL FROM:<s@example.net> BODY=7BIT", 250, "2.1.0")


# --- recipients ---------------------------------------------------------------

def test_unknown_local_user(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<nobody@example.org>", 550, "5.1.1")


@pytest.mark.parametrize("rcpt", ["<postmaster@example.org>", "<Postmaster>",
                                  "<POSTMASTER@EXAMPLE.ORG>", "<postmaster>"])
def test_postmaster_always_accepted(petrel, rcpt):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd(f"RCPT TO:{rcpt}", 250, "2.1.5")
        c.data(message("pm-1", to=rcpt.strip("<>")) + b".\r\n", 250, "2.0.0")
    [m] = petrel.wait_mails("alice")  # postmaster: alice
    assert m.first("Subject") == "pm-1"


def test_postmaster_accepted_without_alias(petrel_factory):
    p = petrel_factory(aliases={"sales": ["alice", "bob"]})
    with ehloed(p) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<Postmaster>", 250, "2.1.5")
        c.cmd("RCPT TO:<postmaster@example.org>", 250, "2.1.5")


def test_local_user_case_insensitive(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<ALICE@Example.ORG>", 250, "2.1.5")
        c.data(message("case-1") + b".\r\n", 250)
    [m] = petrel.wait_mails("alice")
    assert m.first("Subject") == "case-1"


def test_user_plus_tag(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice+news@example.org>", 250, "2.1.5")
        c.cmd("RCPT TO:<nobody+news@example.org>", 550, "5.1.1")
        c.data(message("tag-1") + b".\r\n", 250)
    [m] = petrel.wait_mails("alice")
    assert m.first("Subject") == "tag-1"
    assert m.first("Delivered-To").lower() in ("alice@example.org", "alice+news@example.org")
    assert not (petrel.mail / "alice+news").exists()


def test_recipient_delimiter_none(petrel_factory):
    p = petrel_factory(extra='recipient-delimiter none\n')
    with ehloed(p) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice+news@example.org>", 550, "5.1.1")
        c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")


def test_alias_to_several_users(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<team@example.org>", 250, "2.1.5")
        c.data(message("alias-1") + b".\r\n", 250)
    for u in ("alice", "bob", "carol"):
        assert petrel.wait_mails(u)[0].first("Subject") == "alias-1"


def test_alias_plus_member_one_copy(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<sales@example.org>", 250, "2.1.5")
        c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.cmd("RCPT TO:<Alice+x@example.org>", 250, "2.1.5")
        c.data(message("dedup-1") + b".\r\n", 250)
    petrel.wait_mails("alice")
    petrel.wait_mails("bob")
    petrel.wait_queue_empty()
    assert len(petrel.mails("alice")) == 1, "alice must get exactly one copy"
    assert len(petrel.mails("bob")) == 1


# --- BDAT (RFC 3030) ---------------------------------------------------------

def test_bdat_chunks(petrel):
    part1 = b"Subject: bdat-1\r\n\r\n"
    part2 = b"line one\r\n.dot stays\r\n"
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        r = c.reply()
        expect(r, 250, "2.0.0")
        assert f"{len(part1)} octets received" in r.text, r
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        r = c.reply()
        expect(r, 250, "2.0.0")
        queued_id(r)
    [m] = petrel.wait_mails("alice")
    assert m.first("Subject") == "bdat-1"
    assert m.body == b"line one\n.dot stays\n"  # no dot-unstuffing in BDAT


def test_bdat_zero_last(petrel):
    body = b"Subject: bdat-0\r\n\r\nall in one\r\n"
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250)
        c.send(b"BDAT %d\r\n" % len(body) + body)
        expect(c.reply(), 250, "2.0.0")
        r = c.cmd("BDAT 0 LAST", 250, "2.0.0")
        queued_id(r)
    assert petrel.wait_mails("bob")[0].body == b"all in one\n"


def test_bdat_then_data_refused(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.send(b"BDAT 5\r\nhello")
        expect(c.reply(), 250, "2.0.0")
        c.cmd("DATA", 503, "5.5.1")


def test_bdat_without_transaction_consumes_chunk(petrel):
    with ehloed(petrel) as c:
        # the chunk must be read and discarded, never parsed as commands
        c.send(b"BDAT 12\r\nNOOP\r\nQUIT\r\n")
        expect(c.reply(), 503, "5.5.1")
        c.cmd("NOOP", 250, "2.0.0")


def test_bdat_bad_syntax(petrel):
    with ehloed(petrel) as c:
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        r = c.cmd("BDAT x")
        assert r.code == 501, r


def test_bdat_pipelined_binaryish(petrel):
    # 8-bit octets, bare dots, a CRLF.CRLF and command text inside chunks:
    # with BDAT none of them is special
    chunk1 = (b"Subject: bdat-bin\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
              + bytes(range(0x80, 0x100)) + b"\r\n.\r\nMAIL FROM:<evil@x>\r\n\t\x01\x7f tab\r\n")
    chunk2 = b"..double\r\n.\r\n" + "Grüße\r\n".encode("utf-8")
    batch = (b"MAIL FROM:<s@example.net> BODY=8BITMIME\r\nRCPT TO:<carol@example.org>\r\n"
             + b"BDAT %d\r\n" % len(chunk1) + chunk1
             + b"BDAT %d LAST\r\n" % len(chunk2) + chunk2 + b"QUIT\r\n")
    with ehloed(petrel) as c:
        c.send(batch)
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        r = c.reply()
        expect(r, 250, "2.0.0")
        assert f"{len(chunk1)} octets received" in r.text, r
        r = c.reply()
        expect(r, 250, "2.0.0")
        queued_id(r)
        expect(c.reply(), 221, "2.0.0")
    [m] = petrel.wait_mails("carol")
    assert m.first("Subject") == "bdat-bin"
    expected_body = (chunk1 + chunk2).split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
    assert m.body == expected_body
    assert not [x for x in petrel.all_mails() if x.first("Return-Path") == "<evil@x>"]


# --- error counting ---------------------------------------------------------

def test_error_count_disconnect(petrel_factory):
    p = petrel_factory(extra="limit errors 5\n")
    with ehloed(p) as c:
        codes = []
        for i in range(8):
            try:
                r = c.cmd(f"BOGUS{i}")
            except Exception:  # closed without a 421
                break
            codes.append((r.code, r.status))
            if r.code == 421:
                break
        assert codes[:4] == [(500, "5.5.2")] * 4, codes
        assert codes[-1] == (421, "4.7.0"), f"no 421 4.7.0 after too many errors: {codes}"
        assert len(codes) <= 6, codes
        assert c.wait_closed(), "connection must close after 421"
