"""A client dribbling one byte every 0.2 s keeps its session while other
clients complete whole transactions: no session blocks the daemon."""
import smtplib
import threading
import time

from conftest import SMTPConn, expect, message, queued_id

BYTE_INTERVAL = 0.2


def test_slow_client_does_not_block_others(petrel):
    fast_done = threading.Event()
    slow_started = threading.Event()
    events = []  # ordering log, appended from both threads
    lock = threading.Lock()
    errors = []

    def log(what):
        with lock:
            events.append(what)

    def fast():
        try:
            slow_started.wait(10)
            for i in range(2):
                with smtplib.SMTP("127.0.0.1", petrel.port, timeout=10) as s:
                    refused = s.sendmail("fast@example.net", ["bob@example.org"],
                                         message(f"fast-{i}", to="bob@example.org"))
                    assert refused == {}
                log(f"fast-{i} queued")
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            fast_done.set()

    t = threading.Thread(target=fast, daemon=True)
    with SMTPConn(petrel.port, timeout=30) as slow:
        slow.ehlo("slow.example.net")
        t.start()
        line = b"MAIL FROM:<slow@example.net>\r\n"
        sent = 0
        for i, byte in enumerate(line):
            slow.send(bytes([byte]))
            sent += 1
            if i == 3:
                slow_started.set()
            time.sleep(BYTE_INTERVAL)
            if i == len(line) - 3:
                # normally the fast client finished long ago; if not, hold
                # back the CRLF (bounded) so the order below is decided
                finished_in_time = fast_done.wait(30)
                log(f"slow mid-command, {sent} of {len(line)} bytes sent")
        log("slow command complete")
        expect(slow.reply(), 250, "2.1.0")
        for b in b"RCPT TO:<alice@example.org>\r\n":
            slow.send(bytes([b]))
            time.sleep(BYTE_INTERVAL / 4)
        expect(slow.reply(), 250, "2.1.5")
        slow.cmd("DATA", 354)
        slow.send(message("slow-1") + b".\r\n")
        r = slow.reply()
        expect(r, 250, "2.0.0")
        queued_id(r)
    t.join(30)
    assert not errors, f"fast client failed: {errors!r}"
    assert finished_in_time, "fast client could not finish while the slow one held a command"
    assert events.index("fast-1 queued") < events.index(
        f"slow mid-command, {len(line) - 2} of {len(line)} bytes sent"), events
    assert sorted(m.first("Subject") for m in petrel.wait_mails("bob", 2)) == ["fast-0", "fast-1"]
    assert petrel.wait_mails("alice")[0].first("Subject") == "slow-1"
