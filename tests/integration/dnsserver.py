"""
A private DNS server for tests: dnsmasq (Debian dnsmasq-base) on 127.0.0.1
and a free port, authoritative for the zones it is given and for nothing
else. It never forwards (--no-resolv, no upstream servers), and --local
makes it answer NXDOMAIN for unknown names under those zones, so no query
can leak to the machine's resolver.

    with Dnsmasq(mx=[("example.test", "mx.example.test", 10)],
                 hosts=[("mx.example.test", "192.0.2.1", "2001:db8::1")]) as dns:
        ... dns.port ...

It runs with --keep-in-foreground, not --no-daemon: in --no-daemon mode
dnsmasq answers TCP queries in its main process, and one open TCP
connection stalls every UDP answer until it closes.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

DNSMASQ = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin:/bin")
START_TIMEOUT = 10.0


def free_udp_tcp_port(host="127.0.0.1"):
    """A port that is free for both UDP and TCP on host (DNS uses both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP+TCP port")


def dns_query(name, qtype=1, qid=0x1234):
    """A DNS query message (RD set) for name and qtype."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


class Dnsmasq:
    """One dnsmasq process. mx: (domain, exchanger, pref) with exchanger "."
    for a null MX; hosts: (name, addr[, addr]) A/AAAA records; cnames:
    (alias, target); txt: (name, text); zones: domains it is authoritative
    for (default: "test"); extra: more dnsmasq arguments."""

    def __init__(self, mx=(), hosts=(), cnames=(), txt=(), zones=("test",), extra=(),
                 listen="127.0.0.1"):
        if DNSMASQ is None:
            raise RuntimeError("dnsmasq not found (Debian package dnsmasq-base)")
        self.listen = listen
        self.port = None
        self.proc = None
        self.dir = Path(tempfile.mkdtemp(prefix="petrel-dnsmasq-"))
        self.log = self.dir / "dnsmasq.log"
        self.records = [f"--local=/{z}/" for z in zones]
        self.records += [f"--mx-host={d},{x},{p}" for d, x, p in mx]
        self.records += ["--host-record=" + ",".join(h) for h in hosts]
        self.records += [f"--cname={a},{t}" for a, t in cnames]
        self.records += [f"--txt-record={n},{t}" for n, t in txt]
        self.records += list(extra)

    def argv(self):
        argv = [DNSMASQ, "--keep-in-foreground", f"--port={self.port}",
                f"--listen-address={self.listen}", "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--log-facility=-",
                "--log-queries", "--cache-size=0", "--no-negcache"]
        if os.geteuid() == 0:
            argv.append("--user=root")  # it would switch to nobody, who owns nothing here
        return argv + self.records

    def start(self):
        for _ in range(3):  # the free port may be taken before dnsmasq binds it
            self.port = free_udp_tcp_port(self.listen)
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, start_new_session=True)
            if self.wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"dnsmasq did not start:\n{self.log_text()}")

    def wait_ready(self):
        """True once a query gets an answer; False if dnsmasq exited."""
        family = socket.AF_INET6 if ":" in self.listen else socket.AF_INET
        end = time.monotonic() + START_TIMEOUT
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    return False
                try:
                    s.sendto(dns_query("ready.invalid"), (self.listen, self.port))
                    if s.recv(512)[:2] == b"\x12\x34":
                        return True
                except OSError:
                    pass
        return False

    def stop(self):
        """SIGTERM to dnsmasq and the TCP children in its session, by its PID."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def log_text(self):
        return self.log.read_text("utf-8", "replace") if self.log.exists() else ""

    def queries(self):
        """(type, name) of each query dnsmasq logged, in order."""
        out = []
        for ln in self.log_text().splitlines():
            i = ln.find(": query[")
            if i >= 0:
                rest = ln[i + len(": query["):]
                qtype, _, tail = rest.partition("] ")
                out.append((qtype, tail.split(" ")[0]))
        return out

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
