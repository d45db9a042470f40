"""
Remote hosts for outbound tests, all on loopback: a DNS server (dnsmasq)
that serves the test's MX/A/AAAA/null-MX records, and a scriptable SMTP
peer that records what it receives and answers per recipient on demand:
a local part starting with "temp" gets 451, "perm" gets 550, "tempfirst"
gets 451 on its first attempt only; everything else 250. A peer can
offer STARTTLS (RFC 3207) or speak TLS from the first byte (smtps, RFC
8314) with a certificate from certs.py, and ask for AUTH PLAIN/LOGIN
(RFC 4954) with the credentials it is given.
"""
import base64
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time

from conftest import free_port, wait_until


class DNS:
    """dnsmasq answering only from the records given; NXDOMAIN for the rest
    of .test. Started on 127.0.0.1:port; stopped by PID."""

    def __init__(self, tmp_path, mx=(), hosts=(), null_mx=()):
        self.port = free_port()
        args = ["/usr/sbin/dnsmasq", "--no-daemon", "--port", str(self.port),
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=", "--user=root", "--local=/test/",
                "--log-facility=" + str(tmp_path / "dnsmasq.log")]
        for domain, target, pref in mx:
            args.append(f"--mx-host={domain},{target},{pref}")
        for name, addr in hosts:
            args.append(f"--host-record={name},{addr}")
        for domain in null_mx:  # RFC 7505: MX 0 "."  (rdata: pref 0, root name)
            args.append(f"--dns-rr={domain},15,000000")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._answers, 10, what="dnsmasq to answer")

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq exited: " + self.proc.stderr.read().decode())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            # a minimal query for "x.test" A
            q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x04test\x00\x00\x01\x00\x01"
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return len(s.recvfrom(512)[0]) > 0
            except OSError:
                return False

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


class Message:
    def __init__(self, sender, rcpts, data, helo, tls=None, auth=None):
        self.sender, self.rcpts, self.data, self.helo = sender, rcpts, data, helo
        self.tls = tls    # (version, cipher) of the session, None in the clear
        self.auth = auth  # the user it authenticated as, None if it did not


class _Writer:
    """wfile for a socket (plain or TLS): every write sent whole."""

    def __init__(self, sock):
        self.sock = sock

    def write(self, data):
        self.sock.sendall(data)

    def flush(self):
        pass


class Peer:
    """An SMTP server on (ip, port) in a thread. ext: EHLO keywords."""

    def __init__(self, ip, port, ext=("PIPELINING", "8BITMIME", "SIZE 10000000", "DSN"),
                 greeting=220, name=None, lmtp=False, tls=None, smtps=False, auth=None,
                 starttls_reply=None, starttls_extra=b""):
        """tls: (cert, key) paths: offer STARTTLS with that certificate
        (or, with smtps=True, TLS from the first byte). auth: {user: password}:
        offer AUTH PLAIN LOGIN inside TLS and refuse MAIL without it.
        starttls_reply: answer STARTTLS with this line instead of 220.
        starttls_extra: bytes sent in the clear right after the 220 (an
        injection a client must not take as replies inside TLS)."""
        self.ip, self.port, self.ext, self.greeting = ip, port, ext, greeting
        self.smtps, self.auth, self.starttls_reply = smtps, auth, starttls_reply
        self.starttls_extra = starttls_extra
        self.ssl_ctx = None
        if tls:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        self.tls_sessions = []  # (version, cipher) of each completed handshake
        self.tls_failures = []  # str(error) of each failed handshake
        self.auth_attempts = []  # (mechanism, user, password, tls version or None)
        self.lmtp = lmtp  # RFC 2033: one final reply per accepted recipient
        self.sessions = 0
        self.active = 0  # sessions open now
        self.max_active = 0
        self.name = name or ip
        self.messages = []
        self.attempts = {}  # rcpt -> RCPT commands seen
        self.commands = []  # every command line received
        self.hold_data = False  # True: sit on the final reply of DATA until False
        self.in_data = False
        self.lock = threading.Lock()
        peer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                peer._session(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((ip, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _rcpt_reply(self, addr):
        local = addr.split("@")[0].lower()
        with self.lock:
            n = self.attempts[addr] = self.attempts.get(addr, 0) + 1
        if local.startswith("tempfirst"):
            return b"451 4.3.0 try again later\r\n" if n == 1 else b"250 2.1.5 ok\r\n"
        if local.startswith("temp"):
            return b"451 4.2.0 mailbox busy\r\n"
        if local.startswith("perm"):
            return b"550 5.1.1 no such user here\r\n"
        return b"250 2.1.5 ok\r\n"

    def _session(self, sock):
        with self.lock:
            self.sessions += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._dialogue(sock)
        finally:
            with self.lock:
                self.active -= 1

    def _start_tls(self, sock):
        """The server side of the handshake; (tls socket, (version, cipher))
        or (None, None) when it failed (recorded in tls_failures)."""
        sock.settimeout(10)
        try:
            t = self.ssl_ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.tls_failures.append(str(e))
            return None, None
        info = (t.version(), t.cipher()[0])
        with self.lock:
            self.tls_sessions.append(info)
        return t, info

    def _check_auth(self, mech, user, password, tls):
        with self.lock:
            self.auth_attempts.append((mech, user, password, tls[0] if tls else None))
        ok = tls is not None and self.auth.get(user) == password
        return (b"235 2.7.0 Authentication successful\r\n" if ok
                else b"535 5.7.8 Authentication credentials invalid\r\n"), (user if ok else None)

    def _auth(self, cmd, rf, wf, tls):
        """AUTH PLAIN [initial] or AUTH LOGIN; returns the user or None."""
        words = cmd.split()
        mech = words[1].upper() if len(words) > 1 else ""

        def b64(s):
            try:
                return base64.b64decode(s, validate=True).decode("utf-8", "replace")
            except ValueError:
                return None

        def ask(challenge):
            wf.write(b"334 " + challenge + b"\r\n")
            return rf.readline().decode("ascii", "replace").strip()

        if mech == "PLAIN":
            resp = words[2] if len(words) > 2 else ask(b"")
            fields = (b64(resp) or "").split("\0")
            if len(fields) != 3:
                wf.write(b"501 5.5.2 bad PLAIN response\r\n")
                return None
            reply, user = self._check_auth("PLAIN", fields[1], fields[2], tls)
        elif mech == "LOGIN":
            user = b64(ask(b"VXNlcm5hbWU6")) or ""
            password = b64(ask(b"UGFzc3dvcmQ6")) or ""
            reply, user = self._check_auth("LOGIN", user, password, tls)
        else:
            wf.write(b"504 5.5.4 unknown mechanism\r\n")
            return None
        wf.write(reply)
        return user

    def _dialogue(self, sock):
        tls = None
        if self.smtps:
            sock, tls = self._start_tls(sock)
            if sock is None:
                return
        rf, wf = sock.makefile("rb"), _Writer(sock)
        try:
            self._commands(sock, rf, wf, tls)
        finally:
            rf.close()
            if tls:
                sock.close()

    def _ehlo_lines(self, tls):
        ext = list(self.ext)
        if self.ssl_ctx and not tls:
            ext.append("STARTTLS")
        if self.auth and tls:
            ext.append("AUTH PLAIN LOGIN")
        return [self.name] + ext

    def _commands(self, sock, rf, wf, tls, greet=True):
        if greet and self.greeting != 220:
            wf.write(b"%d 4.3.2 not now\r\n" % self.greeting)
            return
        if greet:
            wf.write(f"220 {self.name} ESMTP test peer\r\n".encode())
        sender, rcpts, helo, user = None, [], "", None
        while True:
            line = rf.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            up = cmd.upper()
            with self.lock:
                self.commands.append(cmd)
            if up == "STARTTLS" and self.ssl_ctx and not tls:
                if self.starttls_reply:
                    wf.write(self.starttls_reply.encode() + b"\r\n")
                    continue
                wf.write(b"220 2.0.0 Ready to start TLS\r\n" + self.starttls_extra)
                rf.close()  # nothing may be buffered past STARTTLS: none was sent
                sock, tls = self._start_tls(sock)
                if sock is None:
                    return
                # RFC 3207 4.2: the session starts over inside TLS, no greeting
                rf = sock.makefile("rb")
                try:
                    self._commands(sock, rf, _Writer(sock), tls, greet=False)
                finally:
                    rf.close()
                    sock.close()
                return
            elif up.startswith("AUTH") and self.auth and tls and user is None:
                user = self._auth(cmd, rf, wf, tls)
            elif up.startswith("EHLO") or up.startswith("LHLO"):
                helo = cmd[5:]
                lines = self._ehlo_lines(tls)
                wf.write("".join(f"250{'-' if i < len(lines) - 1 else ' '}{l}\r\n"
                                 for i, l in enumerate(lines)).encode())
            elif up.startswith("HELO"):
                helo = cmd[5:]
                wf.write(b"250 ok\r\n")
            elif up.startswith("MAIL FROM:") and self.auth and user is None:
                wf.write(b"530 5.7.0 Authentication required\r\n")
            elif up.startswith("MAIL FROM:"):
                sender, rcpts = cmd[10:].split(">")[0].lstrip(" <"), []
                wf.write(b"250 2.1.0 ok\r\n")
            elif up.startswith("RCPT TO:"):
                addr = cmd[8:].split(">")[0].lstrip(" <")
                reply = self._rcpt_reply(addr)
                if reply.startswith(b"250"):
                    rcpts.append(addr)
                wf.write(reply)
            elif up == "DATA":
                if not rcpts:
                    wf.write(b"554 5.5.1 no valid recipients\r\n")
                    continue
                wf.write(b"354 go ahead\r\n")
                wf.flush()
                data = b""
                while True:
                    ln = rf.readline()
                    if not ln or ln == b".\r\n":
                        break
                    data += ln[1:] if ln.startswith(b"..") else ln
                self.in_data = True
                while self.hold_data:
                    time.sleep(0.05)
                with self.lock:
                    self.messages.append(Message(sender, rcpts, data, helo, tls, user))
                wf.write(b"250 2.0.0 queued\r\n" * (len(rcpts) if self.lmtp else 1))
            elif up == "RSET":
                sender, rcpts = None, []
                wf.write(b"250 2.0.0 ok\r\n")
            elif up == "QUIT":
                wf.write(b"221 2.0.0 bye\r\n")
                return
            else:
                wf.write(b"502 5.5.1 not here\r\n")
            wf.flush()

    def received(self, rcpt=None):
        with self.lock:
            return [m for m in self.messages if rcpt is None or rcpt in m.rcpts]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
