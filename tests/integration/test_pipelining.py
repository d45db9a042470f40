"""RFC 2920 PIPELINING: commands sent in one write get their replies in order."""
import random
import socket
import string
import struct

import pytest
from conftest import SMTPConn, expect, message, queued_id, wait_until


def test_mail_rcpt_rcpt_data_in_one_write(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\n"
               "RCPT TO:<bob@example.org>\r\nDATA\r\n")
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 354)
        c.send(message("pipe-1") + b".\r\nQUIT\r\n")
        r = c.reply()
        expect(r, 250, "2.0.0")
        queued_id(r)
        expect(c.reply(), 221, "2.0.0")
        assert c.wait_closed()
    assert petrel.wait_mails("alice")[0].first("Subject") == "pipe-1"
    assert petrel.wait_mails("bob")[0].first("Subject") == "pipe-1"


def test_pipelined_refusals_keep_order(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<s@example.net>\r\n"
               "RCPT TO:<nobody@example.org>\r\n"
               "RCPT TO:<carol@example.org>\r\n"
               "RCPT TO:<x@foreign.example>\r\n"
               "RCPT TO:<alice@example.org> FOO=1\r\n"
               "NOOP\r\n"
               "DATA\r\n")
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 550, "5.1.1")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 550, "5.7.1")
        expect(c.reply(), 555, "5.5.4")
        expect(c.reply(), 250, "2.0.0")
        expect(c.reply(), 354)
        c.send(message("pipe-2", to="carol@example.org") + b".\r\n")
        expect(c.reply(), 250, "2.0.0")
    assert petrel.wait_mails("carol")[0].first("Subject") == "pipe-2"
    petrel.wait_queue_empty()
    assert petrel.mails("alice") == []


def test_two_transactions_pipelined_with_rset(petrel):
    with SMTPConn(petrel.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        expect(c.reply(), 250)
        expect(c.reply(), 250)
        expect(c.reply(), 354)
        c.send(message("pipe-3a") + b".\r\nRSET\r\nMAIL FROM:<b@example.net>\r\n"
               b"RCPT TO:<bob@example.org>\r\nDATA\r\n")
        qa = queued_id(c.reply())
        expect(c.reply(), 250, "2.0.0")
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 354)
        c.send(message("pipe-3b", to="bob@example.org") + b".\r\n")
        qb = queued_id(c.reply())
        assert qa != qb
    assert petrel.wait_mails("alice")[0].first("Subject") == "pipe-3a"
    assert petrel.wait_mails("bob")[0].first("Subject") == "pipe-3b"


def test_whole_session_in_one_write_with_bdat(petrel):
    body = b"Subject: pipe-4\r\n\r\nchunked and pipelined\r\n"
    with SMTPConn(petrel.port) as c:
        c.send(b"EHLO client.example.net\r\nMAIL FROM:<s@example.net>\r\n"
               b"RCPT TO:<alice@example.org>\r\nBDAT %d LAST\r\n" % len(body) + body
               + b"QUIT\r\n")
        expect(c.reply(), 250)
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        queued_id(c.reply())
        expect(c.reply(), 221, "2.0.0")
    assert petrel.wait_mails("alice")[0].body == b"chunked and pipelined\n"


def big_body(seed, size):
    """Lines of every length up to 990 octets, some starting with dots, about
    size octets in all: (the body as sent, dot-stuffed, CRLF) and (what the
    Maildir must hold: unstuffed, LF)."""
    rnd = random.Random(seed)
    lines, n = [], 0
    while n < size:
        ln = rnd.choice([0, 1, 2, 70, 76, 78, 500, 989, rnd.randrange(990)])
        text = "".join(rnd.choice(string.ascii_letters + " .,;-") for _ in range(ln))
        if rnd.random() < 0.1:
            text = "." + text[1:] if text else "."
        lines.append(text.encode())
        n += len(text) + 2
    sent = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
    return sent, b"".join(ln + b"\n" for ln in lines)


def test_large_bodies_and_the_commands_after_them_in_one_write(petrel):
    """Bodies far larger than one read of the session, with the next
    transaction (a BDAT chunk of 1 MiB and more) and QUIT in the same write:
    every octet lands, in order, and the commands after a body are read as
    commands."""
    head1 = message("big-data", "")
    head2 = message("big-bdat", "")
    sent1, want1 = big_body(1, 3 << 20)
    _, want2 = big_body(2, (1 << 20) + 12345)
    chunk = head2 + want2.replace(b"\n", b"\r\n")  # BDAT: sent as it is, no dot-stuffing
    with SMTPConn(petrel.port, timeout=60) as c:
        c.ehlo()
        c.send("MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 354)
        c.send(head1 + sent1 + b".\r\nMAIL FROM:<s@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
               + f"BDAT {len(chunk)} LAST\r\n".encode() + chunk + b"QUIT\r\n")
        expect(c.reply(), 250, "2.0.0")
        expect(c.reply(), 250, "2.1.0")
        expect(c.reply(), 250, "2.1.5")
        expect(c.reply(), 250, "2.0.0")
        expect(c.reply(), 221, "2.0.0")
        assert c.wait_closed()
    [a] = petrel.wait_mails("alice")
    [b] = petrel.wait_mails("bob")
    assert a.first("Subject") == "big-data" and b.first("Subject") == "big-bdat"
    assert a.body == want1
    assert b.body == want2


@pytest.mark.parametrize("cut", ["full-read-then-eof", "large-then-eof", "large-then-reset"])
def test_body_cut_off_by_the_client_stores_nothing(petrel, cut):
    """A body without its final dot, then the client's end of input: the
    session ends, nothing is stored, no reply claims the message, and the
    next client is served. full-read-then-eof: exactly one bufferevent read
    (4096 octets) and the FIN in the same segment (TCP_CORK), so that the
    session's extra read after it meets the end of input itself and must
    leave it to the bufferevent's next read; large: 2 MiB, the extra reads
    running, then a close or a reset."""
    c = SMTPConn(petrel.port, timeout=30)
    c.ehlo()
    c.send("MAIL FROM:<s@example.net>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n")
    expect(c.reply(), 250, "2.1.0")
    expect(c.reply(), 250, "2.1.5")
    expect(c.reply(), 354)
    if cut == "full-read-then-eof":
        head = message("cut-off", "")
        body = head + b"x" * (4096 - len(head) - 2) + b"\r\n"
        assert len(body) == 4096
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    else:
        body = message("cut-off", "") + big_body(3, 2 << 20)[0]
    c.send(body)
    if cut == "large-then-reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        c.sock.shutdown(socket.SHUT_WR)  # with TCP_CORK: the body and the FIN together
        assert c.wait_closed(), "the session did not end at the client's end of input"
        assert b"250" not in c.buf
    c.sock.close()
    with SMTPConn(petrel.port) as d:
        d.ehlo()
        d.cmd("MAIL FROM:<s@example.net>", 250)
        d.cmd("RCPT TO:<carol@example.org>", 250)
        d.data(message("after", "x\r\n") + b".\r\n")
        d.cmd("QUIT", 221)
    [m] = petrel.wait_mails("carol")
    assert m.first("Subject") == "after"
    assert not petrel.tmp_leftovers()
    wait_until(lambda: not petrel.queue_files(), 10, what="an empty queue")
