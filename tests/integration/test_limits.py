"""limit message-size / recipients / received-headers / connections / errors."""
import socket

from conftest import SMTPConn, expect, message, queued_id, wait_until


def big_message(subject, size):
    line = b"x" * 76 + b"\r\n"
    body = line * (size // len(line) + 1)
    return message(subject, "") + body


def test_size_keyword_follows_limit(petrel_factory):
    p = petrel_factory(extra="limit message-size 10k\n")
    with SMTPConn(p.port) as c:
        r = c.ehlo()
        assert "SIZE 10240" in [ln.upper() for ln in r.lines[1:]], r


def test_declared_size_over_limit(petrel_factory):
    p = petrel_factory(extra="limit message-size 10k\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net> SIZE=10241", 552, "5.3.4")
        c.cmd("MAIL FROM:<s@example.net> SIZE=10240", 250, "2.1.0")


def test_actual_size_over_limit(petrel_factory):
    p = petrel_factory(extra="limit message-size 10k\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(big_message("too-big", 20000) + b".\r\n", 552, "5.3.4")
        # the session survives and a small message still goes through
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(message("small-after-big") + b".\r\n", 250, "2.0.0")
    [m] = p.wait_mails("alice")
    assert m.first("Subject") == "small-after-big"
    p.wait_queue_empty()
    assert len(p.mails("alice")) == 1


def test_lying_size_parameter(petrel_factory):
    # SIZE=100 declared, 20000 octets sent: the actual size decides
    p = petrel_factory(extra="limit message-size 10k\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net> SIZE=100", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250)
        c.data(big_message("liar", 20000) + b".\r\n", 552, "5.3.4")
        c.cmd("NOOP", 250)
    assert p.mails("bob") == []


def test_bdat_over_size_limit(petrel_factory):
    p = petrel_factory(extra="limit message-size 10k\n")
    data = big_message("bdat-big", 20000)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250)
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        expect(c.reply(), 552, "5.3.4")
        c.cmd("NOOP", 250)
    assert p.mails("bob") == []


def test_message_just_under_limit_accepted(petrel_factory):
    p = petrel_factory(extra="limit message-size 10k\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net> SIZE=9000", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250)
        c.data(big_message("fits", 8000) + b".\r\n", 250, "2.0.0")
    assert p.wait_mails("bob")[0].first("Subject") == "fits"


def test_recipient_limit(petrel_factory):
    p = petrel_factory(extra="limit recipients 3\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.cmd("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.cmd("RCPT TO:<carol@example.org>", 250, "2.1.5")
        c.cmd("RCPT TO:<postmaster@example.org>", 452, "4.5.3")
        c.cmd("RCPT TO:<abuse@example.org>", 452, "4.5.3")
        c.data(message("rcpt-limit") + b".\r\n", 250, "2.0.0")
    for u in ("alice", "bob", "carol"):
        assert p.wait_mails(u)[0].first("Subject") == "rcpt-limit"
    p.wait_queue_empty()
    assert len(p.mails("alice")) == 1  # not also via postmaster/abuse


def received_loop(n):
    hops = [f"Received: from hop{i}.example.net ([192.0.2.{i % 250}]) by relay{i}.example.net "
            f"with ESMTP id H{i}; Mon, 1 Jan 2024 00:00:00 +0000" for i in range(n)]
    return message(f"loop-{n}", "looping\r\n", headers=hops)


def send_loop(p, n, rcpt="alice@example.org"):
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd(f"RCPT TO:<{rcpt}>", 250)
        return c.data(received_loop(n) + b".\r\n", None)


def test_received_header_loop_default_limit(petrel):
    expect(send_loop(petrel, 101), 554, "5.4.6")
    r = send_loop(petrel, 100, "bob@example.org")
    expect(r, 250, "2.0.0", "(exactly 100 Received headers is within the limit)")
    [m] = petrel.wait_mails("bob")
    assert len(m.get("Received")) == 101  # ours on top of the 100
    petrel.wait_queue_empty()
    assert petrel.mails("alice") == [], "a looping message must not be delivered"


def test_received_header_loop_configured_limit(petrel_factory):
    p = petrel_factory(extra="limit received-headers 5\n")
    expect(send_loop(p, 6), 554, "5.4.6")
    expect(send_loop(p, 5, "bob@example.org"), 250, "2.0.0")
    p.wait_mails("bob")
    p.wait_queue_empty()
    assert p.mails("alice") == []


def test_received_in_body_not_counted(petrel_factory):
    p = petrel_factory(extra="limit received-headers 2\n")
    body = "".join(f"Received: from quoted{i}\r\n" for i in range(10))
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(message("body-received", body) + b".\r\n", 250, "2.0.0")
    assert p.wait_mails("alice")[0].first("Subject") == "body-received"


def test_connection_limit(petrel_factory):
    p = petrel_factory(extra="limit connections 2\n")
    a = SMTPConn(p.port)
    b = SMTPConn(p.port)
    try:
        expect(a.greeting, 220)
        expect(b.greeting, 220)
        with SMTPConn(p.port) as c:
            expect(c.greeting, 421, "4.7.0")
            assert c.wait_closed(), "connection over the limit must be closed"
        a.ehlo()  # the admitted sessions are unaffected
        b.cmd("QUIT", 221)
        assert b.wait_closed()
        b.close()

        # a slot is free again once a session ended
        def admitted():
            with SMTPConn(p.port) as d:
                if d.greeting.code == 220:
                    d.cmd("QUIT", 221)
                    return True
                return False
        wait_until(admitted, 10, 0.1, "a free connection slot after QUIT")
        a.cmd("MAIL FROM:<s@example.net>", 250)
    finally:
        a.close()
        b.close()


def test_error_limit_disconnects(petrel_factory):
    p = petrel_factory(extra="limit errors 3\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        seen = []
        for line in ("FOO", "MAIL FROM:<bad@@x>", "RCPT TO:<alice@example.org>", "BAR", "BAZ"):
            try:
                r = c.cmd(line)
            except Exception:
                break
            seen.append((r.code, r.status))
            if r.code == 421:
                break
        assert seen[:2] == [(500, "5.5.2"), (501, "5.1.7")], seen
        assert seen[-1] == (421, "4.7.0"), f"no 421 4.7.0 after too many errors: {seen}"
        assert len(seen) <= 4, seen
        assert c.wait_closed()


def test_errors_are_per_session(petrel_factory):
    p = petrel_factory(extra="limit errors 3\n")
    for _ in range(3):
        with SMTPConn(p.port) as c:
            c.ehlo()
            c.cmd("FOO", 500, "5.5.2")
            c.cmd("BAR", 500, "5.5.2")
            c.cmd("QUIT", 221)
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)


def test_data_line_length_limit(petrel_factory):
    p = petrel_factory(extra="limit line-length 1000\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<alice@example.org>", 250)
        c.data(message("long-line", "a" * 5000 + "\r\n") + b".\r\n", None)
        c.cmd("NOOP", 250)  # whatever the verdict, the session stays in sync
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@example.net>", 250)
        c.cmd("RCPT TO:<bob@example.org>", 250)
        c.data(message("ok-line", "b" * 900 + "\r\n") + b".\r\n", 250)
    assert p.wait_mails("bob")[0].body == b"b" * 900 + b"\n"


def test_slowloris_sockets_do_not_block_listener(petrel_factory):
    # many idle connections below the cap do not stop new sessions
    p = petrel_factory(extra="limit connections 20\n")
    idle = []
    try:
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            idle.append(s)
        with SMTPConn(p.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<s@example.net>", 250)
            c.cmd("RCPT TO:<alice@example.org>", 250)
            queued_id(c.data(message("beside-idle") + b".\r\n", 250))
    finally:
        for s in idle:
            s.close()
    assert p.wait_mails("alice")[0].first("Subject") == "beside-idle"


def test_command_timeout_closes_idle_session(petrel_factory):
    p = petrel_factory(extra="timeout command 1s\n")
    with SMTPConn(p.port) as c:
        c.ehlo()
        assert c.wait_closed(20), "an idle session must be closed after the command timeout"
        if c.buf:
            assert c.buf.startswith(b"421 4."), c.buf
    # the daemon itself is fine
    with SMTPConn(p.port) as c:
        c.ehlo()
        c.cmd("NOOP", 250)
