"""The relay handoff (relay-handoff, src/delivery/relay_direct.c): relay
mail is forwarded while the client waits; the 250 follows the next hop's,
a refusal of every recipient is the client's answer, and anything else
ends in the spool with the outcomes so far, before the 250."""
import os
import threading
import time

from conftest import SMTPConn, expect, message, send_raw, wait_until
from test_outbound import SENDER, bounces, net, relay_petrel, status_fields  # noqa: F401

DEST = [("dest.test", "mx1.dest.test", 10)]
HOSTS = [("mx1.dest.test", "127.0.0.2")]


def queue_files(p):
    q = p.spool / "queue"
    return sorted(os.listdir(q)) if q.exists() else []


def send_one(port, rcpts, subject, code=250, params=""):
    with SMTPConn(port, timeout=30) as c:
        c.ehlo("client.example.net")
        c.cmd(f"MAIL FROM:<{SENDER}>", 250)
        for rc in rcpts:
            c.cmd(f"RCPT TO:<{rc}>{params}", 250)
        r = c.data(message(subject, to=rcpts[0]) + b".\r\n", code)
        c.cmd("QUIT", 221)
        return r


def test_delivered_before_the_250_and_never_queued(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test", "carol@dest.test"], message("handed-off"))
    # the 250 came after the next hop's: the message is there already
    got = peer.received("bob@dest.test")
    assert len(got) == 1 and got[0].rcpts == ["bob@dest.test", "carol@dest.test"]
    assert b"Subject: handed-off" in got[0].data
    assert got[0].data.startswith(b"Received: from client.example.net"), got[0].data[:200]
    assert queue_files(p) == []
    log = p.stderr()
    assert "(delivered directly)" in log
    assert log.count("status=sent") == 2
    # and nothing is delivered again later
    time.sleep(1)
    assert len(peer.received()) == 1


def test_every_recipient_refused_is_the_clients_answer(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)
    r = send_one(p.port, ["perm1@dest.test", "perm2@dest.test"], "refused", code=550)
    assert r.status == "5.1.1" and "mx1.dest.test said: no such user here" in r.text, r
    assert peer.received() == []
    assert queue_files(p) == []
    assert "refused by the next hop" in p.stderr()
    # no bounce: the client was told
    time.sleep(1)
    assert not (p.mail / "alice" / "new").exists() or os.listdir(p.mail / "alice" / "new") == []


def test_mixed_outcomes_are_queued_with_their_journal(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)
    send_raw(p.port, SENDER, ["bob@dest.test", "perm@dest.test"], message("mixed"))
    # bob has it once; perm's failure comes back to the sender as a DSN
    assert len(peer.received("bob@dest.test")) == 1
    reports = bounces(p)
    assert len(reports) == 1
    fields = status_fields(reports[0])
    assert [f["Final-Recipient"] for f in fields] == ["rfc822; perm@dest.test"]
    assert fields[0]["Status"] == "5.1.1"
    p.wait_queue_empty()
    # the queue did not send bob's copy again, nor try perm again
    assert len(peer.received("bob@dest.test")) == 1
    assert peer.attempts["perm@dest.test"] == 1


def test_deferred_recipient_waits_for_its_retry(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns)  # default retry: minutes away
    send_raw(p.port, SENDER, ["bob@dest.test", "temp@dest.test"], message("half-deferred"))
    assert len(peer.received("bob@dest.test")) == 1
    assert p.queue_contains("half-deferred")
    wait_until(lambda: "status=deferred" in p.stderr(), 10, what="the deferral logged")
    time.sleep(1.5)  # a queue run that ignored the journal would try again now
    assert peer.attempts["temp@dest.test"] == 1
    assert len(peer.received("bob@dest.test")) == 1
    # the journal survives a restart: bob is not sent again, temp still waits
    assert p.stop() == 0
    p.start()
    time.sleep(1)
    assert len(peer.received("bob@dest.test")) == 1
    assert p.queue_contains("half-deferred")


def test_deferral_then_retry_delivers(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra="retry 1s\n")
    send_raw(p.port, SENDER, ["tempfirst@dest.test"], message("second-time"))
    wait_until(lambda: peer.received("tempfirst@dest.test"), 20, what="the retry")
    p.wait_queue_empty()
    assert peer.attempts["tempfirst@dest.test"] == 2


def test_slow_next_hop_is_queued_within_the_handoff_time(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra="relay-handoff 2s\nretry 1s\n")
    peer.hold_data = True
    try:
        send_one(p.port, ["bob@dest.test"], "slow-hop")  # 250 although the peer sits on it
        assert p.queue_contains("slow-hop")
        assert "status=deferred" in p.stderr()
    finally:
        peer.hold_data = False
    # the queue delivers it (its own waits are RFC 5321's); the copy the
    # peer took after the cut may make a second one
    wait_until(lambda: any(b"slow-hop" in m.data for m in peer.received()), 30,
               what="delivery from the queue")
    p.wait_queue_empty(timeout=30)


def test_no_free_connection_within_the_handoff_time(petrel_factory, net):
    """One connection allowed, held by a slow transaction of the queue (a
    NOTIFY=SUCCESS message takes the queue; its waits are RFC 5321's): a
    handoff waits for it no longer than relay-handoff, then is queued."""
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns,
                     extra="relay-handoff 3s\nlimit destination-connections 1\n")
    peer.hold_data = True
    results = {}

    def client(name, params=""):
        results[name] = send_one(p.port, [f"{name}@dest.test"], f"cap-{name}", params=params)

    try:
        first = threading.Thread(target=client, args=("first", " NOTIFY=SUCCESS"))
        first.start()
        wait_until(lambda: peer.in_data, 10, what="the first message held at the peer")
        client("second")
        first.join(30)
        assert set(results) == {"first", "second"}
        assert p.queue_contains("cap-second")
        assert "no connection within 3s; queued" in p.stderr(), p.stderr()
    finally:
        peer.hold_data = False
    wait_until(lambda: any(b"cap-second" in m.data for m in peer.received()), 30,
               what="the queued message delivered")


def test_off_sends_through_the_queue(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra="relay-handoff off\n")
    send_raw(p.port, SENDER, ["perm@dest.test"], message("queued-first"))  # 250, not 550
    assert len(bounces(p)) == 1
    assert "(delivered directly)" not in p.stderr()
    assert peer.attempts["perm@dest.test"] == 1


def test_success_dsn_request_takes_the_queue(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    peer = net.peer("127.0.0.2", ext=("PIPELINING", "8BITMIME"))  # no DSN: "relayed" is owed
    p = relay_petrel(petrel_factory, net, dns)
    send_one(p.port, ["bob@dest.test"], "wants-success", params=" NOTIFY=SUCCESS")
    wait_until(lambda: peer.received("bob@dest.test"), 20, what="delivery")
    reports = bounces(p)
    assert len(reports) == 1
    assert status_fields(reports[0])[0]["Action"] == "relayed"
    assert "(delivered directly)" not in p.stderr()


def test_unknown_domain_is_refused_at_once(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS)
    p = relay_petrel(petrel_factory, net, dns)
    r = send_one(p.port, ["bob@nowhere.test"], "nxdomain", code=550)
    assert r.status == "5.1.2", r
    assert queue_files(p) == []


def test_null_mx_domain_is_refused_at_once(petrel_factory, net):
    dns = net.dns(mx=DEST, hosts=HOSTS, null_mx=["nomail.test"])
    p = relay_petrel(petrel_factory, net, dns)
    r = send_one(p.port, ["bob@nomail.test"], "null-mx", code=556)
    assert r.status == "5.1.10", r  # RFC 7505 3
    assert queue_files(p) == []
