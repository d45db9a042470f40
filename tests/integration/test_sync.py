"""The sync directive (src/base/sync_group.c): with either method, a batch
of messages sent by concurrent sessions all reach their Maildirs; under
strace, `sync files` issues no syncfs, and `sync filesystem` shares its
data syncs: fewer syncfs calls than messages."""
import re
import signal
import sys
import threading
from pathlib import Path

import pytest

from conftest import SMTPConn, expect, message, queued_id, send_raw

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crash"))
import crash_campaign as cc  # noqa: E402

SESSIONS = 12
PER_SESSION = 2
USERS = ["alice", "bob", "carol"]
SYNC_RE = re.compile(r"^\d+\s+\S+\s+(fsync|fdatasync|syncfs)\(")


def send_batch(port, tag, users=USERS, remote=True):
    """SESSIONS sessions, PER_SESSION messages each; every session ends
    its DATA at the same moment, so the commits overlap. With remote, odd
    sessions add a remote recipient (deferred: no resolver), so their
    messages take the spool. Returns the queue ids, or raises the first
    failure."""
    barrier = threading.Barrier(SESSIONS)
    ids, errors = [], []

    def session(i):
        try:
            with SMTPConn(port, timeout=30) as c:
                expect(c.greeting, 220)
                c.ehlo()
                for n in range(PER_SESSION):
                    rcpts = [f"{users[i % len(users)]}@example.org"]
                    if remote and i % 2:
                        rcpts.append(f"far{i}@remote.test")
                    c.cmd("MAIL FROM:<s@example.net>", 250)
                    for r in rcpts:
                        c.cmd(f"RCPT TO:<{r}>", 250)
                    c.cmd("DATA", 354)
                    c.send(message(f"{tag}-{i}-{n}", body=("x" * 100 + "\r\n") * 20))
                    barrier.wait(timeout=20)
                    c.send(".\r\n")
                    r = c.reply()
                    expect(r, 250, None, "after end of data")
                    ids.append(queued_id(r))
                c.cmd("QUIT", 221)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return ids


def delivered(p, tag):
    return sum(1 for u in USERS for m in p.mails(u) if f"Subject: {tag}-".encode() in m.raw)


@pytest.mark.deadline(90)
@pytest.mark.parametrize("method", ["files", "filesystem"])
def test_concurrent_batch_is_delivered(petrel_factory, method):
    p = petrel_factory(extra=f"sync {method}\n", trusted=["127.0.0.1"])
    ids = send_batch(p.port, method)
    assert len(ids) == SESSIONS * PER_SESSION
    # direct messages are in place at their 250; queued ones soon after
    cc.wait_for(lambda: delivered(p, method) == len(ids), 20)
    assert delivered(p, method) == len(ids)


def sync_calls(out):
    return [m.group(1) for ln in out.read_text(errors="replace").splitlines()
            if (m := SYNC_RE.match(ln))]


def data_syncs(calls):
    return calls.count("syncfs") + calls.count("fdatasync")


@pytest.mark.deadline(180)
@pytest.mark.parametrize("method", ["files", "filesystem"])
def test_sync_calls_under_strace(petrel_factory, tmp_path, method):
    p = petrel_factory(extra=f"sync {method}\n", trusted=["127.0.0.1"])
    send_raw(p.port, "s@example.net", ["alice@example.org"], message("warm-up"))  # makes the Maildir
    out = tmp_path / "strace.out"
    tracer, why = cc.attach_strace(p.proc.pid, out, "fsync,fdatasync,syncfs")
    if tracer is None:
        pytest.skip(why)
    ids, tags = [], []
    try:
        # local mail only, one mailbox: the direct path, as in bench/run.
        # Whether commits that end together overlap in time is up to the
        # scheduler (strace and ASan spread them out on a busy machine): a
        # few batches give the shared syncs their chance; without sharing
        # they never show.
        for k in range(4):
            tags.append(f"{method}{k}")
            ids += send_batch(p.port, tags[-1], users=["alice"], remote=False)
            if method == "files" or data_syncs(sync_calls(out)) < len(ids):
                break
    finally:
        tracer.send_signal(signal.SIGINT)  # detaches; petreld runs on
        tracer.wait(timeout=20)
    assert sum(delivered(p, t) for t in tags) == len(ids) == len(tags) * SESSIONS * PER_SESSION
    calls = sync_calls(out)
    print(f"\nsync {method}: {len(ids)} messages, {len(calls)} sync calls: "
          + ", ".join(f"{c} {calls.count(c)}" for c in ("fsync", "fdatasync", "syncfs")))
    if method == "files":
        assert "syncfs" not in calls
        assert calls.count("fdatasync") + calls.count("fsync") >= len(ids)
    else:
        # a caller alone fdatasyncs its own file; callers together share a
        # syncfs, so the data syncs are fewer than the messages (the new/
        # fsyncs are shared as before)
        assert "syncfs" in calls
        assert data_syncs(calls) < len(ids), f"{data_syncs(calls)} data syncs for {len(ids)} messages"
