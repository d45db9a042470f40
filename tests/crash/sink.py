"""
The remote end of the crash campaign: an SMTP server on 127.0.0.1 that
records a message only once its final dot has arrived (a transfer cut off
by a kill is not a delivery), and can sit on each DATA reply for a while
(hold) or refuse recipients with 451 (refuse), so that petreld has
outbound transactions in flight, or deferred mail, when it is killed.
Standard library only.
"""
import random
import re
import socket
import socketserver
import threading
import time

SUBJECT_RE = re.compile(rb"^Subject: (\S+)", re.M)


class Sink:
    """An SMTP server on 127.0.0.1:port (a free port). received: a list
    of (rcpts, data) for every message whose final dot arrived."""

    def __init__(self, hold=(0.0, 0.0), seed=0):
        self.hold = hold  # (lo, hi) seconds to sit on each DATA reply
        self.refuse = False  # True: 451 to every RCPT
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.received = []
        self.holding = 0  # DATA replies held back right now
        self.sessions = 0
        self.socks = set()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with sink.lock:
                    sink.sessions += 1
                    sink.socks.add(self.connection)
                try:
                    sink._dialogue(self.rfile, self.connection)
                except OSError:
                    pass
                finally:
                    with sink.lock:
                        sink.socks.discard(self.connection)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _hold(self):
        with self.lock:
            lo, hi = self.hold
            delay = self.rng.uniform(lo, hi)
            self.holding += 1
        end = time.monotonic() + delay
        try:
            while time.monotonic() < end and self.hold[1] > 0:
                time.sleep(0.01)
        finally:
            with self.lock:
                self.holding -= 1

    def _data(self, rf):
        """The message up to its final dot, unstuffed; None on EOF first."""
        lines = []
        while True:
            ln = rf.readline()
            if not ln:
                return None
            if ln == b".\r\n":
                return b"".join(lines)
            lines.append(ln[1:] if ln.startswith(b".") else ln)

    def _dialogue(self, rf, sock):
        sock.sendall(b"220 sink.test ESMTP crash sink\r\n")
        rcpts = []
        while True:
            line = rf.readline()
            if not line:
                return
            up = line.decode("utf-8", "replace").strip().upper()
            if up.startswith("EHLO"):
                sock.sendall(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 50000000\r\n")
            elif up.startswith("HELO"):
                sock.sendall(b"250 sink.test\r\n")
            elif up.startswith("MAIL FROM:"):
                rcpts = []
                sock.sendall(b"250 2.1.0 ok\r\n")
            elif up.startswith("RCPT TO:"):
                if self.refuse:
                    sock.sendall(b"451 4.3.2 not now\r\n")
                    continue
                rcpts.append(line.decode("utf-8", "replace")[8:].split(">")[0].strip(" <"))
                sock.sendall(b"250 2.1.5 ok\r\n")
            elif up == "DATA" and rcpts:
                sock.sendall(b"354 go ahead\r\n")
                data = self._data(rf)
                if data is None:
                    return  # cut off mid-transfer: not received
                with self.lock:
                    self.received.append((tuple(rcpts), data))
                self._hold()
                sock.sendall(b"250 2.0.0 received\r\n")
                rcpts = []
            elif up in ("RSET", "NOOP"):
                rcpts = [] if up == "RSET" else rcpts
                sock.sendall(b"250 2.0.0 ok\r\n")
            elif up == "QUIT":
                sock.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                sock.sendall(b"503 5.5.1 not here\r\n")

    def copies(self):
        """[(token, rcpt, data)] for every recipient of every message."""
        with self.lock:
            got = list(self.received)
        out = []
        for rcpts, data in got:
            m = SUBJECT_RE.search(data)
            token = m.group(1).decode() if m else None
            out.extend((token, r.lower(), data) for r in rcpts)
        return out

    def stop(self):
        self.hold = (0.0, 0.0)
        self.server.shutdown()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.server_close()
