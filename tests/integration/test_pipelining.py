"""RFC 2920 PIPELINING: commands sent in one write get their replies in order."""
from conftest import SMTPConn, expect, message, queued_id


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
