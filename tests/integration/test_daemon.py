"""The daemon as a process: signals, config errors, restart recovery."""
import re
import signal
import socket
import subprocess

import pytest

from conftest import (SMTPConn, Closed, expect, message, petreld_env, petreld_path,
                      queued_id, wait_until, free_port)


def new_session_refused(port):
    """True when a new connection is refused, reset, or answered 421."""
    try:
        with SMTPConn(port, timeout=5) as c:
            return c.greeting.code == 421
    except (ConnectionRefusedError, ConnectionResetError, Closed):
        return True
    except OSError:
        return True


def test_foreground_and_logs_events(petrel):
    assert petrel.running()
    qid = None
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        qid = queued_id(c.data(message("log-1") + b".\r\n", 250))
    petrel.wait_mails("alice")
    wait_until(lambda: qid in petrel.stderr(), 10, what="the queue id in petreld's log")
    for ln in petrel.stderr().splitlines():
        assert ln.strip(), "empty log line"


def test_sigterm_idle_exits_zero(petrel):
    petrel.signal(signal.SIGTERM)
    assert petrel.wait_exit(20) == 0, petrel.stderr()


def test_sigterm_with_idle_session_exits_zero(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        petrel.signal(signal.SIGTERM)
        rc = petrel.wait_exit(30)
        assert rc == 0, f"exit status {rc}\n{petrel.stderr()}"
        assert c.wait_closed(5), "idle session must be closed at shutdown"
        if c.buf:
            assert c.buf.startswith(b"421"), c.buf


def test_sigterm_finishes_in_flight_transaction(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.cmd("DATA", 354)
        msg = message("inflight-1", "part one\r\n")
        c.send(msg)
        petrel.signal(signal.SIGTERM)
        # it stops accepting while our transaction is still open
        wait_until(lambda: new_session_refused(petrel.port), 10, 0.1,
                   "new connections refused after SIGTERM")
        assert petrel.running(), "petreld exited with a transaction in flight"
        c.send(b"part two\r\n.\r\n")
        r = c.reply()
        print(f"\nOBSERVED: reply to the final dot after SIGTERM: {r!r}")
        assert r.code in (250, 421), r
        if r.code == 250:
            expect(r, 250, "2.0.0")
        else:
            assert r.status and r.status.startswith("4."), r
    rc = petrel.wait_exit(30)
    assert rc == 0, f"exit status {rc}\n{petrel.stderr()}"
    if r.code == 250:
        # accepted means durable: delivered now, or after the next start
        if not petrel.mails("alice"):
            petrel.start()
        [m] = petrel.wait_mails("alice")
        assert m.body == b"part one\npart two\n"
    else:
        petrel.start()
        petrel.wait_queue_empty()
        assert petrel.mails("alice") == []


def test_sighup_adds_user_without_dropping_session(petrel):
    with SMTPConn(petrel.port) as a:
        a.ehlo()
        a.cmd("MAIL FROM:<s@example.net>", 250)
        a.cmd("RCPT TO:<alice@example.org>", 250)
        with SMTPConn(petrel.port) as b:
            b.ehlo()
            b.cmd("MAIL FROM:<s@example.net>", 250)
            b.cmd("RCPT TO:<dave@example.org>", 550, "5.1.1")
        petrel.reload(users=petrel.users + ["dave"])

        def dave_known():
            with SMTPConn(petrel.port) as b:
                b.ehlo()
                b.cmd("MAIL FROM:<s@example.net>", 250)
                return b.cmd("RCPT TO:<dave@example.org>").code == 250
        wait_until(dave_known, 10, 0.1, "dave to be accepted after SIGHUP")
        assert petrel.running()
        # the session opened before the reload completes its transaction
        a.cmd("RCPT TO:<bob@example.org>", 250, "2.1.5")
        a.data(message("across-reload") + b".\r\n", 250, "2.0.0")
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<dave@example.org>", 250, "2.1.5")
        c.data(message("to-dave", to="dave@example.org") + b".\r\n", 250)
    assert petrel.wait_mails("alice")[0].first("Subject") == "across-reload"
    assert petrel.wait_mails("bob")[0].first("Subject") == "across-reload"
    assert petrel.wait_mails("dave")[0].first("Subject") == "to-dave"


def test_sighup_with_broken_config_keeps_running(petrel):
    petrel.conf.write_text(petrel.config_text() + "no-such-directive yes\n")
    petrel.signal(signal.SIGHUP)
    # a good reload afterwards proves the bad one was processed and refused
    petrel.reload(users=petrel.users + ["erin"])

    def erin_known():
        with SMTPConn(petrel.port) as b:
            b.ehlo()
            b.cmd("MAIL FROM:<s@example.net>", 250)
            return b.cmd("RCPT TO:<erin@example.org>").code == 250
    wait_until(erin_known, 10, 0.1, "erin to be accepted after the second SIGHUP")
    assert petrel.running()
    assert "petrel.conf:" in petrel.stderr(), "the refused reload must be logged with file:line"


# --- config errors -------------------------------------------------------------

GOOD = [
    "hostname mx.example.org",                                              # 1
    'spool "spool"',                                                        # 2
    "listen on 127.0.0.1 port {port}",                                      # 3
    'table users file:"users"',                                             # 4
    'table aliases file:"aliases"',                                         # 5
    'table trusted file:"trusted"',                                         # 6
    'action "local" maildir "mail/%{{user}}" users <users> aliases <aliases>',  # 7
    'action "remote" relay',                                                # 8
    'match for domain "example.org" action "local"',                        # 9
    'match from src <trusted> for any action "remote"',                     # 10
    "limit message-size 25M",                                               # 11
]


def write_conf(tmp_path, lines, trusted="127.0.0.0/8\n"):
    (tmp_path / "users").write_text("alice\nbob\n")
    (tmp_path / "aliases").write_text("postmaster: alice\n")
    (tmp_path / "trusted").write_text(trusted)
    conf = tmp_path / "petrel.conf"
    conf.write_text("\n".join(lines).format(port=free_port()) + "\n")
    return conf


def run_petreld(*args):
    binary = petreld_path()
    if not binary.exists():
        pytest.fail(f"{binary} does not exist")
    return subprocess.run([str(binary), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=20, env=petreld_env())


BAD = {
    "unknown-directive": (3, lambda L: L[:2] + ["frobnicate yes"] + L[2:]),
    "bad-size": (11, lambda L: L[:10] + ["limit message-size 25Q"]),
    "bad-port": (3, lambda L: L[:2] + ["listen on 127.0.0.1 port 70000"] + L[3:]),
    "undefined-table": (7, lambda L: L[:6] + ['action "local" maildir "m/%{{user}}" users <nope>']
                        + L[7:]),
    "undefined-action": (9, lambda L: L[:8] + ['match for domain "example.org" action "nope"']
                         + L[9:]),
    "unterminated-string": (2, lambda L: L[:1] + ['spool "spool'] + L[2:]),
    "bad-duration": (12, lambda L: L + ["timeout command 5x"]),
    "bad-onoff": (12, lambda L: L + ["vrfy maybe"]),
    "missing-table-file": (12, lambda L: L + ['table extra file:"does-not-exist"']),
}


def check_one_error_line(text, fname, line):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines!r}"
    assert re.search(rf"(^|\s|/){re.escape(fname)}:{line}: \S", lines[0]), \
        f"expected '{fname}:{line}: problem', got {lines[0]!r}"


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_exit_2_with_file_and_line(tmp_path, case):
    line, mutate = BAD[case]
    conf = write_conf(tmp_path, mutate(list(GOOD)))
    for args in (["-c", str(conf)], ["-n", "-c", str(conf)]):
        p = run_petreld(*args)
        assert p.returncode == 2, f"{args}: exit {p.returncode}, stderr {p.stderr!r}"
        check_one_error_line(p.stderr, "petrel.conf", line)


def test_bad_network_table_names_table_file_and_line(tmp_path):
    conf = write_conf(tmp_path, list(GOOD), trusted="# trusted\n10.0.0.0/33\n")
    p = run_petreld("-c", str(conf))
    assert p.returncode == 2, (p.returncode, p.stderr)
    check_one_error_line(p.stderr, "trusted", 2)


def test_check_mode_good_config(tmp_path):
    conf = write_conf(tmp_path, list(GOOD))
    p = run_petreld("-n", "-c", str(conf))
    assert p.returncode == 0, p.stderr
    assert "ERROR" not in p.stderr


def test_missing_config_file(tmp_path):
    p = run_petreld("-c", str(tmp_path / "absent.conf"))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "absent.conf" in p.stderr


def test_relative_paths_are_relative_to_config_dir(tmp_path):
    conf = write_conf(tmp_path, list(GOOD))
    port = int(re.search(r"port (\d+)", conf.read_text()).group(1))
    proc = subprocess.Popen([str(petreld_path()), "-c", str(conf)], cwd="/",
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "err", "wb"), env=petreld_env())
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return True
            except OSError:
                assert proc.poll() is None, (tmp_path / "err").read_text()
                return False
        wait_until(up, 20, 0.05, "petreld to listen")
        with SMTPConn(port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<s@example.net>", 250)
            c.cmd("RCPT TO:<bob@example.org>", 250)
            c.data(message("relpath") + b".\r\n", 250)
        wait_until(lambda: list((tmp_path / "mail" / "bob" / "new").glob("*")), 15,
                   what="delivery under the config file's directory")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert not [ln for ln in (tmp_path / "err").read_text().splitlines()
                if "ERROR: AddressSanitizer" in ln or "runtime error:" in ln
                or "ERROR: LeakSanitizer" in ln]


# --- restart recovers the spool ------------------------------------------------

@pytest.mark.deadline(120)
def test_kill9_right_after_250_then_restart_delivers(petrel):
    accepted = []
    for i in range(5):
        with SMTPConn(petrel.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<s@example.net>", 250)
            c.cmd("RCPT TO:<alice@example.org>", 250)
            c.cmd("RCPT TO:<bob@example.org>", 250)
            c.cmd("DATA", 354)
            c.send(message(f"k9-{i}") + b".\r\n")
            r = c.reply()
            petrel.kill9()  # the instant the 250 arrived
            expect(r, 250, "2.0.0")
            accepted.append(f"k9-{i}")
        petrel.start()
    for u in ("alice", "bob"):
        # duplicates are allowed, so wait for the distinct subjects, not a count
        wait_until(lambda: set(accepted) <= {m.first("Subject") for m in petrel.mails(u)}, 15,
                   what=f"every accepted message in {u}'s Maildir")
        mails = petrel.mails(u)
        subjects = [m.first("Subject") for m in mails]
        assert sorted(set(subjects)) == sorted(accepted), (u, subjects)
        print(f"\n{u}: {len(subjects) - len(set(subjects))} duplicate(s) after kill -9")
    petrel.wait_queue_empty()


def test_queued_message_delivered_after_restart(petrel):
    # delivery to alice cannot happen while her Maildir path is a plain file
    petrel.mail.mkdir(parents=True, exist_ok=True)
    blocker = petrel.maildir("alice")
    blocker.write_text("not a directory\n")
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(message("stuck-7c1e") + b".\r\n", 250, "2.0.0")
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250)
        c.data(message("free-7c1e", to="bob@example.org") + b".\r\n", 250, "2.0.0")
    petrel.wait_mails("bob")
    # bob's message must be out of the queue before the kill, or a duplicate is legitimate
    wait_until(lambda: not petrel.queue_contains("free-7c1e"), 15, what="bob's message removed")
    assert petrel.queue_contains("stuck-7c1e"), "an undelivered message must stay in the queue"
    petrel.kill9()
    blocker.unlink()
    petrel.start()
    [m] = petrel.wait_mails("alice")
    assert m.first("Subject") == "stuck-7c1e"
    petrel.wait_queue_empty()
    assert len(petrel.mails("bob")) == 1, "bob's message must not be delivered twice"
