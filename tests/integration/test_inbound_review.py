"""Inbound-path review: regressions for session lifetime, timeouts and
shutdown found by reading session.c and daemon.c."""
import signal
import socket
import time

from conftest import SMTPConn, expect, wait_until

# HELP is 6 octets in and about 160 out: 300 KB of them give more replies
# than the loopback socket buffers (up to 4 MB) hold while we do not read.
HELPS = b"HELP\r\n" * 50000


def flood_without_reading(port):
    """A session whose replies pile up in petreld because we never read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    data = b"EHLO flood.example.net\r\n" + HELPS
    s.settimeout(1)
    sent = 0
    try:
        while sent < len(data):  # until petreld stops reading us
            sent += s.send(data[sent:sent + 65536])
    except socket.timeout:
        pass
    return s


def admitted(port):
    with SMTPConn(port) as c:
        if c.greeting.code != 220:
            return False
        c.cmd("QUIT", 221)
        return True


def test_write_timeout_frees_session_of_client_that_never_reads(petrel_factory):
    # The write timeout used to queue a 421 behind the unread replies and wait
    # for them to flush, but libevent had already disabled writing (and the
    # session reading): the session, and its connection slot, lived forever,
    # even after the client went away.
    p = petrel_factory(extra="timeout command 1s\nlimit connections 1\n")
    s = flood_without_reading(p.port)
    time.sleep(3)  # well past the 1 s write timeout
    s.close()
    wait_until(lambda: admitted(p.port), 10, 0.2,
               "the connection slot of a client that never read its replies")


def test_shutdown_grace_period_ends_closing_sessions(petrel_factory):
    # A session already closing (421 queued) whose client does not read was
    # left alone by session_abort(): SIGTERM then waited for the write
    # timeout (`timeout command`, 5 min by default), not `timeout shutdown`.
    p = petrel_factory(extra="timeout command 60s\ntimeout shutdown 1s\n")
    s = flood_without_reading(p.port)
    try:
        time.sleep(0.5)
        p.signal(signal.SIGTERM)
        rc = p.wait_exit(15)
        assert rc == 0, f"petreld still running 15 s after SIGTERM ({rc})\n{p.stderr()}"
    finally:
        s.close()


def test_sighup_during_drain_does_not_reopen_listeners(petrel):
    # on_hup() ran listeners_sync() even after SIGTERM had closed the
    # listeners: the port was bound again (a new petreld could not start)
    # and every client was accepted only to be dropped.
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)  # keeps the daemon draining
        petrel.signal(signal.SIGTERM)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", petrel.port), timeout=5).close()
            except ConnectionRefusedError:
                return True
            except ConnectionResetError:
                return False  # caught in the backlog of the listener being closed
            return False
        wait_until(refused, 10, 0.1, "the listener to close after SIGTERM")
        petrel.signal(signal.SIGHUP)
        time.sleep(1)
        assert petrel.running()
        assert refused(), "SIGHUP during shutdown opened the listener again"
        c.cmd("RCPT TO:<alice@example.org>", 250)
