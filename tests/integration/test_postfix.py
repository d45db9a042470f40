"""A private Postfix instance as a sending peer: it relays into petrel.

The instance lives entirely under a temp dir (config, queue, data, log)
and listens on 127.0.0.2:<free port>; the system's default instance and
/etc/postfix are never touched. Postfix needs root, the `postfix` user and
the `postdrop` group (Debian's postfix package creates both)."""
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import free_port, wait_until

POSTFIX = "/usr/sbin/postfix"
SMTPD_HOST = "127.0.0.2"

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{smtpd_addr} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = sender.test
mydomain = sender.test
myorigin = sender.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
smtp_bind_address = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{relay_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
default_database_type = hash
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtpd_peername_lookup = no
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
"""


class PrivatePostfix:
    def __init__(self, relay_port):
        # not under pytest's 0700 tmp dirs: postfix's unprivileged daemons
        # (user postfix) must be able to reach the queue
        self.base = Path(tempfile.mkdtemp(prefix="petrel-postfix-"))
        os.chmod(self.base, 0o755)
        self.conf = self.base / "etc"
        self.conf.mkdir()
        (self.base / "queue").mkdir()
        (self.base / "data").mkdir()
        pw = pwd.getpwnam("postfix")
        os.chown(self.base / "data", pw.pw_uid, pw.pw_gid)
        self.port = free_port(SMTPD_HOST)
        (self.conf / "main.cf").write_text(MAIN_CF.format(base=self.base, host=SMTPD_HOST,
                                                          relay_port=relay_port))
        (self.conf / "master.cf").write_text(
            MASTER_CF.format(smtpd_addr=f"{SMTPD_HOST}:{self.port}"))
        self.started = False

    def postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", str(self.conf), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def master_pid(self):
        f = self.base / "queue" / "pid" / "master.pid"
        try:
            return int(f.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log(self):
        try:
            return (self.base / "postfix.log").read_text("utf-8", "replace")
        except OSError:
            return ""

    def start(self):
        # postfix prints its fatal errors on stderr only when that is a
        # terminal (otherwise they go to the log): give it one via script(1)
        if shutil.which("script"):
            cmd = f"{POSTFIX} -c {self.conf} start"
            p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
        else:
            p = self.postfix("start")
        if p.returncode != 0:
            return p
        self.started = True
        wait_until(self.accepting, 30, 0.1, "the private Postfix smtpd to accept")
        return p

    def accepting(self):
        try:
            with smtplib.SMTP(SMTPD_HOST, self.port, timeout=5) as s:
                return s.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def stop(self):
        pid = self.master_pid()
        if self.started:
            self.postfix("stop")
            if pid:
                try:
                    wait_until(lambda: not pid_alive(pid), 15, 0.1, "postfix master to exit")
                except AssertionError:
                    os.kill(pid, signal.SIGKILL)  # our own instance's master, by PID
        shutil.rmtree(self.base, ignore_errors=True)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def postfix_peer(petrel):
    if not os.path.exists(POSTFIX):
        pytest.skip("postfix is not installed (scripts/deps.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("a private postfix instance needs root")
    pf = PrivatePostfix(petrel.port)
    try:
        p = pf.start()
        assert p.returncode == 0, \
            f"postfix -c {pf.conf} start failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n{pf.log()}"
        yield pf
    finally:
        pf.stop()


@pytest.mark.deadline(120)
def test_postfix_relays_into_petrel(petrel, postfix_peer):
    pf = postfix_peer
    msgs = {
        "pf-plain": ("bob@example.org", "Subject: pf-plain\r\n\r\nvia postfix\r\n.dot line\r\n"),
        "pf-multi": ("sales@example.org", "Subject: pf-multi\r\n\r\nto an alias\r\n"),
    }
    with smtplib.SMTP(SMTPD_HOST, pf.port, local_hostname="submitter.test", timeout=20) as s:
        for subj, (rcpt, text) in msgs.items():
            refused = s.sendmail("origin@sender.test", [rcpt], text.encode())
            assert refused == {}
        # 8-bit body: postfix offers it onward with BODY=8BITMIME
        s.sendmail("origin@sender.test", ["carol@example.org"],
                   "Subject: pf-8bit\r\n\r\nGrüße\r\n".encode(), mail_options=["BODY=8BITMIME"])

    def arrived():
        return (petrel.mails("bob") and petrel.mails("alice") and petrel.mails("carol"))
    try:
        wait_until(arrived, 60, 0.2, "postfix to relay the messages into petrel")
    except AssertionError:
        raise AssertionError("not delivered through postfix; postfix log:\n" + pf.log()[-4000:]
                             + "\npetreld stderr:\n" + petrel.stderr()[-2000:])
    petrel.wait_mails("bob", 2)  # pf-plain, and pf-multi through the alias
    petrel.wait_queue_empty()
    by_subject = {}
    for m in petrel.all_mails():
        by_subject.setdefault(m.first("Subject"), []).append(m)
    assert sorted(by_subject) == ["pf-8bit", "pf-multi", "pf-plain"], by_subject
    [b] = by_subject["pf-plain"]
    assert b.path.parent.parent.name == "bob"
    assert b.first("Return-Path") == "<origin@sender.test>"
    assert b.first("Delivered-To") == "bob@example.org"
    assert b.body == b"via postfix\n.dot line\n"
    rec = b.get("Received")
    assert rec[0].startswith("from sender.test ([127.0.0.2]) by mx.example.org (petrel) with ESMTP"), rec
    assert any("sender.test" in r and "Postfix" in r for r in rec[1:]), rec  # postfix's own hop
    assert sorted(m.path.parent.parent.name for m in by_subject["pf-multi"]) == ["alice", "bob"]
    [c] = by_subject["pf-8bit"]
    assert c.path.parent.parent.name == "carol"
    assert c.body == "Grüße\n".encode()
    assert "status=sent" in pf.log()


@pytest.mark.deadline(120)
def test_postfix_gets_permanent_refusal(petrel, postfix_peer):
    pf = postfix_peer
    with smtplib.SMTP(SMTPD_HOST, pf.port, timeout=20) as s:
        s.sendmail("origin@sender.test", ["nobody@example.org"], b"Subject: pf-bounce\r\n\r\nx\r\n")
    # postfix learns 550 5.1.1 from petrel and bounces (status=bounced)
    wait_until(lambda: "status=bounced" in pf.log(), 60, 0.2, "postfix to log status=bounced")
    assert "5.1.1" in pf.log()
    assert not [m for m in petrel.all_mails() if m.first("Subject") == "pf-bounce"]
