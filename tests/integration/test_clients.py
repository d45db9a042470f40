"""Real SMTP clients: swaks and curl deliver into petrel's Maildirs."""
import shutil
import subprocess

import pytest

CLIENT_TIMEOUT = 30

DOTTY = ("From: <s@example.net>\r\n"
         "To: <alice@example.org>\r\n"
         "Subject: {subject}\r\n"
         "\r\n"
         "first\r\n"
         ".leading dot\r\n"
         "..two dots\r\n"
         ".\r\n"
         "a line after a lone dot\r\n"
         "last\r\n")
DOTTY_BODY = b"first\n.leading dot\n..two dots\n.\na line after a lone dot\nlast\n"


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (scripts/deps.sh installs it)")


def run(argv):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, f"{argv[0]} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr


def swaks(petrel, *args):
    need("swaks")
    return run(["swaks", "--server", f"127.0.0.1:{petrel.port}", "--helo", "swaks.example.net",
                "--timeout", "20", *args])


def test_swaks_plain(petrel):
    out = swaks(petrel, "--to", "alice@example.org", "--from", "s@example.net",
                "--header", "Subject: swaks-plain", "--body", "hello from swaks")
    assert "queued as" in out
    [m] = petrel.wait_mails("alice")
    assert m.first("Subject") == "swaks-plain"
    assert m.first("Return-Path") == "<s@example.net>"
    assert b"hello from swaks\n" in m.body
    assert b"\r" not in m.raw


def test_swaks_pipeline_multi_rcpt(petrel):
    out = swaks(petrel, "--pipeline", "--to", "alice@example.org,bob@example.org,sales@example.org",
                "--from", "s@example.net", "--header", "Subject: swaks-pipe")
    assert "PIPELINING" in out
    for u in ("alice", "bob"):
        petrel.wait_mails(u)
    petrel.wait_queue_empty()
    for u in ("alice", "bob"):
        mails = petrel.mails(u)
        assert len(mails) == 1, f"{u} got {len(mails)} copies (alias and member deduplicated)"
        assert mails[0].first("Subject") == "swaks-pipe"


def test_swaks_data_file_with_dots(petrel, tmp_path):
    f = tmp_path / "dotty.eml"
    # swaks appends CRLF "." itself: the file must not end with a line break
    f.write_bytes(DOTTY.format(subject="swaks-dots").rstrip("\r\n").encode())
    swaks(petrel, "--to", "alice@example.org", "--from", "s@example.net", "--data", str(f))
    [m] = petrel.wait_mails("alice")
    assert m.first("Subject") == "swaks-dots"
    assert m.body == DOTTY_BODY


def test_swaks_refused_recipient_fails(petrel):
    need("swaks")
    p = subprocess.run(["swaks", "--server", f"127.0.0.1:{petrel.port}", "--timeout", "20",
                        "--to", "nobody@example.org", "--from", "s@example.net"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode != 0
    assert "550 5.1.1" in p.stdout + p.stderr


def curl(petrel, f, *rcpts, sender="s@example.net"):
    need("curl")
    argv = ["curl", "-sS", "--max-time", "20", f"smtp://127.0.0.1:{petrel.port}/curl.example.net",
            "--mail-from", sender, "--upload-file", str(f)]
    for r in rcpts:
        argv += ["--mail-rcpt", r]
    return run(argv)


def test_curl_upload(petrel, tmp_path):
    f = tmp_path / "curl.eml"
    f.write_bytes(DOTTY.format(subject="curl-dots").encode())
    curl(petrel, f, "alice@example.org", "bob@example.org")
    for u in ("alice", "bob"):
        [m] = petrel.wait_mails(u)
        assert m.first("Subject") == "curl-dots"
        assert m.body == DOTTY_BODY
        assert m.first("Return-Path") == "<s@example.net>"
        assert "from curl.example.net ([127.0.0.1])" in m.first("Received")


def test_curl_8bit_upload(petrel, tmp_path):
    f = tmp_path / "curl8.eml"
    f.write_bytes("Subject: curl-8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  "Ünïcödé body\r\n".encode("utf-8"))
    curl(petrel, f, "carol@example.org")
    [m] = petrel.wait_mails("carol")
    assert m.body == "Ünïcödé body\n".encode("utf-8")


def test_curl_refused_recipient_fails(petrel, tmp_path):
    need("curl")
    f = tmp_path / "x.eml"
    f.write_bytes(b"Subject: x\r\n\r\nx\r\n")
    p = subprocess.run(["curl", "-sS", "--max-time", "20", f"smtp://127.0.0.1:{petrel.port}",
                        "--mail-from", "s@example.net", "--mail-rcpt", "u@other.net",
                        "--upload-file", str(f)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode != 0, "curl must fail when the only recipient is refused"
    assert "550" in p.stderr
