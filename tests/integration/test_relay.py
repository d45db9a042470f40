"""Relay control: the match rules decide; every disguised relay attempt to a
foreign domain through our domain is refused with 550 5.7.1."""
import pytest

from conftest import SMTPConn, expect, message, queued_id

RELAY_FORMS = [
    "<u@other.net>",
    "<u%other.net@example.org>",
    "<other.net!u@example.org>",
    '<"u@other.net"@example.org>',
    "<@example.org:u@other.net>",
    "<u@OTHER.NET>",
    "<u@example.org.other.net>",
]


def rcpt_reply(port, rcpt, source=None):
    with SMTPConn(port, source=source) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        return c.cmd(f"RCPT TO:{rcpt}")


@pytest.mark.parametrize("rcpt", RELAY_FORMS)
def test_relay_denied(petrel, rcpt):
    expect(rcpt_reply(petrel.port, rcpt), 550, "5.7.1", f"for RCPT TO:{rcpt}")


def test_relay_denied_then_local_still_accepted(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        for rcpt in RELAY_FORMS:
            expect(c.cmd(f"RCPT TO:{rcpt}"), 550, "5.7.1", f"for RCPT TO:{rcpt}")
            c.cmd("RSET", 250)
            c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.data(message("after-relay") + b".\r\n", 250)
    petrel.wait_mails("alice")
    petrel.wait_queue_empty()
    for m in petrel.all_mails():
        assert m.first("Subject") == "after-relay"


def test_trusted_network_may_relay_and_message_stays_queued(petrel_factory):
    p = petrel_factory(trusted=["127.0.0.0/8"])
    # The DNS server of the default test config never answers: the relayed
    # message is deferred and stays queued (test_outbound.py delivers).
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<u@other.net>", 250, "2.1.5")
        r = c.data(message("relay-token-7f3a", to="u@other.net") + b".\r\n", 250, "2.0.0")
        queued_id(r)
        # a local message after it, to know the delivery pass has run
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(message("local-after-relay") + b".\r\n", 250)
    p.wait_mails("alice")
    assert p.queue_contains("relay-token-7f3a"), "relayed message must stay in <spool>/queue/"
    assert not any(m.first("Subject") == "relay-token-7f3a" for m in p.all_mails())
    # and it survives a restart in the queue
    assert p.stop() == 0
    p.start()
    assert p.queue_contains("relay-token-7f3a")


def test_from_src_cidr(petrel_factory):
    rules = ('match for domain "example.org" action "local"\n'
             'match from src 127.0.0.2/32 for any action "remote"\n')
    p = petrel_factory(rules=rules)
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.2"), 250, "2.1.5")
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.1"), 550, "5.7.1")
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.3"), 550, "5.7.1")
    expect(rcpt_reply(p.port, "<alice@example.org>", source="127.0.0.3"), 250, "2.1.5")


def test_from_src_table(petrel_factory):
    p = petrel_factory(trusted=["# comment", "10.0.0.0/8", "127.0.0.4"])
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.4"), 250, "2.1.5")
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.1"), 550, "5.7.1")


def test_no_rule_denies_even_from_localhost(petrel_factory):
    p = petrel_factory(rules='match for domain "example.org" action "local"\n')
    expect(rcpt_reply(p.port, "<u@other.net>"), 550, "5.7.1")
    expect(rcpt_reply(p.port, "<u%other.net@example.org>"), 550, "5.7.1")
    expect(rcpt_reply(p.port, "<alice@example.org>"), 250, "2.1.5")


def test_from_local_does_not_match_network_peers(petrel_factory):
    rules = ('match for domain "example.org" action "local"\n'
             'match from local for any action "remote"\n')
    p = petrel_factory(rules=rules)
    expect(rcpt_reply(p.port, "<u@other.net>"), 550, "5.7.1")


def test_for_domain_table(petrel_factory):
    rules = ('table domains file:"domains"\n'
             'match for domain <domains> action "local"\n')
    p = petrel_factory(rules=rules, start=False)
    (p.root / "domains").write_text("example.org\nexample.com\n")
    p.start()
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.com>", 250, "2.1.5")
        c.cmd("RCPT TO:<bob@EXAMPLE.ORG>", 250, "2.1.5")
        expect(c.cmd("RCPT TO:<carol@example.net>"), 550, "5.7.1")
        c.data(message("domtab-1") + b".\r\n", 250)
    assert p.wait_mails("alice")[0].first("Subject") == "domtab-1"
    assert p.wait_mails("bob")[0].first("Subject") == "domtab-1"


def test_first_match_wins(petrel_factory):
    # rules are tried in order; a peer no rule matches for a foreign domain
    # is refused even when an earlier rule names another source
    rules = ('match from src 127.0.0.5/32 for any action "remote"\n'
             'match for domain "example.org" action "local"\n')
    p = petrel_factory(rules=rules)
    expect(rcpt_reply(p.port, "<alice@example.org>", source="127.0.0.1"), 250, "2.1.5")
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.5"), 250, "2.1.5")
    expect(rcpt_reply(p.port, "<u@other.net>", source="127.0.0.1"), 550, "5.7.1")
