"""SMTP AUTH (RFC 4954) and the submission listener (RFC 6409), without TLS:
`listen ... submission auth <passwd> insecure`."""
import smtplib
import subprocess

import pytest

from conftest import SMTPConn, build_dir, free_port, petreld_env, petreld_path

PASSWORDS = {"alice": "alice secret", "bob": "bob's pass"}
RULES = ('match for domain "example.org" action "local"\n'
         'match from auth for any action "remote"\n'
         'match from local for any action "remote"\n')


def hash_password(password):
    p = subprocess.run([str(build_dir() / "petrel"), "passwd"], input=password + "\n",
                       capture_output=True, text=True, timeout=30, check=True)
    return p.stdout.strip()


@pytest.fixture(scope="module")
def passwd_text():
    return "".join(f"{u}:{hash_password(pw)}\n" for u, pw in PASSWORDS.items())


def submission_petrel(petrel_factory, passwd_text, options="submission auth <passwd> insecure"):
    sub_port = free_port()
    p = petrel_factory(start=False, rules=RULES,
                       extra='table passwd file:"passwd"\n'
                             f"listen on 127.0.0.1 port {sub_port} {options}\n")
    (p.root / "passwd").write_text(passwd_text, encoding="utf-8")
    p.sub_port = sub_port
    return p


@pytest.fixture
def sub(petrel_factory, passwd_text):
    return submission_petrel(petrel_factory, passwd_text).start()


def client(port):
    s = smtplib.SMTP("127.0.0.1", port, timeout=15)
    s.ehlo("client.example.net")
    return s


def test_auth_advertised_on_submission_only(sub):
    s = client(sub.sub_port)
    assert s.has_extn("auth")
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    s.quit()
    s = client(sub.port)
    assert not s.has_extn("auth")
    assert s.docmd("AUTH", "PLAIN AGFsaWNlAHg=")[0] == 502
    s.quit()


def test_login_plain(sub):
    s = client(sub.sub_port)
    code, _ = s.login("alice", PASSWORDS["alice"])
    assert code == 235
    s.quit()
    err = sub.stderr()
    assert "auth: user=alice ok" in err
    assert PASSWORDS["alice"] not in err


def test_login_mechanism_login(sub):
    s = client(sub.sub_port)
    s.user, s.password = "bob", PASSWORDS["bob"]
    code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, resp
    s.quit()


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("nobody", "alice secret")])
def test_bad_credentials_535(sub, user, password):
    s = client(sub.sub_port)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(user, password)
    assert e.value.smtp_code == 535
    assert e.value.smtp_error.startswith(b"5.7.8")
    s.quit()
    assert f"auth: user={user} failed" in sub.stderr()
    assert password not in sub.stderr()


def test_mail_before_auth_530(sub):
    with SMTPConn(sub.sub_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>", 530, "5.7.0")


def test_relay_after_auth(sub):
    s = client(sub.sub_port)
    s.login("alice", PASSWORDS["alice"])
    assert s.mail("<alice@example.org>", ["AUTH=<>"])[0] == 250
    assert s.rcpt("<someone@far.example>")[0] == 250
    assert s.rcpt("<bob@example.org>")[0] == 250
    code, resp = s.data(b"Subject: hi\r\n\r\nhello\r\n")
    assert code == 250, resp
    s.quit()
    [mail] = sub.wait_mails("bob")
    # RFC 3848: the trace records an authenticated submission
    assert " with ESMTPA id " in " ".join(mail.get("Received")[0].split())
    # the foreign recipient stays queued: the test resolver answers nothing
    assert sub.queue_contains("someone@far.example")


def test_no_relay_without_auth(sub):
    with SMTPConn(sub.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<x@example.net>", 250)
        r = c.cmd("RCPT TO:<someone@far.example>")
        assert r.code == 550, r


@pytest.mark.parametrize("sender", ["<bob@example.org>", "<alice@far.example>", "<>"])
def test_sender_not_owned_553(sub, sender):
    s = client(sub.sub_port)
    s.login("alice", PASSWORDS["alice"])
    code, resp = s.docmd("MAIL", f"FROM:{sender}")
    assert code == 553, resp
    assert resp == b"5.7.1 sender address not owned by alice"
    s.quit()


def test_auth_without_insecure_is_a_config_error(petrel_factory, passwd_text):
    p = submission_petrel(petrel_factory, passwd_text, options="submission auth <passwd>")
    lines = p.conf.read_text(encoding="utf-8").splitlines()
    n = next(i + 1 for i, ln in enumerate(lines) if "auth <passwd>" in ln)
    r = subprocess.run([str(petreld_path()), "-c", str(p.conf)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20, env=petreld_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert f"petrel.conf:{n}: listen: auth without TLS: add `tls pki" in r.stderr, r.stderr


def test_submission_without_auth_is_a_config_error(petrel_factory, passwd_text):
    p = submission_petrel(petrel_factory, passwd_text, options="submission")
    r = subprocess.run([str(petreld_path()), "-n", "-c", str(p.conf)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20, env=petreld_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "listen: submission needs `auth`" in r.stderr


@pytest.mark.deadline(60)
def test_repeated_failures_close_and_throttle_the_address(petrel_factory, passwd_text):
    import base64

    p = submission_petrel(petrel_factory, passwd_text)
    p.extra += "limit auth-failures 2\nauth-throttle 1m\n"
    p.write_config()
    p.start()
    bad = base64.b64encode(b"\0alice\0wrong").decode()
    with SMTPConn(p.sub_port) as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {bad}", 535, "5.7.8")
        c.send(f"AUTH PLAIN {bad}\r\n")
        r1, r2 = c.reply(), c.reply()
        assert (r1.code, r1.status) == (535, "5.7.8")
        assert (r2.code, r2.status) == (421, "4.7.0"), r2
        assert c.wait_closed()
    with SMTPConn(p.sub_port, greet=False) as c:  # the same address: refused at once
        r = c.reply()
        assert (r.code, r.status) == (421, "4.7.0"), r
    with SMTPConn(p.sub_port, source="127.0.0.2") as c:  # another address is served
        assert c.greeting.code == 220
        c.ehlo()
        c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice secret").decode(), 235, "2.7.0")
    assert "throttling [127.0.0.1]" in p.stderr()


def b64(raw):
    import base64
    return base64.b64encode(raw).decode()


def auth_conn(sub):
    c = SMTPConn(sub.sub_port)
    c.ehlo()
    return c


@pytest.mark.parametrize("line,code,status", [
    ("AUTH PLAIN =", 334, None),                                 # empty initial: challenge
    ("AUTH PLAIN YWxpY2U", 501, "5.5.2"),                       # base64 without padding
    ("AUTH PLAIN not*base64", 501, "5.5.2"),
    ("AUTH PLAIN " + b64(b"\0alice"), 535, "5.7.8"),             # no password field
    ("AUTH PLAIN " + b64(b"\0\0alice secret"), 535, "5.7.8"),    # empty user name
    ("AUTH PLAIN " + b64(b"bob\0alice\0alice secret"), 535, "5.7.8"),  # authzid mismatch
    ("AUTH CRAM-MD5", 504, "5.5.4"),
])
def test_plain_edge_cases(sub, line, code, status):
    with auth_conn(sub) as c:
        r = c.cmd(line)
        assert r.code == code and (status is None or r.lines[0].startswith(status)), r
        if code == 334:  # an empty initial response asks for the whole message
            c.cmd(b64(b"\0alice\0" + PASSWORDS["alice"].encode()), 235, "2.7.0")
        else:
            c.cmd("MAIL FROM:<alice@example.org>", 530, "5.7.0")  # still not logged in
    assert "auth: user=alice ok" in sub.stderr() or code != 334


def test_authzid_equal_to_user_is_accepted(sub):
    with auth_conn(sub) as c:
        c.cmd("AUTH PLAIN " + b64(b"alice\0alice\0" + PASSWORDS["alice"].encode()), 235, "2.7.0")


def test_cancel_twice_and_in_transaction(sub):
    with auth_conn(sub) as c:
        c.cmd("AUTH PLAIN", 334)
        c.cmd("*", 501, "5.7.0")
        c.cmd("AUTH LOGIN", 334)
        c.cmd(b64(b"alice"), 334)
        c.cmd(b64(PASSWORDS["alice"].encode()), 235, "2.7.0")
        c.cmd("AUTH PLAIN " + b64(b"\0bob\0x"), 503, "5.5.1")       # AUTH twice
        c.cmd("MAIL FROM:<alice@example.org>", 250)
    with auth_conn(sub) as c:
        c.cmd("MAIL FROM:<alice@example.org>", 530)
    # AUTH inside a transaction
    with auth_conn(sub) as c:
        c.cmd("AUTH PLAIN " + b64(b"\0alice\0" + PASSWORDS["alice"].encode()), 235)
        c.cmd("MAIL FROM:<alice@example.org>", 250)
        c.cmd("AUTH PLAIN " + b64(b"\0bob\0x"), 503, "5.5.1")
