"""
Outbound TLS and smarthost authentication (docs/outbound-tls.md): STARTTLS
as a client (RFC 3207) under each `tls` policy, certificate verification
against `ca-file`, implicit TLS (smtps, RFC 8314) and AUTH PLAIN (RFC 4954)
with a secrets table. Peers are the scriptable SMTP servers of peers.py on
127.0.0.2.., with certificates from a private CA (certs.py); DNS is the
test's own dnsmasq.
"""
import ssl

import pytest

from certs import CA
from conftest import message, send_raw, wait_until
from peers import Peer
from test_outbound import net  # noqa: F401  (the fixture)

SENDER = "alice@example.org"
ONE_MX = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
TWO_MX = dict(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
              hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
SMART = dict(hosts=[("smart.test", "127.0.0.5")])


@pytest.fixture
def ca(tmp_path):
    return CA(tmp_path / "ca")


def out_petrel(petrel_factory, net, dns, action="", extra="", tables=""):
    """A petrel whose relay action is `relay ACTION`; local mail for
    example.org, everything else from 127.0.0.1 relayed."""
    rules = (tables
             + f'action "out" relay {action}\n'
             'match for domain "example.org" action "local"\n'
             'match from src <trusted> for any action "out"\n')
    return petrel_factory(
        trusted=["127.0.0.1"], rules=rules,
        extra=f"resolver 127.0.0.1 port {dns.port}\nremote port {net.remote_port}\n" + extra)


def deferred(p, qid, what):
    wait_until(lambda: f"{qid}: to=<" in p.stderr() and "status=deferred" in p.stderr(), 20,
               what=what)
    assert p.queue_contains(qid), "a deferred message stays queued"


def mail_commands(peer):
    return [c for c in peer.commands if c.upper().startswith("MAIL FROM")]


def test_opportunistic_tls_when_offered(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"))
    p = out_petrel(petrel_factory, net, dns)  # no `tls`: opportunistic, the default
    send_raw(p.port, SENDER, ["bob@dest.test"], message("opportunistic"))
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="delivery over TLS")
    got = peer.received()[0]
    assert got.tls is not None, "the message must have come inside TLS"
    version, cipher = got.tls
    assert version in ("TLSv1.2", "TLSv1.3")
    # STARTTLS, then EHLO again inside TLS before MAIL (RFC 3207 4.2)
    cmds = [c.split()[0].upper() for c in peer.commands]
    assert cmds[:4] == ["EHLO", "STARTTLS", "EHLO", "MAIL"], peer.commands
    p.wait_queue_empty()
    # no ca-file: the system store does not know the test CA
    want = (f"Untrusted TLS connection established to mx1.dest.test[127.0.0.2]:"
            f"{net.remote_port}: {version} with cipher {cipher} (")
    assert want in p.stderr(), p.stderr()


def test_opportunistic_logs_verified_and_trusted(petrel_factory, net, ca):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10), ("other.test", "mx.other.test", 10)],
                  hosts=[("mx1.dest.test", "127.0.0.2"), ("mx.other.test", "127.0.0.3")])
    good = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"))
    misnamed = net.peer("127.0.0.3", tls=ca.leaf("somewhere.else.test"))
    p = out_petrel(petrel_factory, net, dns, extra=f'ca-file "{ca.cert}"\n')
    send_raw(p.port, SENDER, ["bob@dest.test"], message("verified"))
    send_raw(p.port, SENDER, ["bob@other.test"], message("trusted"))
    p.wait_queue_empty(timeout=20)
    assert good.received()[0].tls and misnamed.received()[0].tls
    log = p.stderr()
    assert "Verified TLS connection established to mx1.dest.test[127.0.0.2]" in log, log
    # the chain is good but the name is not: still delivered, logged as such
    assert "Trusted TLS connection established to mx.other.test[127.0.0.3]" in log, log


def test_plain_delivery_when_not_offered(petrel_factory, net):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2")  # no STARTTLS
    p = out_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("in-the-clear"))
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="delivery in the clear")
    assert peer.received()[0].tls is None
    assert not any(c.upper() == "STARTTLS" for c in peer.commands)
    p.wait_queue_empty()
    assert "TLS connection established" not in p.stderr()


def test_tls_no_never_starts_tls(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls no")
    send_raw(p.port, SENDER, ["bob@dest.test"], message("tls-no"))
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="delivery")
    assert peer.received()[0].tls is None
    assert "STARTTLS" not in [c.upper() for c in peer.commands]


def test_tls_require_without_starttls_defers(petrel_factory, net):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2")  # no STARTTLS
    p = out_petrel(petrel_factory, net, dns, action="tls require")
    qid = send_raw(p.port, SENDER, ["bob@dest.test"], message("must-not-leak"))
    deferred(p, qid, "the delivery to be deferred")
    assert peer.sessions >= 1
    assert mail_commands(peer) == [], "nothing of the message may be sent in the clear"
    assert peer.received() == []
    assert "TLS required but not offered by mx1.dest.test" in p.stderr()
    assert "4.7.0" in p.stderr()


def test_tls_require_with_starttls_refused_defers(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"),
                    starttls_reply="454 4.7.0 TLS not available due to temporary reason")
    p = out_petrel(petrel_factory, net, dns, action="tls require")
    qid = send_raw(p.port, SENDER, ["bob@dest.test"], message("refused-tls"))
    deferred(p, qid, "the delivery to be deferred")
    assert mail_commands(peer) == []
    assert "STARTTLS refused by mx1.dest.test" in p.stderr()


def test_tls_require_takes_any_certificate(petrel_factory, net, tmp_path):
    other = CA(tmp_path / "other-ca", name="unknown CA")
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=other.leaf("wrong.name.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls require")
    send_raw(p.port, SENDER, ["bob@dest.test"], message("require-any-cert"))
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="delivery over TLS")
    assert peer.received()[0].tls is not None
    p.wait_queue_empty()
    assert "Untrusted TLS connection established to mx1.dest.test" in p.stderr()


def test_tls_verify_succeeds_with_ca_file(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls verify",
                   extra=f'ca-file "{ca.cert}"\n')
    send_raw(p.port, SENDER, ["bob@dest.test"], message("verified-delivery"))
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="verified delivery")
    assert peer.received()[0].tls is not None
    p.wait_queue_empty()
    assert "Verified TLS connection established to mx1.dest.test[127.0.0.2]" in p.stderr()


def test_tls_verify_untrusted_ca_defers(petrel_factory, net, ca, tmp_path):
    other = CA(tmp_path / "other-ca", name="unknown CA")
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=other.leaf("mx1.dest.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls verify",
                   extra=f'ca-file "{ca.cert}"\n')
    qid = send_raw(p.port, SENDER, ["bob@dest.test"], message("untrusted-ca"))
    deferred(p, qid, "the delivery to be deferred")
    assert mail_commands(peer) == [] and peer.received() == []
    assert peer.tls_sessions == [], "petrel must abort the handshake"
    log = p.stderr()
    assert "certificate verification failed" in log, log
    assert "4.7.5" in log


def test_tls_verify_wrong_name_tries_the_next_mx(petrel_factory, net, ca):
    dns = net.dns(**TWO_MX)
    misnamed = net.peer("127.0.0.2", tls=ca.leaf("not-mx1.dest.test"))
    good = net.peer("127.0.0.3", tls=ca.leaf("mx2.dest.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls verify",
                   extra=f'ca-file "{ca.cert}"\n')
    send_raw(p.port, SENDER, ["bob@dest.test"], message("next-mx"))
    wait_until(lambda: good.received("bob@dest.test"), 20, what="delivery to the second MX")
    assert mail_commands(misnamed) == []
    p.wait_queue_empty()
    log = p.stderr()
    assert "TLS handshake with mx1.dest.test[127.0.0.2]" in log, log
    assert "hostname mismatch" in log, log
    assert "Verified TLS connection established to mx2.dest.test[127.0.0.3]" in log


def test_tls_verify_wrong_name_only_defers(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("somewhere.else.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls verify",
                   extra=f'ca-file "{ca.cert}"\n')
    qid = send_raw(p.port, SENDER, ["bob@dest.test"], message("wrong-name"))
    deferred(p, qid, "the delivery to be deferred")
    assert mail_commands(peer) == []


def secrets_table(tmp_path, line):
    path = tmp_path / "secrets"
    path.write_text("# smarthost: user:password\n" + line + "\n")
    return f'table secrets file:"{path}"\n'


def test_smarthost_auth_over_starttls(petrel_factory, net, ca, tmp_path):
    dns = net.dns(**SMART)
    peer = net.peer("127.0.0.5", tls=ca.leaf("smart.test"), auth={"smart-user": "s3cr:et pw"})
    p = out_petrel(petrel_factory, net, dns,
                   action=f"host smart.test port {net.remote_port} tls require auth <secrets>",
                   tables=secrets_table(tmp_path, "smart.test: smart-user:s3cr:et pw"))
    send_raw(p.port, SENDER, ["bob@far.test"], message("authenticated"))
    wait_until(lambda: peer.received("bob@far.test"), 20, what="authenticated delivery")
    got = peer.received()[0]
    assert got.auth == "smart-user" and got.tls is not None
    assert peer.auth_attempts == [("PLAIN", "smart-user", "s3cr:et pw", got.tls[0])]
    p.wait_queue_empty()
    assert "s3cr:et" not in p.stderr(), "no credentials in the logs"


def test_smarthost_wrong_password_defers(petrel_factory, net, ca, tmp_path):
    dns = net.dns(**SMART)
    peer = net.peer("127.0.0.5", tls=ca.leaf("smart.test"), auth={"smart-user": "right"})
    p = out_petrel(petrel_factory, net, dns,
                   action=f"host smart.test port {net.remote_port} tls require auth <secrets>",
                   tables=secrets_table(tmp_path, "smart.test: smart-user:wrong-pw"))
    qid = send_raw(p.port, SENDER, ["bob@far.test"], message("bad-password"))
    deferred(p, qid, "the delivery to be deferred")
    assert peer.auth_attempts and peer.auth_attempts[0][1:3] == ("smart-user", "wrong-pw")
    assert mail_commands(peer) == [] and peer.received() == []
    log = p.stderr()
    assert "authentication failed at smart.test: 535" in log, log
    assert "4.7.8" in log
    assert "wrong-pw" not in log
    assert p.mails("alice") == [], "a wrong password must not bounce the message"


def test_smarthost_without_credentials_entry_defers(petrel_factory, net, ca, tmp_path):
    dns = net.dns(**SMART)
    peer = net.peer("127.0.0.5", tls=ca.leaf("smart.test"), auth={"u": "p"})
    p = out_petrel(petrel_factory, net, dns,
                   action=f"host smart.test port {net.remote_port} tls require auth <secrets>",
                   tables=secrets_table(tmp_path, "other.test: u:p"))
    qid = send_raw(p.port, SENDER, ["bob@far.test"], message("no-entry"))
    deferred(p, qid, "the delivery to be deferred")
    assert peer.auth_attempts == [] and mail_commands(peer) == []
    assert 'no usable credentials for smart.test in table "secrets"' in p.stderr()


def test_smtps_smarthost(petrel_factory, net, ca, tmp_path):
    dns = net.dns(**SMART)
    peer = net.peer("127.0.0.5", tls=ca.leaf("smart.test"), smtps=True, auth={"u1": "pw1"})
    p = out_petrel(petrel_factory, net, dns,
                   action=f"host smart.test port {net.remote_port} tls smtps auth <secrets>",
                   tables=secrets_table(tmp_path, "smart.test: u1:pw1"),
                   extra=f'ca-file "{ca.cert}"\n')
    send_raw(p.port, SENDER, ["bob@far.test"], message("over-smtps"))
    wait_until(lambda: peer.received("bob@far.test"), 20, what="delivery over smtps")
    got = peer.received()[0]
    assert got.tls is not None and got.auth == "u1"
    assert "STARTTLS" not in [c.upper() for c in peer.commands]
    p.wait_queue_empty()
    assert "Verified TLS connection established to smart.test[127.0.0.5]" in p.stderr()


def test_smtps_smarthost_untrusted_defers(petrel_factory, net, tmp_path, ca):
    other = CA(tmp_path / "other-ca", name="unknown CA")
    dns = net.dns(**SMART)
    peer = net.peer("127.0.0.5", tls=other.leaf("smart.test"), smtps=True)
    p = out_petrel(petrel_factory, net, dns,
                   action=f"host smart.test port {net.remote_port} tls smtps",
                   extra=f'ca-file "{ca.cert}"\n')
    qid = send_raw(p.port, SENDER, ["bob@far.test"], message("smtps-untrusted"))
    deferred(p, qid, "the delivery to be deferred")
    assert peer.commands == [] and peer.received() == []


def test_tls_connection_is_reused(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"))
    p = out_petrel(petrel_factory, net, dns, action="tls require")
    for i in range(3):
        send_raw(p.port, SENDER, ["bob@dest.test"], message(f"reuse-tls-{i}"))
        wait_until(lambda: len(peer.received()) == i + 1, 20, what=f"message {i}")
    assert peer.sessions == 1, "the idle TLS connection should carry the next messages"
    assert all(m.tls is not None for m in peer.received())
    assert len(peer.tls_sessions) == 1


def test_policies_do_not_share_connections(petrel_factory, net, ca):
    """Two actions to one smarthost, one `tls no` and one `tls require`:
    an open connection of one is never used for the other."""
    dns = net.dns(**SMART)
    peer = net.peer("127.0.0.5", tls=ca.leaf("smart.test"))
    port = net.remote_port
    rules = (f'action "clear" relay host smart.test port {port} tls no\n'
             f'action "secure" relay host smart.test port {port} tls require\n'
             'match for domain "example.org" action "local"\n'
             'match from src <trusted> for domain "clear.test" action "clear"\n'
             'match from src <trusted> for any action "secure"\n')
    p = petrel_factory(trusted=["127.0.0.1"], rules=rules,
                       extra=f"resolver 127.0.0.1 port {dns.port}\n")
    send_raw(p.port, SENDER, ["bob@clear.test"], message("clear-one"))
    wait_until(lambda: peer.received("bob@clear.test"), 20, what="the clear delivery")
    send_raw(p.port, SENDER, ["bob@secure.test"], message("secure-one"))
    wait_until(lambda: peer.received("bob@secure.test"), 20, what="the secure delivery")
    assert peer.received("bob@clear.test")[0].tls is None
    assert peer.received("bob@secure.test")[0].tls is not None
    assert peer.sessions == 2


def test_opportunistic_handshake_failure_falls_back_to_clear(petrel_factory, net, ca):
    """A peer that offers STARTTLS but only a TLS 1.2 CBC cipher, which
    petrel's client does not take (AEAD only): the handshake fails, and
    opportunistic TLS tries the same host again in the clear."""
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"))
    peer.ssl_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    peer.ssl_ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    p = out_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("fallback-clear"))
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="delivery in the clear")
    assert peer.received()[0].tls is None
    assert peer.tls_failures, "the first attempt's handshake must have failed"
    assert "TLS handshake with mx1.dest.test[127.0.0.2]" in p.stderr()
    assert "trying again without TLS" in p.stderr()


def test_plaintext_after_the_starttls_reply_is_refused(petrel_factory, net, ca):
    dns = net.dns(**ONE_MX)
    peer = net.peer("127.0.0.2", tls=ca.leaf("mx1.dest.test"),
                    starttls_extra=b"250-injected\r\n250 AUTH PLAIN\r\n")
    p = out_petrel(petrel_factory, net, dns)
    qid = send_raw(p.port, SENDER, ["bob@dest.test"], message("injected"))
    deferred(p, qid, "the delivery to be deferred")
    assert peer.tls_sessions == [] and mail_commands(peer) == []
    assert "protocol error: data after the STARTTLS reply" in p.stderr()


def test_smarthost_certificate_may_name_its_mx_host(petrel_factory, net, ca):
    """`relay host smart.test` whose MX is relay1.provider.test: under
    `tls verify` a certificate for the MX host is accepted too."""
    dns = net.dns(mx=[("smart.test", "relay1.provider.test", 10)],
                  hosts=[("relay1.provider.test", "127.0.0.5")])
    peer = net.peer("127.0.0.5", tls=ca.leaf("relay1.provider.test"))
    p = out_petrel(petrel_factory, net, dns,
                   action=f"host smart.test port {net.remote_port} tls verify",
                   extra=f'ca-file "{ca.cert}"\n')
    send_raw(p.port, SENDER, ["bob@far.test"], message("smarthost-mx"))
    wait_until(lambda: peer.received("bob@far.test"), 20, what="verified delivery")
    p.wait_queue_empty()
    assert ("Verified TLS connection established to relay1.provider.test[127.0.0.5]"
            in p.stderr())
