"""
The resolver (src/net/resolver.c) against a real DNS server: a private
dnsmasq on 127.0.0.1 (tests/integration/dnsserver.py), queried through
$PETREL_BUILD/tests/tools/resolve. Every query names that server and port,
so nothing reaches the machine's resolver. Covers RFC 5321 section 5.1
(preference order, equal preferences shuffled, implicit MX), RFC 7505 null
MX, NXDOMAIN, exchangers without addresses, answers too big for UDP, and
unreachable, silent and cancelled servers.
"""
import socket
import subprocess

import pytest

from conftest import SANITIZER_MARKS, build_dir, petreld_env
from dnsserver import Dnsmasq, free_udp_tcp_port

BIG = [(f"exchanger-number-{i:02d}.with-a-rather-long-name.big.test", 100 - i)
       for i in range(1, 31)]  # 30 MX records: about 2 KB, more than UDP's 512 bytes

MX = [
    ("order.test", "mx20.order.test", 20),
    ("order.test", "mx5.order.test", 5),
    ("order.test", "mx10.order.test", 10),
    ("equal.test", "a.equal.test", 10),
    ("equal.test", "b.equal.test", 10),
    ("equal.test", "c.equal.test", 20),
    ("dual.test", "mx.dual.test", 10),
    ("nullmx.test", ".", 0),
    ("partial.test", "ghost.partial.test", 5),
    ("partial.test", "mx.partial.test", 10),
    ("ghosts.test", "ghost1.ghosts.test", 10),
    ("ghosts.test", "ghost2.ghosts.test", 20),
] + [("big.test", name, pref) for name, pref in BIG]

HOSTS = [
    ("mx20.order.test", "192.0.2.20"),
    ("mx5.order.test", "192.0.2.5"),
    ("mx10.order.test", "192.0.2.10"),
    ("a.equal.test", "192.0.2.101"),
    ("b.equal.test", "192.0.2.102"),
    ("c.equal.test", "192.0.2.103"),
    ("mx.dual.test", "192.0.2.30", "2001:db8::30"),
    ("implicit.test", "192.0.2.40", "2001:db8::40"),
    ("nullmx.test", "192.0.2.50"),  # a null MX wins over any address
    ("mx.partial.test", "192.0.2.60"),
    ("many.test", "192.0.2.71", "2001:db8::71"),
    ("many.test", "192.0.2.72", "2001:db8::72"),
    ("many.test", "192.0.2.73", "2001:db8::73"),
    ("many.test", "192.0.2.74", "2001:db8::74"),
    ("many.test", "192.0.2.75", "2001:db8::75"),
    ("many.test", "192.0.2.76", "2001:db8::76"),
] + [(name, f"198.51.100.{i}") for i, (name, _) in enumerate(BIG, 1)]

CNAMES = [("alias.test", "implicit.test")]
TXT = [("empty.test", "a name with no MX, A or AAAA")]


class Result:
    def __init__(self, domain, status, implicit):
        self.domain = domain
        self.status = status
        self.implicit = implicit
        self.hosts = []  # (pref, name, [addresses])
        self.error = ""

    def names(self):
        return [h[1] for h in self.hosts]

    def __repr__(self):
        return f"<{self.domain} {self.status} implicit={self.implicit} {self.hosts} {self.error!r}>"


def resolve_path():
    return build_dir() / "tests" / "tools" / "resolve"


def resolve(port, *domains, server="127.0.0.1", cancel_ms=None, timeout=40):
    """Runs the resolve tool on domains; returns one Result per domain, in
    order. Fails on a contract breach, a bad exit or a sanitizer report."""
    tool = resolve_path()
    if not tool.exists():
        pytest.fail(f"{tool} does not exist: run `make all` (PETREL_BUILD={build_dir()})")
    argv = [str(tool)]
    if cancel_ms is not None:
        argv += ["-c", str(cancel_ms)]
    argv += [server, str(port), *domains]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=petreld_env())
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == 0, f"resolve exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    results = {}
    for ln in p.stdout.splitlines():
        kind, idx, rest = ln.split(" ", 2)
        i = int(idx)
        if kind == "result":
            domain, status, implicit, nhosts = rest.split(" ")
            assert i not in results, f"two answers for {domain}"
            results[i] = Result(domain, status, implicit == "implicit=1")
            results[i].nhosts = int(nhosts.split("=")[1])
        elif kind == "host":
            pref, name, *addrs = rest.split(" ")
            results[i].hosts.append((int(pref), name, addrs))
        elif kind == "error":
            results[i].error = rest
        else:
            pytest.fail(f"resolve: {ln}")
    assert sorted(results) == list(range(len(domains))), p.stdout
    for r in results.values():
        assert len(r.hosts) == r.nhosts
    return [results[i] for i in range(len(domains))]


def resolve1(port, domain, **kw):
    return resolve(port, domain, **kw)[0]


@pytest.fixture(scope="module")
def dns():
    d = Dnsmasq(mx=MX, hosts=HOSTS, cnames=CNAMES, txt=TXT)
    d.start()
    yield d
    d.close()


# ---------------------------------------------------------------------------
# RFC 5321 section 5.1

def test_mx_in_preference_order(dns):
    r = resolve1(dns.port, "order.test")
    assert r.status == "OK" and not r.implicit
    assert r.hosts == [(5, "mx5.order.test", ["192.0.2.5"]),
                       (10, "mx10.order.test", ["192.0.2.10"]),
                       (20, "mx20.order.test", ["192.0.2.20"])]
    assert ("MX", "order.test") in dns.queries()  # asked our dnsmasq


def test_trailing_dot(dns):
    r = resolve1(dns.port, "order.test.")
    assert r.status == "OK"
    assert r.names() == ["mx5.order.test", "mx10.order.test", "mx20.order.test"]


def test_equal_preferences_shuffled(dns):
    """Both orders of the two preference-10 hosts turn up over 40 lookups
    (both missing by chance: 2 in 2^40); the preference-20 host stays last."""
    orders = set()
    for r in resolve(dns.port, *["equal.test"] * 40):
        assert r.status == "OK"
        assert r.names()[2] == "c.equal.test"
        assert sorted(r.names()[:2]) == ["a.equal.test", "b.equal.test"]
        orders.add(tuple(r.names()[:2]))
    assert len(orders) == 2


def test_exchanger_with_a_and_aaaa(dns):
    r = resolve1(dns.port, "dual.test")
    assert r.status == "OK"
    assert r.hosts == [(10, "mx.dual.test", ["192.0.2.30", "2001:db8::30"])]
    assert ("A", "mx.dual.test") in dns.queries()
    assert ("AAAA", "mx.dual.test") in dns.queries()


def test_implicit_mx(dns):
    r = resolve1(dns.port, "implicit.test")
    assert r.status == "OK" and r.implicit
    assert r.hosts == [(0, "implicit.test", ["192.0.2.40", "2001:db8::40"])]


def test_implicit_mx_through_cname(dns):
    r = resolve1(dns.port, "alias.test")
    assert r.status == "OK" and r.implicit
    assert r.hosts == [(0, "alias.test", ["192.0.2.40", "2001:db8::40"])]


def test_no_mx_and_no_address_is_permanent(dns):
    r = resolve1(dns.port, "empty.test")
    assert r.status == "NXDOMAIN" and r.hosts == []
    assert r.error == "DNS: empty.test: no MX and no A/AAAA records"


# ---------------------------------------------------------------------------
# RFC 7505, NXDOMAIN, exchangers without addresses

def test_null_mx(dns):
    r = resolve1(dns.port, "nullmx.test")
    assert r.status == "NULL_MX" and r.hosts == []
    assert "RFC 7505" in r.error
    assert ("A", "nullmx.test") not in dns.queries()  # no implicit MX behind it


def test_nxdomain(dns):
    r = resolve1(dns.port, "nosuch.test")
    assert r.status == "NXDOMAIN"
    assert r.error == "DNS: nosuch.test: no such domain"


def test_refused_is_tempfail(dns):
    """dnsmasq has no upstream: a name outside its zones is REFUSED."""
    r = resolve1(dns.port, "outside.example")
    assert r.status == "TEMPFAIL"
    assert r.error == "DNS: outside.example: MX lookup refused by the server (REFUSED)"


def test_exchanger_without_address_is_dropped(dns):
    r = resolve1(dns.port, "partial.test")
    assert r.status == "OK"
    assert r.hosts == [(10, "mx.partial.test", ["192.0.2.60"])]


def test_no_exchanger_with_address_is_tempfail(dns):
    r = resolve1(dns.port, "ghosts.test")
    assert r.status == "TEMPFAIL" and r.hosts == []
    assert r.error.startswith("DNS: ghosts.test: no address for any MX host (ghost1.ghosts.test")


# ---------------------------------------------------------------------------
# Sizes and limits

def test_answer_too_big_for_udp_goes_over_tcp(dns):
    """30 long MX records do not fit 512 bytes: dnsmasq truncates, c-ares asks
    again over TCP on the same port; the 16 best are kept."""
    r = resolve1(dns.port, "big.test")
    assert r.status == "OK"
    best = sorted(BIG, key=lambda x: x[1])[:16]
    assert [(h[0], h[1]) for h in r.hosts] == [(p, n) for n, p in best]
    assert all(len(h[2]) == 1 for h in r.hosts)


def test_addresses_capped_half_per_family(dns):
    r = resolve1(dns.port, "many.test")
    assert r.status == "OK" and r.implicit
    addrs = r.hosts[0][2]
    assert len(addrs) == 8
    assert all("." in a for a in addrs[:4]) and all(":" in a for a in addrs[4:])
    assert set(addrs[:4]) <= {f"192.0.2.{i}" for i in range(71, 77)}


def test_many_queries_at_once(dns):
    domains = ["order.test", "nosuch.test", "nullmx.test", "implicit.test", "ghosts.test"] * 10
    want = {"order.test": "OK", "nosuch.test": "NXDOMAIN", "nullmx.test": "NULL_MX",
            "implicit.test": "OK", "ghosts.test": "TEMPFAIL"}
    for r in resolve(dns.port, *domains):
        assert r.status == want[r.domain], r


def test_address_literals_need_no_dns(dns):
    before = len(dns.queries())
    v4, v6, bad = resolve(dns.port, "[192.0.2.7]", "[IPv6:2001:db8::7]", "[192.0.2.300]")
    assert (v4.status, v4.hosts) == ("OK", [(0, "[192.0.2.7]", ["192.0.2.7"])])
    assert (v6.status, v6.hosts) == ("OK", [(0, "[IPv6:2001:db8::7]", ["2001:db8::7"])])
    assert bad.status == "NXDOMAIN" and "bad address literal" in bad.error
    assert len(dns.queries()) == before


def test_ipv6_server():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    with Dnsmasq(mx=MX, hosts=HOSTS, listen="::1") as d6:
        r = resolve1(d6.port, "order.test", server="::1")
        assert r.status == "OK"
        assert r.names() == ["mx5.order.test", "mx10.order.test", "mx20.order.test"]


# ---------------------------------------------------------------------------
# Servers that do not answer

def test_server_down_is_tempfail():
    port = free_udp_tcp_port()  # nothing listens: ICMP port unreachable
    r = resolve1(port, "order.test")
    assert r.status == "TEMPFAIL"
    assert r.error == "DNS: order.test: MX lookup failed: connection refused"


@pytest.mark.deadline(60)
def test_silent_server_times_out():
    """A server that reads and never answers: 3 s, then 6 s on the second
    try (c-ares doubles the timeout), then TEMPFAIL."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        r = resolve1(silent.getsockname()[1], "order.test", timeout=45)
    assert r.status == "TEMPFAIL"
    assert r.error == "DNS: order.test: MX lookup timed out"


def test_free_cancels_pending_queries():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        results = resolve(silent.getsockname()[1], "a.test", "b.test", "c.test", cancel_ms=300)
    for r in results:
        assert r.status == "TEMPFAIL"
        assert r.error == f"DNS: {r.domain}: resolver shut down"
