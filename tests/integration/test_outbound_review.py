"""
Outbound delivery: lifetime and accounting defects found in review of
src/delivery (mta.c, qmgr.c, qmgr_finish.c) and the daemon's shutdown.
Most of these show up as sanitizer reports: run them against build/asan
(PETREL_BUILD=build/asan); the fixture fails a test on any report.
"""
import os
import socket
import socketserver
import threading
import time

from conftest import message, send_raw, wait_until
from peers import Peer
from test_outbound import QUEUE_FIRST, SENDER, bounces, net, relay_petrel, status_fields  # noqa: F401


class SilentDNS:
    """A UDP socket that takes queries and never answers: lookups stay
    outstanding until c-ares gives up."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stopped = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                self.sock.recvfrom(4096)
                self.queries += 1
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.sock.close()


def test_shutdown_while_an_mx_lookup_is_pending(petrel_factory):
    """mta_free() freed the destinations, then resolver_free() answered the
    pending lookup into the freed destination (heap-use-after-free)."""
    dns = SilentDNS()
    try:
        p = petrel_factory(trusted=["127.0.0.1"], extra=f"resolver 127.0.0.1 port {dns.port}\n")
        send_raw(p.port, SENDER, ["bob@dest.test"], message("lookup-pending"))
        wait_until(lambda: dns.queries > 0, 20, what="the MX query")
        assert p.stop() == 0
        assert p.sanitizer_reports() == []
    finally:
        dns.stop()


def test_mx_whose_address_fails_to_connect_at_once(petrel_factory, net):  # noqa: F811
    """connect() to an unreachable network fails inside
    bufferevent_socket_connect(); conn_connect() then gave up the
    connection synchronously, and conn_free() freed the destination under
    dest_kick()'s loop (heap-use-after-free), for every such MX."""
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)],
                  hosts=[("mx1.dest.test", "224.0.0.1")])  # ENETUNREACH at connect()
    p = relay_petrel(petrel_factory, net, dns)
    qid = send_raw(p.port, SENDER, ["bob@dest.test", "carl@dest.test"], message("unreachable"))
    send_raw(p.port, SENDER, ["dan@dest.test"], message("unreachable-2"))
    wait_until(lambda: p.stderr().count("status=deferred") >= 3, 20,
               what="both messages deferred")
    assert p.queue_contains(qid)
    assert p.sanitizer_reports() == []
    assert p.running()


def test_shutdown_while_a_local_step_runs(petrel_factory, net, tmp_path):  # noqa: F811
    """A pass whose local step was still running on a worker when the loop
    stopped ended, inside workpool_free(), by handing its relay recipients
    to the outbound agent that mta_free() had already freed. The local step
    is held here by a utmp file that is a FIFO (terminal delivery reads it
    on the worker) until the daemon is past mta_free()."""
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    peer = net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra='terminal-delivery on\nutmp-file "utmp"\n')
    fifo = p.root / "utmp"
    os.mkfifo(fifo)
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        f = s.makefile("rwb", buffering=0)
        f.readline()
        for cmd in ("EHLO x", f"SAML FROM:<{SENDER}>", "RCPT TO:<bob@example.org>",
                    "RCPT TO:<carl@dest.test>", "DATA"):
            f.write(cmd.encode() + b"\r\n")
            line = f.readline()
            while line[3:4] == b"-":
                line = f.readline()
            assert line[:1] in (b"2", b"3"), (cmd, line)
        f.write(message("local-step-at-shutdown") + b"\r\n.\r\n")
        assert f.readline().startswith(b"250")
        f.write(b"QUIT\r\n")
    # Opening the write end waits for the worker to open the read end; the
    # worker then blocks reading it until we close it.
    w = os.open(fifo, os.O_WRONLY)
    try:
        p.signal(15)
        wait_until(lambda: "messages committed in" in p.stderr(), 20,
                   what="the daemon past its event loop")
        time.sleep(0.5)  # daemon_release(): mta_free(), then workpool_free() waits
    finally:
        os.close(w)
    assert p.wait_exit(25) == 0, p.stderr()[-3000:]
    assert p.sanitizer_reports() == []
    assert peer.received() == []
    # the local outcome (SAML: the mailbox) was journaled: no second copy
    state = list((p.spool / "queue").glob("*.state"))
    assert state and b"d 0\n" in state[0].read_bytes()


class CutLMTP:
    """An LMTP server whose first session sends the final reply of the
    first recipient only, then drops the connection; later sessions answer
    normally. Records the recipients of every DATA."""

    def __init__(self, ip, port):
        self.deliveries = []  # recipients given the message, per session
        self.sessions = 0
        lmtp = self

        class H(socketserver.StreamRequestHandler):
            def handle(self):
                lmtp.sessions += 1
                first = lmtp.sessions == 1
                w = self.wfile.write
                w(b"220 lmtp ready\r\n")
                rcpts = []
                for line in self.rfile:
                    up = line.upper()
                    if up.startswith(b"LHLO"):
                        w(b"250-lmtp\r\n250 PIPELINING\r\n")
                    elif up.startswith(b"RCPT"):
                        rcpts.append(line[8:].strip().strip(b"<>").decode())
                        w(b"250 2.1.5 ok\r\n")
                    elif up.startswith(b"DATA"):
                        w(b"354 go\r\n")
                        for ln in self.rfile:
                            if ln == b".\r\n":
                                break
                        if first:
                            lmtp.deliveries.append(rcpts[:1])
                            w(b"250 2.0.0 delivered\r\n")
                            self.wfile.flush()
                            return  # the second reply never comes
                        lmtp.deliveries.append(list(rcpts))
                        w(b"250 2.0.0 delivered\r\n" * len(rcpts))
                        rcpts = []
                    elif up.startswith(b"QUIT"):
                        w(b"221 bye\r\n")
                        return
                    else:
                        w(b"250 2.0.0 ok\r\n")

        class S(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = S((ip, port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_lmtp_connection_lost_after_some_final_replies(petrel_factory, net):  # noqa: F811
    """RFC 2033 4.2: each accepted recipient gets its own reply after the
    dot. When the connection dropped after some of them, every recipient was
    deferred, so the ones the server had already delivered got the message
    again on the retry."""
    dns = net.dns()
    lmtp = CutLMTP("127.0.0.4", net.remote_port)
    try:
        rules = (f'action "dovecot" lmtp 127.0.0.4 port {net.remote_port}\n'
                 'match for domain "example.org" action "local"\n'
                 'match from src <trusted> for domain "lmtp.test" action "dovecot"\n')
        p = petrel_factory(trusted=["127.0.0.1"], rules=rules,
                           extra=f"resolver 127.0.0.1 port {dns.port}\nretry 1s\n")
        send_raw(p.port, SENDER, ["ann@lmtp.test", "ben@lmtp.test"], message("cut-lmtp"))
        p.wait_queue_empty(timeout=30)
        got = sorted(r for d in lmtp.deliveries for r in d)
        assert got == ["ann@lmtp.test", "ben@lmtp.test"], lmtp.deliveries
    finally:
        lmtp.stop()


def test_every_failed_recipient_is_reported(petrel_factory, net):  # noqa: F811
    """final_dsns() collected at most 256 failed recipients per pass but
    marked every one as reported (journal line `n`): the rest got no DSN,
    ever (RFC 3461 6.2: a failure DSN for each recipient that asked)."""
    dns = net.dns(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
    net.peer("127.0.0.2")
    p = relay_petrel(petrel_factory, net, dns, extra=QUEUE_FIRST)
    rcpts = [f"perm{i}@dest.test" for i in range(300)]
    send_raw(p.port, SENDER, rcpts, message("many-failures"))
    p.wait_queue_empty(timeout=30)
    reported = [f["Final-Recipient"].split(";")[-1].strip()
                for rep in bounces(p) for f in status_fields(rep)]
    assert sorted(reported) == sorted(rcpts)
