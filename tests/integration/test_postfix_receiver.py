"""
Postfix as a real receiving MTA: petrel relays to a private Postfix
instance found through MX records on a DNS server the test runs. Postfix
keeps what it accepts in its own queue (defer_transports = smtp), and the
test reads it back with postqueue.
"""
import json
import os
import subprocess

import pytest

from conftest import message, send_raw, wait_until
from peers import DNS
from test_postfix import MAIN_CF, POSTFIX, SMTPD_HOST, PrivatePostfix

RECEIVER = """
relayhost =
myhostname = mx.dest.test
relay_domains = dest.test
defer_transports = smtp relay
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
"""


@pytest.fixture
def postfix_receiver():
    if not os.path.exists(POSTFIX) or os.geteuid() != 0:
        pytest.skip("a private postfix instance needs postfix and root")
    pf = PrivatePostfix(relay_port=1)  # relays nowhere: relayhost is cleared below
    main = pf.conf / "main.cf"
    main.write_text(MAIN_CF.format(base=pf.base, host=SMTPD_HOST, relay_port=1) + RECEIVER)
    try:
        p = pf.start()
        assert p.returncode == 0, f"postfix start failed:\n{p.stdout}\n{p.stderr}\n{pf.log()}"
        yield pf
    finally:
        pf.stop()


def postfix_queue(pf):
    out = subprocess.run(["/usr/sbin/postqueue", "-c", str(pf.conf), "-j"], capture_output=True,
                         text=True, timeout=30).stdout
    return [json.loads(ln) for ln in out.splitlines() if ln.strip()]


@pytest.mark.deadline(120)
def test_petrel_relays_to_postfix(petrel_factory, postfix_receiver, tmp_path):
    pf = postfix_receiver
    dns = DNS(tmp_path, mx=[("dest.test", "mx.dest.test", 10)],
              hosts=[("mx.dest.test", SMTPD_HOST)])
    try:
        p = petrel_factory(trusted=["127.0.0.1"],
                           extra=f"resolver 127.0.0.1 port {dns.port}\nremote port {pf.port}\n")
        send_raw(p.port, "alice@example.org", ["carol@dest.test", "dave@dest.test"],
                 message("to-postfix", body="one transaction, two recipients\r\n"))
        p.wait_queue_empty(timeout=30)
        queued = wait_until(lambda: postfix_queue(pf), 30, what="the message in Postfix's queue")
        assert len(queued) == 1, queued  # both recipients in one transaction
        rcpts = sorted(r["address"] for r in queued[0]["recipients"])
        assert rcpts == ["carol@dest.test", "dave@dest.test"]
        assert queued[0]["sender"] == "alice@example.org"
        assert "status=sent" in p.stderr() and "relay=mx.dest.test" in p.stderr()
    finally:
        dns.stop()
