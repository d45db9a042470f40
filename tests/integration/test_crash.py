"""Durability: petreld killed with SIGKILL at random moments while four
clients send; every message that got 250 must be in a Maildir afterwards."""
import random
import smtplib
import threading
import time

import pytest

from conftest import message, wait_until

SENDERS = 4
CYCLES = 5
USERS = ["alice", "bob", "carol"]


@pytest.mark.deadline(150)
def test_sigkill_loses_no_accepted_message(petrel):
    rng = random.Random(20240601)
    stop = threading.Event()
    lock = threading.Lock()
    acked = {}  # token -> user, only after the 250 to the final dot
    attempts = [0]
    errors = []

    def sender(n):
        i = 0
        while not stop.is_set():
            i += 1
            token = f"tok-{n}-{i}-{time.time_ns()}"
            user = USERS[(n + i) % len(USERS)]
            with lock:
                attempts[0] += 1
            try:
                s = smtplib.SMTP("127.0.0.1", petrel.port, timeout=5)
            except OSError:
                time.sleep(0.05)  # petreld is down: retry
                continue
            try:
                s.ehlo()
                code, _ = s.mail("crash@example.net")
                if code != 250:
                    continue
                code, _ = s.rcpt(f"{user}@example.org")
                if code != 250:
                    continue
                code, _ = s.data(message(token, "durable?\r\n" * (1 + i % 40), to=f"{user}@example.org"))
                if code == 250:
                    with lock:
                        acked[token] = user
                elif code < 400:
                    errors.append(f"unexpected reply {code} to end of data")
            except (OSError, smtplib.SMTPException):
                pass  # killed mid-transaction: not acknowledged, may or may not exist
            finally:
                try:
                    s.close()
                except OSError:
                    pass

    threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(SENDERS)]
    for t in threads:
        t.start()
    try:
        for cycle in range(CYCLES):
            time.sleep(rng.uniform(0.3, 1.5))
            petrel.kill9()
            time.sleep(rng.uniform(0.0, 0.2))
            petrel.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not any(t.is_alive() for t in threads), "a sender thread hung"
    assert not errors, errors
    assert len(acked) >= CYCLES, f"too few messages accepted to mean anything: {len(acked)}"

    # restart once more and let the queue drain
    petrel.kill9()
    petrel.start()

    def found():
        seen = {}
        for u in USERS:
            for m in petrel.mails(u):
                seen.setdefault(m.first("Subject"), []).append(u)
        return seen

    deadline = time.monotonic() + 60
    while True:
        seen = found()
        missing = [t for t in acked if t not in seen]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # every message is final, so no queue file may still hold one (files
    # without message content, e.g. a journal orphaned by the kill, are
    # listed but are not messages)
    def queued_tokens():
        blobs = []
        for f in petrel.queue_files():
            try:
                blobs.append(f.read_bytes())
            except OSError:
                pass  # removed meanwhile
        data = b"\0".join(blobs)
        return [t for t in acked if t.encode() in data]
    try:
        wait_until(lambda: not queued_tokens(), 30, 0.2, "delivered messages to leave the queue")
    except AssertionError:
        pass  # reported by the assertion below
    leftovers = sorted(p.name for p in petrel.queue_files())
    seen = found()
    missing = [t for t in acked if t not in seen]
    wrong_box = [t for t, u in acked.items() if t in seen and set(seen[t]) != {u}]
    dups = sum(len(v) - 1 for v in seen.values())
    unacked_present = len([t for t in seen if t not in acked])
    print(f"\ncrash test: {attempts[0]} attempts, {len(acked)} acknowledged, "
          f"{len(missing)} lost, {dups} duplicate(s), "
          f"{unacked_present} delivered without a 250 seen by the client")
    if leftovers:
        print(f"crash test: files left in <spool>/queue/ after recovery: {leftovers}")
    assert len(missing) == 0, f"lost {len(missing)} acknowledged message(s): {missing[:10]}"
    assert not queued_tokens(), f"delivered messages still queued: {queued_tokens()[:10]}"
    assert not wrong_box, wrong_box[:10]
