"""Durability, the short version of the crash campaign (tests/crash/
crash_campaign.py, `make crash-test` runs 100 cycles): petreld killed with
SIGKILL in each variant (mid-DATA, right after the final dot, with Maildir
deliveries pending, with outbound DATA replies held) while four clients
send; every message that got 250 must arrive. Then the spool on a full
tmpfs, and strace's proof that the syncs come before the 250."""
import os
import sys
from pathlib import Path

import pytest

from conftest import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crash"))
import crash_campaign as cc  # noqa: E402

SEED = int(os.environ.get("PETREL_CRASH_SEED", "20240601"))


@pytest.mark.deadline(150)
def test_sigkill_loses_no_acknowledged_message(tmp_path):
    r = cc.run_cycles(tmp_path, cycles=5, seed=SEED, senders=4)
    print("\n" + cc.report_cycles(r))
    failures = cc.cycle_failures(r)
    assert not failures, "\n".join(failures)
    ran = {v for v in cc.VARIANTS if r["stats"]["hit"][v] + r["stats"]["missed"][v]}
    assert ran == set(cc.VARIANTS)
    assert r["lost"] == [] and r["acked"] >= 5


@pytest.mark.deadline(120)
def test_full_spool_says_452_and_loses_nothing(tmp_path):
    r = cc.run_disk_full(tmp_path, seed=SEED)
    if "skipped" in r:
        pytest.skip(r["skipped"])
    print("\n" + cc.report_disk_full(r))
    failures = cc.disk_full_failures(r)
    assert not failures, "\n".join(failures)
    assert r["codes"].get("full:452") == 4, r["codes"]
    assert r["codes"].get("space-again:250") == 6, r["codes"]


@pytest.mark.deadline(90)
@pytest.mark.parametrize("method", ["filesystem", "files"])
def test_syncs_come_before_the_250(tmp_path, method):
    r = cc.run_fsync_check(tmp_path, method=method)
    if "skipped" in r:
        pytest.skip(r["skipped"])
    assert not r["errors"], "\n".join(r["errors"])
    assert len(r["ids"]) == 3 and len(r["direct"]) == 3


@pytest.mark.deadline(60)
def test_local_copy_is_journaled_before_the_remote_transaction(tmp_path):
    """Regression: the Maildir outcomes of a message that also had a remote
    recipient were journaled only when the outbound transaction ended, so a
    crash while a slow peer sat on DATA delivered the local copy again (at
    every restart, for as long as the peer was slow)."""
    sink = cc.Sink(hold=(60.0, 60.0))
    p = cc.make_petrel(tmp_path / "p", sink.port)
    try:
        p.start()
        r = cc.send_one(p, "mixed1", ["alice@example.org", "far@remote.test"], 10)
        assert r.code == 250, r
        wait_until(lambda: sink.holding, 20, what="the remote DATA reply held")
        assert len(p.mails("alice")) == 1
        p.kill9()
        sink.hold = (0.0, 0.0)
        p.start()
        wait_until(lambda: not cc.queue_ids(p), 20, what="the message to leave the queue")
        assert len(p.mails("alice")) == 1, "the local copy was delivered again after the crash"
        assert sum(1 for t, rc, _ in sink.copies() if t == "mixed1") >= 1
    finally:
        p.stop()
        sink.stop()
    assert not p.sanitizer_reports(), p.sanitizer_reports()[0]


GOOD = """\
10 12:00:00.000001 writev(11</s/spool/tmp/AAAA>, [...], 3) = 10
10 12:00:00.000002 fdatasync(11</s/spool/tmp/AAAA>) = 0
10 12:00:00.000003 renameat2(AT_FDCWD, "/s/spool/tmp/AAAA", AT_FDCWD, "/s/spool/queue/AAAA", RENAME_NOREPLACE) = 0
10 12:00:00.000004 fsync(8</s/spool/queue> <unfinished ...>
9 12:00:00.000005 writev(10<socket:[1]>, [{iov_base="354 go\\r\\n"}], 1) = 8
10 12:00:00.000006 <... fsync resumed>) = 0
9 12:00:00.000007 writev(10<socket:[1]>, [{iov_base="250 2.0.0 Ok: queued as AAAA\\r\\n"}], 1) = 30
"""


def test_the_order_check_rejects_an_early_250():
    """The strace checker itself: it accepts the right order and rejects a
    250 written while the directory fsync is still running, or without it,
    or a rename with no data sync before it."""
    assert cc.check_order(cc.parse_strace(GOOD), "AAAA") is None
    assert cc.check_order(cc.parse_strace(GOOD), "AAAA", "files") is None
    early = GOOD.replace("9 12:00:00.000005 writev(10<socket:[1]>, [{iov_base=\"354 go",
                         "9 12:00:00.000005 writev(10<socket:[1]>, [{iov_base=\"250 2.0.0 Ok: "
                         "queued as AAAA")
    assert "before the directory fsync" in cc.check_order(cc.parse_strace(early), "AAAA")
    no_dir_sync = "\n".join(ln for ln in GOOD.splitlines() if "fsync(8" not in ln and "fsync resumed" not in ln)
    assert "no fsync of queue/" in cc.check_order(cc.parse_strace(no_dir_sync), "AAAA")
    no_data_sync = GOOD.replace("fdatasync", "fstat")
    assert "no data sync" in cc.check_order(cc.parse_strace(no_data_sync), "AAAA")


# `sync filesystem`: another thread's syncfs, started after the write
# returned and done before the rename, is the data sync.
GOOD_SYNCFS = """\
10 12:00:00.000001 writev(11</s/spool/tmp/AAAA>, [...], 3) = 10
12 12:00:00.000002 syncfs(13</s/spool/tmp/BBBB> <unfinished ...>
12 12:00:00.000003 <... syncfs resumed>) = 0
10 12:00:00.000004 renameat2(AT_FDCWD, "/s/spool/tmp/AAAA", AT_FDCWD, "/s/spool/queue/AAAA", RENAME_NOREPLACE) = 0
10 12:00:00.000005 fsync(8</s/spool/queue>) = 0
9 12:00:00.000006 writev(10<socket:[1]>, [{iov_base="250 2.0.0 Ok: queued as AAAA\\r\\n"}], 1) = 30
"""


def test_the_order_check_with_syncfs():
    """A syncfs counts as the data sync only with `sync filesystem`, and
    only if it started after the write returned and ended before the
    rename."""
    assert cc.check_order(cc.parse_strace(GOOD_SYNCFS), "AAAA") is None
    assert "no data sync" in cc.check_order(cc.parse_strace(GOOD_SYNCFS), "AAAA", "files")
    lines = GOOD_SYNCFS.splitlines()
    started_before = "\n".join([lines[1], lines[0]] + lines[2:])  # began before the write
    assert "no data sync" in cc.check_order(cc.parse_strace(started_before), "AAAA")
    ended_after = "\n".join([lines[0], lines[1], lines[3], lines[2]] + lines[4:])  # after the rename
    assert "no data sync" in cc.check_order(cc.parse_strace(ended_after), "AAAA")


def test_local_delay_hook_is_announced_and_capped(petrel_factory, monkeypatch):
    """The crash campaign's pause (PETREL_TEST_LOCAL_DELAY_MS) slows every
    queued Maildir delivery: a petreld started with it says so, capped at a
    second; one started without it says nothing."""
    plain = petrel_factory()
    monkeypatch.setenv("PETREL_TEST_LOCAL_DELAY_MS", "5000")
    hooked = petrel_factory()
    wait_until(lambda: "PETREL_TEST_LOCAL_DELAY_MS is set" in hooked.stderr(), 5,
               what="the hook's warning")
    assert "waits 1000 ms" in hooked.stderr()
    assert "PETREL_TEST_LOCAL_DELAY_MS" not in plain.stderr()
