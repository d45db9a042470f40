"""
Outbound delivery: MX routing through a DNS server the test runs
(dnsmasq on loopback), peers on 127.0.0.2, .3 ..., retries, per-recipient
outcomes, and RFC 3464 bounces into the sender's local Maildir.
"""
import email
import email.policy
import os
import signal
import socket
import socketserver
import subprocess

import pytest

from conftest import SMTPConn, free_port, message, send_raw, wait_until
from peers import DNS, Peer

SENDER = "alice@example.org"  # local: bounces land in alice's Maildir


@pytest.fixture
def net(tmp_path):
    """dns(...) starts dnsmasq; peer(ip) starts an SMTP peer on the shared
    remote port. Everything is stopped at teardown."""
    started = []
    port = free_port("127.0.0.2")

    class Net:
        remote_port = port

        def dns(self, **records):
            d = DNS(tmp_path, **records)
            started.append(d)
            return d

        def peer(self, ip, **kw):
            p = Peer(ip, port, **kw)
            started.append(p)
            return p

    yield Net()
    for s in started:
        s.stop()


# Tests of the queue's own behaviour (bounces it builds, retries, a kill
# during its delivery): without the relay handoff, the client gets 250 and
# the queue delivers. The handoff's own tests are in test_handoff.py.
QUEUE_FIRST = "relay-handoff off\n"


def relay_petrel(petrel_factory, net, dns, extra=""):
    return petrel_factory(
        trusted=["127.0.0.1"],
        extra=f"resolver 127.0.0.1 port {dns.port}\nremote port {net.remote_port}\n" + extra)


def bounces(petrel, timeout=20):
    mails = petrel.wait_mails("alice", 1, timeout=timeout)
    out = []
    for m in mails:
        msg = email.message_from_bytes(m.raw, policy=email.policy.compat32)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def status_fields(report):
    """The per-recipient blocks of the message/delivery-status part."""
    parts = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    assert len(parts) == 1, [p.get_content_type() for p in report.walk()]
    blocks = parts[0].get_payload()
    return [dict(b.items()) for b in blocks[1:]]


def test_best_mx_gets_the_message(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                  hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
    best, second = net.peer("127.0.0.2"), net.peer("127.0.0.3")
    p = relay_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("to-best-mx"))
    wait_until(lambda: best.received("bob@dest.test"), 20, what="delivery to the best MX")
    assert second.received() == []
    p.wait_queue_empty()
    assert b"Subject: to-best-mx" in best.received()[0].data


def test_second_mx_when_first_is_down(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                  hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
    second = net.peer("127.0.0.3")  # nothing listens on 127.0.0.2
    p = relay_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("fallback"))
    wait_until(lambda: second.received("bob@dest.test"), 20, what="fallback to the second MX")
    p.wait_queue_empty()


def test_temporary_failure_is_retried(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra="retry 1s\n")
    qid = send_raw(p.port, SENDER, ["tempfirst@dest.test"], message("retried"))
    wait_until(lambda: peer.received("tempfirst@dest.test"), 30, what="delivery on retry")
    assert peer.attempts["tempfirst@dest.test"] == 2
    p.wait_queue_empty()
    assert f"{qid}: to=<tempfirst@dest.test>" in p.stderr()
    assert "status=deferred" in p.stderr()


def test_permanent_failure_bounces_to_sender(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    send_raw(p.port, SENDER, ["perm@dest.test"], message("will-bounce"), mail_params=" RET=HDRS")
    reports = bounces(p)
    assert len(reports) == 1
    rep = reports[0]
    assert rep["Auto-Submitted"] == "auto-replied"
    assert rep.get_param("report-type") == "delivery-status"
    fields = status_fields(rep)
    assert fields[0]["Action"] == "failed"
    assert fields[0]["Status"] == "5.1.1"
    assert "perm@dest.test" in fields[0]["Final-Recipient"]
    assert "550" in fields[0]["Diagnostic-Code"]
    mail = p.mails("alice")[0]
    assert mail.first("Return-Path") == "<>"
    p.wait_queue_empty()


def test_mixed_recipients_get_their_own_outcomes(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)
    qid = send_raw(p.port, SENDER, ["ok@dest.test", "temp@dest.test", "perm@dest.test"],
                   message("mixed"))
    wait_until(lambda: peer.received("ok@dest.test"), 20, what="the good recipient")
    reports = bounces(p)
    fields = status_fields(reports[0])
    assert [f["Final-Recipient"].split(";")[-1].strip() for f in fields] == ["perm@dest.test"]
    assert p.queue_contains(qid), "the deferred recipient keeps the message queued"
    assert len(peer.received("ok@dest.test")) == 1


def test_null_mx_bounces_at_once(petrel_factory, net):
    dns = net.dns(null_mx=["nomail.test"])
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    send_raw(p.port, SENDER, ["x@nomail.test"], message("null-mx"))
    fields = status_fields(bounces(p)[0])
    assert fields[0]["Status"] == "5.1.10"
    p.wait_queue_empty()


def test_expired_message_bounces(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra="retry 1s\nexpire 3s\n")
    send_raw(p.port, SENDER, ["temp@dest.test"], message("expires"))
    fields = status_fields(bounces(p, timeout=30)[0])
    assert fields[0]["Action"] == "failed"
    assert fields[0]["Status"] == "4.4.7"
    p.wait_queue_empty()


def test_bounce_to_failing_sender_is_not_bounced_again(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    send_raw(p.port, "perm-sender@dest.test", ["perm@dest.test"], message("double"))
    wait_until(lambda: "no DSN for a null sender" in p.stderr(), 20,
               what="the failed bounce to be dropped")
    p.wait_queue_empty()
    # the bounce was attempted once (to perm-sender), and nothing bounced it back
    assert peer.attempts.get("perm-sender@dest.test") == 1
    assert p.all_mails() == []


def test_etrn_starts_delivery_for_its_domain(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)  # default retry: the next try is minutes away
    send_raw(p.port, SENDER, ["tempfirst@dest.test"], message("etrn"))
    wait_until(lambda: "status=deferred" in p.stderr(), 20, what="the first attempt to fail")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("ETRN other.test", 251, "2.0.0")
        c.cmd("ETRN dest.test", 253, "2.0.0")
    wait_until(lambda: peer.received("tempfirst@dest.test"), 20, what="delivery after ETRN")
    p.wait_queue_empty()


@pytest.mark.parametrize("extra", ["", QUEUE_FIRST], ids=["handoff", "queue"])
def test_etrn_right_after_the_250_finds_the_message(petrel_factory, net, extra):
    """The message's first pass may still be reading it when ETRN comes:
    ETRN counts it all the same and it goes out once that pass is over."""
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>", 250)
        c.cmd("RCPT TO:<tempfirst@dest.test>", 250)
        c.data(message("etrn-at-once") + b"\r\n.\r\n", 250)
        c.cmd("ETRN dest.test", 253, "2.0.0")
    wait_until(lambda: peer.received("tempfirst@dest.test"), 20, what="delivery after ETRN")
    assert peer.attempts["tempfirst@dest.test"] == 2
    p.wait_queue_empty()


def test_dsn_parameters_are_passed_on(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> RET=HDRS ENVID=env+2B1", 250)
        c.cmd("RCPT TO:<bob@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@dest.test", 250)
        c.data(message("dsn-pass") + b"\r\n.\r\n", 250)
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="relay to a DSN peer")
    mail = [c for c in peer.commands if c.upper().startswith("MAIL FROM")][0]
    rcpt = [c for c in peer.commands if c.upper().startswith("RCPT TO")][0]
    assert "RET=HDRS" in mail and "ENVID=env+2B1" in mail, mail
    assert "NOTIFY=SUCCESS,FAILURE" in rcpt and "ORCPT=rfc822;bob@dest.test" in rcpt, rcpt
    p.wait_queue_empty()
    assert p.mails("alice") == [], "a DSN peer reports success itself; no DSN from us"


def test_notify_success_on_local_delivery(petrel_factory, net):
    dns = net.dns()
    p = relay_petrel(petrel_factory, net, dns)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>", 250)
        c.cmd("RCPT TO:<bob@example.org> NOTIFY=SUCCESS", 250)
        c.data(message("notify-success", to="bob@example.org") + b"\r\n.\r\n", 250)
    assert p.wait_mails("bob", 1)[0].first("Subject") == "notify-success"
    fields = status_fields(bounces(p)[0])
    assert fields[0]["Action"] == "delivered"
    assert fields[0]["Status"].startswith("2.")


def test_kill9_during_remote_delivery_loses_nothing(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    peer.hold_data = True  # accept DATA, then wait before the final reply
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("kill-mid-delivery"))
    wait_until(lambda: peer.in_data, 20, what="the peer to be inside DATA")
    p.kill9()
    peer.hold_data = False
    p.start()
    wait_until(lambda: any(b"kill-mid-delivery" in m.data for m in peer.received()), 30,
               what="delivery after the restart")
    p.wait_queue_empty()


def test_greeting_421_moves_to_the_next_mx(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                  hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
    busy = net.peer("127.0.0.2", greeting=421)
    second = net.peer("127.0.0.3")
    p = relay_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("past-421"))
    wait_until(lambda: second.received("bob@dest.test"), 20, what="delivery to the second MX")
    assert busy.sessions >= 1 and busy.received() == []


def test_connection_is_reused_for_the_next_message(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)
    for i in range(3):
        send_raw(p.port, SENDER, ["bob@dest.test"], message(f"reuse-{i}"))
        wait_until(lambda: len(peer.received()) == i + 1, 20, what=f"message {i}")
    assert peer.sessions == 1, "the idle connection should carry the next messages"


def test_lmtp_action_delivers_with_per_recipient_replies(petrel_factory, net):
    dns = net.dns()
    lmtp = net.peer("127.0.0.4", lmtp=True)
    rules = (f'action "dovecot" lmtp 127.0.0.4 port {net.remote_port}\n'
             'match for domain "example.org" action "local"\n'
             'match from src <trusted> for domain "lmtp.test" action "dovecot"\n')
    p = petrel_factory(trusted=["127.0.0.1"], rules=rules,
                       extra=f"resolver 127.0.0.1 port {dns.port}\n")
    send_raw(p.port, SENDER, ["ann@lmtp.test", "perm@lmtp.test", "ben@lmtp.test"],
             message("over-lmtp"))
    wait_until(lambda: lmtp.received("ann@lmtp.test"), 20, what="LMTP delivery")
    assert any(c.upper().startswith("LHLO") for c in lmtp.commands)
    assert sorted(lmtp.received()[0].rcpts) == ["ann@lmtp.test", "ben@lmtp.test"]
    fields = status_fields(bounces(p)[0])
    assert [f["Final-Recipient"].split(";")[-1].strip() for f in fields] == ["perm@lmtp.test"]
    p.wait_queue_empty()


def test_destination_connection_cap_and_a_slow_destination(petrel_factory, net):
    dns = net.dns(mx=[("slow.test", "mx.slow.test", 10), ("fast.test", "mx.fast.test", 10)],
                  hosts=[("mx.slow.test", "127.0.0.2"), ("mx.fast.test", "127.0.0.3")])
    slow, fast = net.peer("127.0.0.2"), net.peer("127.0.0.3")
    slow.hold_data = True  # every transaction to slow.test hangs before its final reply
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST + "limit destination-connections 2\n")
    for i in range(4):
        send_raw(p.port, SENDER, [f"u{i}@slow.test"], message(f"slow-{i}"))
    wait_until(lambda: slow.active == 2, 20, what="two connections to the slow destination")
    send_raw(p.port, SENDER, ["bob@fast.test"], message("fast-one"))
    wait_until(lambda: fast.received("bob@fast.test"), 20,
               what="the fast destination served while the slow one hangs")
    assert slow.max_active == 2, "limit destination-connections 2 must hold"
    assert slow.received() == []
    slow.hold_data = False
    wait_until(lambda: len(slow.received()) == 4, 30, what="the slow messages after release")
    p.wait_queue_empty()


def test_delay_warning(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra="retry 1s\ndelay-warning 2s\n")
    qid = send_raw(p.port, SENDER, ["temp@dest.test"], message("delayed"))
    fields = status_fields(bounces(p, timeout=30)[0])
    assert fields[0]["Action"] == "delayed"
    assert fields[0]["Status"].startswith("4.")
    assert p.queue_contains(qid), "a delay warning leaves the message queued"
    # only one warning, however many retries follow
    wait_until(lambda: p.stderr().count("status=deferred") >= 4, 30, what="more retries")
    assert sum(1 for _ in bounces(p)) == 1


def test_smarthost_relay_to_smtp_sink(petrel_factory, net, tmp_path):
    """`relay host H port N` sends everything to one host, here Postfix's
    smtp-sink; no MX lookup happens for an IP address."""
    import shutil
    import tempfile
    from pathlib import Path
    # smtp-sink writes as user postfix, which cannot enter pytest's 0700 dirs
    dump = Path(tempfile.mkdtemp(prefix="petrel-sink-"))
    os.chmod(dump, 0o777)
    port = free_port("127.0.0.5")
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "postfix", "-D", str(dump / "all"),
                             f"127.0.0.5:{port}", "10"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.5", port), 1).close()
                return True
            except OSError:
                return sink.poll() is not None  # exited: fail below, not by timeout

        wait_until(listening, 10, what="smtp-sink to listen")
        assert sink.poll() is None, "smtp-sink exited"
        rules = (f'action "smart" relay host 127.0.0.5 port {port}\n'
                 'match for domain "example.org" action "local"\n'
                 'match from src <trusted> for any action "smart"\n')
        p = petrel_factory(trusted=["127.0.0.1"], rules=rules)
        send_raw(p.port, SENDER, ["a@far.test", "b@other.test"], message("via-smarthost"))
        p.wait_queue_empty()
        wait_until(lambda: (dump / "all").exists() and b"via-smarthost" in
                   (dump / "all").read_bytes(), 10, what="the message in smtp-sink's dump")
        assert "relay=[127.0.0.5]" in p.stderr() and p.stderr().count("status=sent") == 2
        raw = (dump / "all").read_bytes()
        # one smarthost, one transaction for both domains
        assert raw.count(b"X-Mail-Args:") == 1, raw[:600]
        assert b"X-Rcpt-Args: <a@far.test>" in raw and b"X-Rcpt-Args: <b@other.test>" in raw
    finally:
        os.kill(sink.pid, signal.SIGTERM)
        sink.wait(timeout=10)
        shutil.rmtree(dump, ignore_errors=True)


class _V6Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True


def test_ipv6_mx_host(petrel_factory, net):
    port = net.remote_port
    got = []

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            w = self.wfile.write
            w(b"220 v6 ESMTP\r\n")
            for line in self.rfile:
                up = line.upper()
                if up.startswith(b"EHLO"):
                    w(b"250 v6\r\n")
                elif up.startswith(b"DATA"):
                    w(b"354 go\r\n")
                    body = b""
                    for ln in self.rfile:
                        if ln == b".\r\n":
                            break
                        body += ln
                    got.append(body)
                    w(b"250 2.0.0 ok\r\n")
                elif up.startswith(b"QUIT"):
                    w(b"221 bye\r\n")
                    return
                else:
                    w(b"250 2.0.0 ok\r\n")

    try:
        srv = _V6Server(("::1", port), H)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    import threading
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        dns = net.dns(mx=[("six.test", "mx.six.test", 10)], hosts=[("mx.six.test", "::1")])
        p = relay_petrel(petrel_factory, net, dns)
        send_raw(p.port, SENDER, ["bob@six.test"], message("over-ipv6"))
        wait_until(lambda: any(b"over-ipv6" in b for b in got), 20, what="delivery over IPv6")
        p.wait_queue_empty()
    finally:
        srv.shutdown()
        srv.server_close()


def test_smtputf8_message_to_a_host_without_it_bounces(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")  # no SMTPUTF8 in its EHLO
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    send_raw(p.port, SENDER, ["jos\u00e9@dest.test"], message("utf8-needs"),
             mail_params=" SMTPUTF8")
    fields = status_fields(bounces(p)[0])
    assert fields[0]["Status"] == "5.6.7"
    assert peer.received() == []


def test_notify_success_over_lmtp_says_delivered(petrel_factory, net):
    """LMTP is final delivery: its success DSN says "delivered", not "relayed"."""
    dns = net.dns()
    net.peer("127.0.0.4", lmtp=True, ext=("PIPELINING",))  # no DSN: we report success
    rules = (f'action "dovecot" lmtp 127.0.0.4 port {net.remote_port}\n'
             'match for domain "example.org" action "local"\n'
             'match from src <trusted> for domain "lmtp.test" action "dovecot"\n')
    p = petrel_factory(trusted=["127.0.0.1"], rules=rules,
                       extra=f"resolver 127.0.0.1 port {dns.port}\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>", 250)
        c.cmd("RCPT TO:<ann@lmtp.test> NOTIFY=SUCCESS", 250)
        c.data(message("lmtp-success") + b"\r\n.\r\n", 250)
    fields = status_fields(bounces(p)[0])
    assert fields[0]["Action"] == "delivered"


def test_notify_never_gives_no_bounce(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>", 250)
        c.cmd("RCPT TO:<perm-never@dest.test> NOTIFY=NEVER", 250)
        c.cmd("RCPT TO:<perm-told@dest.test>", 250)
        c.data(message("never") + b"\r\n.\r\n", 250)
    wait_until(lambda: peer.attempts.get("perm-never@dest.test") == 1, 20, what="the attempt")
    p.wait_queue_empty()
    reports = bounces(p)
    assert len(reports) == 1
    names = [f["Final-Recipient"].split(";")[-1].strip() for f in status_fields(reports[0])]
    assert names == ["perm-told@dest.test"], "NOTIFY=NEVER must keep its recipient out"


def test_bounce_echoes_envid_orcpt_and_returns_full_message(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> RET=FULL ENVID=track-42", 250)
        c.cmd("RCPT TO:<perm@dest.test> ORCPT=rfc822;orig+2Bx@dest.test", 250)
        c.data(message("full-return", body="the body line\r\n") + b"\r\n.\r\n", 250)
    rep = bounces(p)[0]
    ds = [q for q in rep.walk() if q.get_content_type() == "message/delivery-status"][0]
    per_message = dict(ds.get_payload()[0].items())
    assert per_message["Original-Envelope-Id"] == "track-42"
    fields = status_fields(rep)
    assert fields[0]["Original-Recipient"].replace(" ", "") == "rfc822;orig+x@dest.test"
    returned = [q for q in rep.walk() if q.get_content_type() == "message/rfc822"]
    assert returned, [q.get_content_type() for q in rep.walk()]
    assert b"the body line" in rep.as_bytes()


def test_host_whose_size_limit_is_too_small_is_skipped(petrel_factory, net):
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                  hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
    small = net.peer("127.0.0.2", ext=("PIPELINING", "SIZE 100"))
    big = net.peer("127.0.0.3")
    p = relay_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test"], message("too-big-for-mx1", body="x" * 500))
    wait_until(lambda: big.received("bob@dest.test"), 20, what="delivery to the second MX")
    assert small.sessions >= 1 and small.received() == []
    assert not any(c.upper().startswith("MAIL") for c in small.commands), \
        "nothing is sent to a host whose SIZE is too small"
