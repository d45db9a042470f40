"""TLS on the server side: STARTTLS (RFC 3207) on an MX and a submission
listener, implicit TLS on an smtps listener (RFC 8314), AUTH held back until
TLS (RFC 4954 4), STARTTLS command injection, the Received field, protocol
versions, and certificate reload on SIGHUP."""
import signal
import smtplib
import socket
import ssl
import subprocess
import warnings

import pytest

from certs import CA
from conftest import HOSTNAME, SMTPConn, free_port, petreld_env, petreld_path, wait_until
from test_auth import PASSWORDS, RULES, passwd_text  # noqa: F401 (a fixture)

PLAIN_ALICE = "AGFsaWNlAGFsaWNlIHNlY3JldA=="  # \0alice\0alice secret


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CA(tmp_path_factory.mktemp("ca"))


def client_context(ca):
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.check_hostname = True
    return ctx


def tls_petrel(petrel_factory, ca, passwd_text, extra=""):
    cert, key = ca.leaf(HOSTNAME, ["127.0.0.1"])
    mx, sub, smtps = free_port(), free_port(), free_port()
    p = petrel_factory(
        start=False, rules=RULES,
        extra=f'pki "mx" cert "{cert}" key "{key}"\n'
              'table passwd file:"passwd"\n'
              f'listen on 127.0.0.1 port {mx} tls pki "mx"\n'
              f'listen on 127.0.0.1 port {sub} submission tls pki "mx" auth <passwd>\n'
              f'listen on 127.0.0.1 port {smtps} smtps pki "mx" submission auth <passwd>\n'
              + extra)
    (p.root / "passwd").write_text(passwd_text, encoding="utf-8")
    p.mx_port, p.sub_port, p.smtps_port = mx, sub, smtps
    p.cert, p.key = cert, key
    return p.start()


@pytest.fixture
def tp(petrel_factory, ca, passwd_text):
    return tls_petrel(petrel_factory, ca, passwd_text)


def smtp(port):
    s = smtplib.SMTP("127.0.0.1", port, timeout=15)
    s.ehlo("client.example.net")
    return s


def received(mail):
    return mail.get("Received")[0]


def test_starttls_on_mx_and_received_records_tls(tp, ca):
    s = smtp(tp.mx_port)
    assert s.has_extn("starttls")
    assert not s.has_extn("auth")
    code, _ = s.starttls(context=client_context(ca))
    assert code == 220
    version = s.sock.version()
    cipher = s.sock.cipher()[0]
    s.ehlo("client.example.net")
    assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
    s.sendmail("someone@example.net", ["alice@example.org"], b"Subject: tls\r\n\r\nhi\r\n")
    s.quit()
    mail = tp.wait_mails("alice")[0]
    r = received(mail)
    assert f"(using {version} with cipher {cipher} (" in r, r
    assert " with ESMTPS id " in r, r
    assert version in ("TLSv1.2", "TLSv1.3")
    assert f"TLS from [127.0.0.1]: {version} with cipher {cipher}" in tp.stderr()


def test_plain_session_has_no_tls_in_received(tp):
    s = smtp(tp.mx_port)
    s.sendmail("someone@example.net", ["bob@example.org"], b"Subject: plain\r\n\r\nhi\r\n")
    s.quit()
    r = received(tp.wait_mails("bob")[0])
    assert "(using" not in r and " with ESMTP id " in r, r


def test_auth_needs_tls_on_submission(tp, ca):
    s = smtp(tp.sub_port)
    assert s.has_extn("starttls")
    assert not s.has_extn("auth"), "AUTH offered before TLS"
    assert s.docmd("AUTH", "PLAIN " + PLAIN_ALICE) == (
        538, b"5.7.11 Encryption required for requested authentication mechanism: use "
             b"STARTTLS first")
    assert s.docmd("MAIL", "FROM:<alice@example.org>")[0] == 530
    s.starttls(context=client_context(ca))
    s.ehlo("client.example.net")
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    assert s.login("alice", PASSWORDS["alice"])[0] == 235
    s.sendmail("alice@example.org", ["bob@example.org"], b"Subject: sub\r\n\r\nhi\r\n")
    s.quit()
    r = received(tp.wait_mails("bob")[0])
    assert " with ESMTPSA id " in r and "(using TLSv1." in r, r


def test_smtps_implicit_tls(tp, ca):
    s = smtplib.SMTP_SSL("127.0.0.1", tp.smtps_port, timeout=15,
                         context=client_context(ca))
    s.ehlo("client.example.net")
    assert s.has_extn("auth") and not s.has_extn("starttls")
    assert s.docmd("STARTTLS")[0] == 503
    assert s.login("bob", PASSWORDS["bob"])[0] == 235
    s.sendmail("bob@example.org", ["carol@example.org"], b"Subject: 465\r\n\r\nhi\r\n")
    s.quit()
    r = received(tp.wait_mails("carol")[0])
    assert " with ESMTPSA id " in r and "(using TLSv1." in r, r


def raw_starttls(port, ca, pipelined=b""):
    """EHLO, then STARTTLS (plus pipelined bytes in the same write); returns
    the TLS socket after the handshake and the plain-side buffer."""
    c = SMTPConn(port)
    c.ehlo()
    c.send(b"STARTTLS\r\n" + pipelined)
    r = c.reply()
    assert r.code == 220 and r.lines == ["2.0.0 Ready to start TLS"], r
    assert c.buf == b"", "data after the 220 in the clear"
    tls = client_context(ca).wrap_socket(c.sock, server_hostname=HOSTNAME)
    return tls


def tls_reply(sock):
    buf = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
        lines = buf.split(b"\r\n")
        if len(lines) > 1 and lines[-2][3:4] == b" " and buf.endswith(b"\r\n"):
            return buf.decode()


def test_state_reset_after_starttls(tp, ca):
    tls = raw_starttls(tp.mx_port, ca)
    tls.sendall(b"MAIL FROM:<a@example.net>\r\n")
    assert tls_reply(tls) == "503 5.5.1 send HELO or EHLO first\r\n"
    tls.sendall(b"EHLO client.example.net\r\n")
    assert tls_reply(tls).startswith("250-")
    tls.sendall(b"QUIT\r\n")
    assert tls_reply(tls).startswith("221 ")
    tls.close()


def test_starttls_injection_is_discarded(tp, ca):
    """CVE-2011-0411: commands sent in the clear behind STARTTLS must not run
    inside TLS."""
    tls = raw_starttls(tp.mx_port, ca,
                       pipelined=b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<alice@example.org>\r\n")
    tls.sendall(b"EHLO client.example.net\r\n")
    first = tls_reply(tls)
    assert first.startswith("250-" + HOSTNAME), f"first reply inside TLS: {first!r}"
    # had the injected MAIL run, this RCPT would be accepted
    tls.sendall(b"RCPT TO:<alice@example.org>\r\n")
    assert tls_reply(tls) == "503 5.5.1 need MAIL before RCPT\r\n"
    tls.close()
    wait_until(lambda: "octets sent after STARTTLS discarded" in tp.stderr(), 10,
               what="the discard logged")


def test_garbage_instead_of_handshake(tp):
    c = SMTPConn(tp.mx_port)
    c.ehlo()
    c.cmd("STARTTLS", 220)
    c.send(b"EHLO not-tls\r\n" * 10)
    assert c.wait_closed(), "petreld kept a session whose handshake failed"
    wait_until(lambda: "TLS handshake with [127.0.0.1] failed" in tp.stderr(), 10,
               what="the failed handshake logged")
    with SMTPConn(tp.mx_port) as ok:  # the daemon serves the next client
        ok.ehlo()


def test_protocol_versions(tp, ca):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(ca)
        ctx.minimum_version = ctx.maximum_version = version
        s = smtplib.SMTP_SSL("127.0.0.1", tp.smtps_port, timeout=15, context=ctx)
        assert s.sock.version() == version.name.replace("_", ".")
        s.quit()
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        with warnings.catch_warnings():  # deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this Python cannot offer TLS 1.1 at all")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        smtplib.SMTP_SSL("127.0.0.1", tp.smtps_port, timeout=15, context=old)
    wait_until(lambda: "TLS handshake with [127.0.0.1] failed" in tp.stderr(), 10,
               what="the refused TLS 1.1 handshake logged")


def peer_cert(port, ca):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context(ca).wrap_socket(raw, server_hostname=HOSTNAME) as t:
            return t.getpeercert(binary_form=True)


def test_sighup_loads_renewed_certificate(tp, ca):
    before = peer_cert(tp.smtps_port, ca)
    cert, key = ca.leaf(HOSTNAME, ["127.0.0.1"])
    tp.cert.write_bytes(cert.read_bytes())
    tp.key.write_bytes(key.read_bytes())
    tp.signal(signal.SIGHUP)
    wait_until(lambda: peer_cert(tp.smtps_port, ca) != before, 15,
               what="the renewed certificate served after SIGHUP")
    s = smtp(tp.mx_port)  # STARTTLS uses it too
    s.starttls(context=client_context(ca))
    assert s.sock.getpeercert(binary_form=True) == cert_der(cert)
    s.quit()


def cert_der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_mismatched_key_is_a_config_error(petrel_factory, ca):
    cert, _ = ca.leaf(HOSTNAME)
    _, other_key = ca.leaf("other.example.org")
    p = petrel_factory(start=False, extra=f'pki "mx" cert "{cert}" key "{other_key}"\n')
    p.write_config()
    lines = p.conf.read_text().splitlines()
    n = next(i + 1 for i, ln in enumerate(lines) if ln.startswith("pki "))
    r = subprocess.run([str(petreld_path()), "-c", str(p.conf)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20, env=petreld_env())
    assert r.returncode == 2, r.stderr
    assert f'petrel.conf:{n}: pki "mx": key "{other_key}"' in r.stderr, r.stderr
    assert "mismatch" in r.stderr or "does not match" in r.stderr, r.stderr


def test_swaks_starttls_and_auth(tp):
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{tp.sub_port}", "--tls",
                        "--auth", "PLAIN", "--auth-user", "alice",
                        "--auth-password", PASSWORDS["alice"], "--from", "alice@example.org",
                        "--to", "carol@example.org", "--helo", "client.example.net",
                        "--tls-verify", "--tls-ca-path", str(tp.cert.parent / "ca.crt"),
                        "--tls-sni", HOSTNAME],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout
    r = received(tp.wait_mails("carol")[0])
    assert " with ESMTPSA id " in r, r


def test_early_talker_refused(petrel_factory):
    p = petrel_factory(extra="greeting-delay 2s\n")
    c = SMTPConn(p.port, greet=False)
    c.send(b"EHLO bot.example\r\n")
    r = c.reply()
    assert r.code == 554 and r.lines == [
        f"5.5.1 {HOSTNAME} protocol error: data sent before the greeting"], r
    assert c.wait_closed()
    with SMTPConn(p.port) as ok:  # a patient client gets the 220 after the delay
        assert ok.greeting.code == 220
        ok.ehlo()
    assert "reject: early talker [127.0.0.1]" in p.stderr()
