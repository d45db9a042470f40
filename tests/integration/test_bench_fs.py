"""bench/run's file system (docs/performance.md, "The set-up"): as root a
fresh loop-mounted ext4 image with the machine's journal setting, its
servers' parent marked as a top directory; --fs tmp the temp dir itself;
both gone after remove()."""
import importlib.machinery
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run"


def bench():
    loader = importlib.machinery.SourceFileLoader("bench_run", str(RUN))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def is_top_dir(path):
    r = subprocess.run(["lsattr", "-d", str(path)], capture_output=True, text=True)
    return r.returncode == 0 and "T" in r.stdout.split()[0]


def test_tmp_is_the_temp_dir_itself():
    b = bench()
    fs = b.BenchFS("tmp", 1)
    try:
        assert fs.mnt is None and fs.why_not is None
        assert fs.base.parent == fs.work and fs.base.is_dir()
        assert os.stat(fs.base).st_dev == os.stat(fs.work).st_dev
        assert fs.description == b.fs_description(fs.work)
    finally:
        fs.remove(keep=False)
    assert not fs.work.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the loop image needs root")
def test_loop_is_a_fresh_file_system_of_the_same_kind():
    b = bench()
    fs = b.BenchFS("loop", 1)
    try:
        if fs.mnt is None:  # a machine that refuses the mount: the fall-back
            assert fs.why_not and fs.why_not in fs.description
            assert fs.base.parent == fs.work
            return
        assert os.stat(fs.base).st_dev != os.stat(fs.work).st_dev
        assert "loop image of 1 GiB" in fs.description
        # the journal setting follows the machine's file system
        own = b.fs_description(fs.work)
        if own.startswith("ext4"):
            assert ("no journal" in fs.description) == own.endswith("no journal")
        assert is_top_dir(fs.base)  # each server's directory in a block group of its own
        mnt = fs.mnt
    finally:
        fs.remove(keep=False)
    assert not fs.work.exists()
    with open("/proc/self/mounts") as f:
        assert str(mnt) not in f.read()
