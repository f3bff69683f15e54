"""``loader get`` with curl's request options: -X, -d, --data-binary, -T, --retry-all.

Every request goes to the real test server, whose ``/echo`` answers with the method,
the headers that frame the body, and the body's length and SHA-256 as it received them.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from loader.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def echo(*argv: str) -> dict[str, Any]:
    code, out, err = run("get", *argv, "-o", "-", "-q")
    assert code == EXIT_OK, err
    return json.loads(out)


def test_data_is_a_form_post_joined_with_ampersands(http_server: Any) -> None:
    got = echo(http_server.url("/echo"), "-d", "a=1", "-d", "b=two words")
    assert (got["method"], got["body"]) == ("POST", "a=1&b=two words")
    assert got["content_type"] == "application/x-www-form-urlencoded"
    assert got["content_length"] == str(len("a=1&b=two words"))


def test_data_from_a_file_loses_its_line_breaks(http_server: Any, tmp_path: Path) -> None:
    form = tmp_path / "form.txt"
    form.write_bytes(b"a=1\r\n&b=2\n")
    got = echo(http_server.url("/echo"), "-d", f"@{form}", "-d", "c=3")
    assert got["body"] == "a=1&b=2&c=3"


def test_data_binary_from_a_file_is_sent_as_it_is(http_server: Any, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000 + b"\r\n\n"
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    got = echo(http_server.url("/echo"), "--data-binary", f"@{source}")
    assert got["method"] == "POST" and got["length"] == len(data)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert got["content_length"] == str(len(data))


def test_a_header_given_wins_over_the_form_type(http_server: Any) -> None:
    got = echo(http_server.url("/echo"), "-d", "{}", "-H", "content-type: application/json")
    assert got["content_type"] == "application/json"


def test_upload_file_is_a_streamed_put_with_sending_events(http_server: Any, tmp_path: Path) -> None:
    size = 3 * 1024 * 1024 + 17
    data = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    log = tmp_path / "events.jsonl"
    got = echo(http_server.url("/echo"), "-T", str(source), "--events", str(log))
    assert (got["method"], got["length"], got["content_length"]) == ("PUT", size, str(size))
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    sending = [e for e in events if e["phase"] == "PROGRESS" and e["message"] == "sending"]
    assert len(sending) > 1 and {e["total"] for e in sending} == {size}
    assert [e["bytes"] for e in sending] == sorted(e["bytes"] for e in sending)
    assert sending[-1]["bytes"] == size
    phases = [e["phase"] for e in events]
    assert events.index(sending[-1]) < phases.index("RESPONSE_RECEIVED")


def test_an_upload_is_never_held_whole_in_memory(http_server: Any, tmp_path: Path) -> None:
    size = 16 << 20
    source = tmp_path / "big.bin"
    with source.open("wb") as file:
        for i in range(size >> 20):
            file.write(bytes([i]) * (1 << 20))
    echo(http_server.url("/echo"), "-X", "POST", "-d", "warm")  # imports happen outside the trace
    tracemalloc.start()
    try:
        got = echo(http_server.url("/echo"), "-T", str(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got["length"] == size
    assert peak < size // 4, f"peak {peak} bytes for a {size}-byte upload"


def test_request_overrides_the_method(http_server: Any) -> None:
    assert echo(http_server.url("/echo"), "-X", "PATCH", "-d", "x=1")["method"] == "PATCH"
    got = echo(http_server.url("/echo"), "-X", "DELETE")
    assert (got["method"], got["length"]) == ("DELETE", 0) and got["content_length"] in (None, "0")


def test_a_post_is_not_retried_unless_asked(http_server: Any) -> None:
    url = http_server.url("/flaky/cli-post/1")
    code, _, err = run("get", url, "-d", "order=1", "-o", "-", "-q", "--retries", "3")
    assert code == EXIT_FAILED and f"error: {url}: HTTP 503" in err
    assert http_server.hits("/flaky/cli-post/1") == 1
    again = http_server.url("/flaky/cli-post-asked/1")
    code, out, err = run("get", again, "-d", "order=1", "-o", "-", "-q", "--retry-all")
    assert code == EXIT_OK and out == "recovered", err
    assert http_server.hits("/flaky/cli-post-asked/1") == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-T", "{file}", "-d", "x"], "cannot be combined with -d"),
        (["-X", "GET /x"], "invalid request method"),
        (["-T", "{missing}"], "not a readable file"),
        (["-d", "@{missing}"], "cannot read"),
        (["--data-binary", "@{missing}"], "cannot read"),
        (["-d", "x", "-c"], "-c/--continue"),
    ],
)
def test_request_options_that_cannot_work_are_usage_errors(
    http_server: Any, tmp_path: Path, options: list[str], message: str
) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"x")
    filled = [o.format(file=file, missing=tmp_path / "missing") for o in options]
    url = http_server.url("/echo")
    http_server.reset()
    code, _, err = run("get", url, *filled, "-o", str(tmp_path / "out"))
    assert code == EXIT_USAGE and err.startswith(f"error: {url}: ") and message in err, err
    assert http_server.requests == [] and not (tmp_path / "out").exists()


def test_request_options_need_an_http_url(tmp_path: Path) -> None:
    code, _, err = run("get", "ftp://127.0.0.1:1/hello.txt", "-d", "x", "-o", str(tmp_path / "out"))
    assert code == EXIT_USAGE and "need an http:// or https:// URL" in err


def test_upload_file_to_ftp_is_a_stor(ftp_server: Any, ftp_scratch: str, tmp_path: Path) -> None:
    source = tmp_path / "report.txt"
    source.write_bytes(b"line\n" * 50_000)
    code, out, err = run("get", "-T", str(source), ftp_server.alice(f"{ftp_scratch}/report.txt"), "-q")
    assert code == EXIT_OK and out == "", err
    assert (ftp_server.root / ftp_scratch.lstrip("/") / "report.txt").read_bytes() == source.read_bytes()


def test_the_response_goes_to_stdout_not_over_the_uploaded_file(
    http_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "echo").write_bytes(b"the file being uploaded")
    code, out, err = run("get", "-T", "echo", http_server.url("/echo"), "-q")
    assert code == EXIT_OK, err
    assert json.loads(out)["body"] == "the file being uploaded"
    assert (tmp_path / "echo").read_bytes() == b"the file being uploaded"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["echo"]


def test_help_lists_the_request_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "--help"]) == EXIT_OK
    text = capsys.readouterr().out
    for option in ("--request", "--data", "--data-binary", "--upload-file", "--retry-all"):
        assert option in text


def test_upload_from_stdin_is_sent_chunked(http_server: Any) -> None:
    data = b"from a pipe\n" * 10000
    done = subprocess.run(
        [sys.executable, "-m", "loader", "get", http_server.url("/echo"), "-T", "-", "-o", "-", "-q"],
        input=data, capture_output=True, timeout=60,
    )
    assert done.returncode == EXIT_OK, done.stderr
    got = json.loads(done.stdout)
    assert (got["method"], got["length"], got["transfer_encoding"]) == ("PUT", len(data), "chunked")
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
