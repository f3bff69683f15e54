"""The wget/curl options of ``loader fetch`` and ``loader get``, against real servers on 127.0.0.1.

``--referer``, ``--user``, ``~/.netrc``, ``-v``, ``--proxy``, ``--cacert``, ``-i``, ``-N`` and
``--json``: each checked where it shows, in the request heads a server received, the files
left behind, and what the command printed.
"""

from __future__ import annotations

import base64
import email.utils
import http.server
import io
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until

from loader.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main


def run(*argv: str, stdin: str | None = None, monkeypatch: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(autouse=True)
def _no_user_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No config file or netrc of whoever runs the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


# -- a tiny scripted HTTP server: keep-alive, every request head recorded ------------------

Reply = Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes]]


class Recorder:
    """Answers each request with ``reply(request_line, headers)``; keeps every head it read."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.heads: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket) -> None:
        while True:
            head = recv_until(conn, b"\r\n\r\n")
            if not head.endswith(b"\r\n\r\n"):
                return
            line, *rest = head.decode("latin-1").split("\r\n")
            headers = {}
            for item in rest:
                if ":" in item:
                    name, _, value = item.partition(":")
                    headers[name.strip().lower()] = value.strip()
            with self.lock:
                self.heads.append((line, headers))
            status, extra, body = self.reply(line, headers)
            reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "X")
            lines = [f"HTTP/1.1 {status} {reason}"]
            if status != 304:
                lines.append(f"Content-Length: {len(body)}")
            lines += [f"{k}: {v}" for k, v in extra.items()]
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if status == 304 else body))


# -- credentials and headers -------------------------------------------------------------


def test_referer_and_user_arrive_in_the_request_head(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", http_server.url("/headers"), "-o", str(tmp_path / "h.json"), "-q",
                       "--referer", "http://example.org/from", "--user", "bob:s3cret")
    assert code == EXIT_OK, err
    seen = json.loads((tmp_path / "h.json").read_text())
    assert seen["referer"] == "http://example.org/from"
    assert seen["authorization"] == basic("bob", "s3cret")


def test_password_option_and_credentials_in_the_url_win(http_server: Any, tmp_path: Path) -> None:
    target = tmp_path / "h.json"
    code, _, err = run("get", http_server.url("/headers"), "-o", str(target), "-q", "-u", "bob", "--password", "pw")
    assert code == EXIT_OK, err
    assert json.loads(target.read_text())["authorization"] == basic("bob", "pw")
    in_url = http_server.url("/headers").replace("http://", "http://carol:c%40t@")
    code, _, err = run("get", in_url, "-o", str(target), "-q", "--user", "bob:pw")
    assert code == EXIT_OK, err
    assert json.loads(target.read_text())["authorization"] == basic("carol", "c@t")


def test_password_without_user_is_a_usage_error() -> None:
    code, _, err = run("get", "http://127.0.0.1:9/x", "--password", "pw")
    assert code == EXIT_USAGE and "--password needs --user" in err


def test_user_goes_only_to_the_named_host_netrc_by_exact_host(raw_server: Any, tmp_path: Path) -> None:
    def reply(line: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if line.startswith("GET /page.html "):
            html = f'<img src="/a.png"><img src="http://localhost:{server.port}/b.png">'
            return 200, {"Content-Type": "text/html"}, html.encode()
        return 200, {"Content-Type": "image/png"}, b"png"

    recorder = Recorder(reply)
    server = raw_server(recorder)
    code, _, err = run("fetch", server.url("http", "/page.html"), "-o", str(tmp_path / "out"), "-q",
                       "--user", "bob:pw")
    assert code == EXIT_OK, err
    auth = {line.split()[1] + "@" + h["host"].split(":")[0]: h.get("authorization") for line, h in recorder.heads}
    assert auth["/page.html@127.0.0.1"] == basic("bob", "pw")
    assert auth["/a.png@127.0.0.1"] == basic("bob", "pw")
    assert auth["/b.png@localhost"] is None  # another host: never the user's password

    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login nina password n1\ndefault login anyone password leak\n")
    netrc.chmod(0o600)
    recorder.heads.clear()
    code, _, err = run("fetch", server.url("http", "/page.html"), "-o", str(tmp_path / "out2"), "-q",
                       "--netrc-file", str(netrc))
    assert code == EXIT_OK, err
    auth = {line.split()[1]: h.get("authorization") for line, h in recorder.heads}
    assert auth["/b.png"] == basic("nina", "n1")
    assert auth["/page.html"] is None and auth["/a.png"] is None  # netrc's default entry is never sent


def test_netrc_from_the_environment_and_no_netrc(http_server: Any, tmp_path: Path, monkeypatch: Any) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login nina password n1\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    target = tmp_path / "h.json"
    assert run("get", http_server.url("/headers"), "-o", str(target), "-q")[0] == EXIT_OK
    assert json.loads(target.read_text())["authorization"] == basic("nina", "n1")
    assert run("get", http_server.url("/headers"), "-o", str(target), "-q", "--no-netrc")[0] == EXIT_OK
    assert "authorization" not in json.loads(target.read_text())


def test_verbose_prints_heads_without_secrets(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", http_server.url("/files/http/hello.txt"), "-o", str(tmp_path / "x"), "-v",
                       "--user", "bob:s3cret", "-H", "Cookie: id=c00kie", "--referer", "http://r.example/")
    assert code == EXIT_OK, err
    assert "> GET /files/http/hello.txt\n" in err
    assert f"> Host: 127.0.0.1:{http_server.port}\n" in err
    assert "> Referer: http://r.example/\n" in err
    assert "> Authorization: Basic <hidden>\n" in err
    assert "> Cookie: <hidden>\n" in err
    assert "< HTTP/1.1 200 OK\n" in err
    assert "< Content-Length: 13\n" in err.replace("content-length", "Content-Length")
    assert "s3cret" not in err and base64.b64encode(b"bob:s3cret").decode() not in err and "c00kie" not in err


def test_verbose_still_sends_a_body(http_server: Any, tmp_path: Path) -> None:
    # -v wraps the HTTP handler: the wrapper must still say it sends bodies.
    target = tmp_path / "echo.json"
    code, _, err = run("get", http_server.url("/echo"), "-o", str(target), "-v", "-d", "a=b")
    assert code == EXIT_OK, err
    echo = json.loads(target.read_text())
    assert (echo["method"], echo["body"]) == ("POST", "a=b")
    assert "< HTTP/1.1 200" in err


def test_verbose_shows_redirects_and_hides_set_cookie(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", http_server.url("/redirect/1"), "-o", str(tmp_path / "r"), "-v")
    assert code == EXIT_OK, err
    assert f"* redirected to {http_server.url('/redirect/0')}\n" in err
    code, _, err = run("get", http_server.url("/set-cookie?sid=t0ken"), "-o", str(tmp_path / "c"), "-v")
    assert code == EXIT_OK, err
    assert "set-cookie: <hidden>" in err.lower() and "t0ken" not in err.replace("sid=t0ken", "")


# -- proxy and TLS -------------------------------------------------------------------------


def test_proxy_receives_the_absolute_form_request(raw_server: Any, tmp_path: Path) -> None:
    recorder = Recorder(lambda line, headers: (200, {"Content-Type": "text/plain"}, b"via proxy\n"))
    proxy = raw_server(recorder)
    target = tmp_path / "x.txt"
    code, _, err = run("get", "http://origin.example.invalid/x.txt", "-o", str(target), "-q",
                       "--proxy", f"127.0.0.1:{proxy.port}")
    assert code == EXIT_OK, err
    assert target.read_bytes() == b"via proxy\n"
    line, headers = recorder.heads[0]
    assert line == "GET http://origin.example.invalid/x.txt HTTP/1.1"
    assert headers["host"] == "origin.example.invalid"


def test_proxy_option_beats_the_environment(raw_server: Any, tmp_path: Path, monkeypatch: Any) -> None:
    recorder = Recorder(lambda line, headers: (200, {}, b"ok"))
    proxy = raw_server(recorder)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a port where nothing listens
    code, _, err = run("get", "http://origin.example.invalid/y", "-o", str(tmp_path / "y"), "-q",
                       "--proxy", proxy.url("http", "/"))
    assert code == EXIT_OK, err
    assert recorder.heads[0][0] == "GET http://origin.example.invalid/y HTTP/1.1"


def test_bad_proxy_url_is_a_usage_error() -> None:
    code, _, err = run("get", "http://127.0.0.1:9/x", "--proxy", "ftp://p.example:21")
    assert code == EXIT_USAGE and "invalid proxy URL" in err


def test_cacert_trusts_the_named_ca(asgi_tls_server: Any, tmp_path: Path) -> None:
    url = asgi_tls_server.url("/bytes/10")
    code, _, err = run("get", url, "-o", str(tmp_path / "a"), "-q", "--retries", "0")
    assert code == EXIT_FAILED and "certificate" in err.lower()
    code, _, err = run("get", url, "-o", str(tmp_path / "b"), "-q", "--cacert", str(asgi_tls_server.ca_path))
    assert code == EXIT_OK, err
    assert (tmp_path / "b").stat().st_size == 10


def test_cacert_must_exist(tmp_path: Path) -> None:
    code, _, err = run("get", "https://127.0.0.1:9/x", "--cacert", str(tmp_path / "missing.pem"))
    assert code == EXIT_USAGE and "no such file" in err


# -- input files ---------------------------------------------------------------------------


def test_input_file_and_stdin(http_server: Any, tmp_path: Path, monkeypatch: Any) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# pages\n{http_server.url('/files/http/hosts.html')}\n\n")
    code, out, err = run("fetch", "--list", "-i", str(listing))
    assert code == EXIT_OK, err
    assert "logo.png" in out and "pixel.gif" in out
    code, out, err = run("fetch", "--list", "-i", "-", stdin=http_server.url("/files/http/index.html") + "\n",
                         monkeypatch=monkeypatch)
    assert code == EXIT_OK, err
    assert "sound.wav" in out


def test_input_file_problems_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("fetch", "-i", str(tmp_path / "missing.txt"))
    assert code == EXIT_USAGE and "cannot read the input file" in err and "missing.txt" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    code, _, err = run("fetch", "-i", str(empty))
    assert code == EXIT_USAGE and "no URL given" in err


# -- -N ------------------------------------------------------------------------------------

LAST_MODIFIED = 1_600_000_000  # 2020-09-13


def _conditional(line: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    since = headers.get("if-modified-since")
    if since and email.utils.parsedate_to_datetime(since).timestamp() >= LAST_MODIFIED:
        return 304, {}, b""
    return 200, {"Last-Modified": email.utils.formatdate(LAST_MODIFIED, usegmt=True)}, b"fresh body\n"


def test_timestamping_sends_if_modified_since_and_keeps_the_file_on_304(raw_server: Any, tmp_path: Path) -> None:
    recorder = Recorder(_conditional)
    server = raw_server(recorder)
    target = tmp_path / "doc.txt"
    target.write_bytes(b"old body\n")
    os.utime(target, (LAST_MODIFIED - 3600, LAST_MODIFIED - 3600))  # older than the server's

    code, _, err = run("get", server.url("http", "/doc.txt"), "-o", str(target), "-N")
    assert code == EXIT_OK, err
    assert "if-modified-since" in recorder.heads[-1][1]
    assert target.read_bytes() == b"fresh body\n"
    assert target.stat().st_mtime == LAST_MODIFIED  # the server's time, as wget sets it

    code, out, err = run("get", server.url("http", "/doc.txt"), "-o", str(target), "-N", "--json")
    assert code == EXIT_OK, err
    assert recorder.heads[-1][1]["if-modified-since"] == email.utils.formatdate(LAST_MODIFIED, usegmt=True)
    assert target.read_bytes() == b"fresh body\n" and target.stat().st_mtime == LAST_MODIFIED
    assert "not modified" in err
    summary = json.loads(out)
    assert summary["counts"] == {"fetched": 0, "failed": 0, "skipped": 1}
    assert summary["skipped"][0]["reason"] == "not modified" and summary["bytes"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.txt"]  # no leftover beside it


def test_timestamping_without_a_file_sends_no_condition(raw_server: Any, tmp_path: Path) -> None:
    recorder = Recorder(_conditional)
    server = raw_server(recorder)
    code, _, err = run("get", server.url("http", "/new.txt"), "-o", str(tmp_path / "new.txt"), "-N", "-q")
    assert code == EXIT_OK, err
    assert "if-modified-since" not in recorder.heads[-1][1]
    assert (tmp_path / "new.txt").read_bytes() == b"fresh body\n"


def test_timestamping_refuses_stdout() -> None:
    code, _, err = run("get", "http://127.0.0.1:9/x", "-N", "-o", "-")
    assert code == EXIT_USAGE and "-N" in err


@pytest.mark.parametrize("body", [["-d", "a=1"], ["-X", "POST"], ["-T", "pyproject.toml"]])
def test_timestamping_refuses_a_body_or_another_method(body: list[str], tmp_path: Path) -> None:
    code, _, err = run("get", "http://127.0.0.1:9/x", "-N", "-o", str(tmp_path / "x"), *body)
    assert code == EXIT_USAGE and "-N" in err and "plain GET" in err


# -- --json --------------------------------------------------------------------------------


def test_json_summary_of_a_page(http_server: Any, tmp_path: Path) -> None:
    code, out, err = run("fetch", http_server.url("/files/http/index.html"), "-o", str(tmp_path), "-q", "--json")
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert set(summary) >= {"exit_code", "seconds", "bytes", "counts", "fetched", "failed", "skipped"}
    names = {Path(item["url"]).name for item in summary["fetched"]}
    assert {"index.html", "logo.png", "sound.wav"} <= names
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".json")
    assert summary["bytes"] == sum(item["bytes"] for item in summary["fetched"]) > 0
    assert summary["bytes"] <= on_disk + 10_000
    assert summary["exit_code"] == EXIT_OK and summary["failed"] == []


def test_json_summary_names_failures_and_skips(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/status/404")
    code, out, _ = run("get", url, "-o", str(tmp_path / "x"), "-q", "--json")
    assert code == EXIT_FAILED
    summary = json.loads(out)
    assert summary["exit_code"] == EXIT_FAILED
    assert summary["failed"][0]["url"] == url and "404" in summary["failed"][0]["error"]
    page = http_server.url("/files/http/index.html")
    assert run("fetch", page, "-o", str(tmp_path / "p"), "-q")[0] == EXIT_OK
    code, out, _ = run("fetch", page, "-o", str(tmp_path / "p"), "-q", "--json", "--exists", "skip")
    summary = json.loads(out)
    assert {Path(s["url"]).name for s in summary["skipped"]} >= {"logo.png", "sound.wav"}


@pytest.mark.parametrize("extra", [["--events", "-"], ["-o", "-"]])
def test_json_refuses_to_share_stdout(extra: list[str]) -> None:
    code, out, err = run("get", "http://127.0.0.1:9/x", "--json", *extra)
    assert code == EXIT_USAGE and out == "" and "stdout" in err


# -- -4 / -6 ---------------------------------------------------------------------------------


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"over v6\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def v6_server() -> Any:
    try:
        server = _V6Server(("::1", 0), _Hello)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_ipv4_and_ipv6_only(http_server: Any, v6_server: Any, tmp_path: Path) -> None:
    v6_url = f"http://[::1]:{v6_server.server_address[1]}/x"
    v4_url = http_server.url("/files/http/hello.txt")
    code, _, err = run("get", v6_url, "-o", str(tmp_path / "a"), "-q", "-6")
    assert code == EXIT_OK, err
    assert (tmp_path / "a").read_bytes() == b"over v6\n"
    code, _, err = run("get", v4_url, "-o", str(tmp_path / "b"), "-q", "-4")
    assert code == EXIT_OK, err
    code, _, err = run("get", v6_url, "-o", str(tmp_path / "c"), "-q", "-4", "--retries", "0")
    assert code == EXIT_FAILED and f"error: {v6_url}: cannot connect to ::1:" in err and "(IPv4 only)" in err
    code, _, err = run("get", v4_url, "-o", str(tmp_path / "d"), "-q", "-6", "--retries", "0")
    assert code == EXIT_FAILED and "not an IPv6 address (IPv6 only)" in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_ipv4_and_ipv6_exclude_each_other() -> None:
    code, _, err = run("get", "http://127.0.0.1:9/x", "-4", "-6")
    assert code == EXIT_USAGE and "--ipv6: not allowed with argument --ipv4" in err


def test_negative_numbers_stay_values_beside_minus_4() -> None:
    # -4/-6 must not make argparse read "-1" as an option.
    code, _, err = run("get", "http://127.0.0.1:9/x", "-4", "--retries", "-1")
    assert code == EXIT_USAGE and "at least 0" in err
    code, _, err = run("get", "http://127.0.0.1:9/x", "--retries", "-4")
    assert code == EXIT_USAGE and "at least 0" in err


def test_timestamping_into_a_directory_uses_the_url_name(raw_server: Any, tmp_path: Path) -> None:
    server = raw_server(Recorder(_conditional))
    code, _, err = run("get", server.url("http", "/dir/n.txt"), "-o", str(tmp_path), "-N", "-q")
    assert code == EXIT_OK, err
    assert (tmp_path / "n.txt").read_bytes() == b"fresh body\n"
    code, _, err = run("get", server.url("http", "/dir/n.txt"), "-o", "/dev/null", "-N", "-q")
    assert code == EXIT_USAGE and "regular file" in err


@pytest.mark.parametrize("command", ["fetch", "get", "plugins", "demo"])
def test_a_command_built_alone_has_the_options_of_the_full_parser(command: str) -> None:
    """``loader fetch`` builds fetch's parser alone: the same options, no sibling."""
    from loader._completion import collect_actions, subcommands
    from loader.cli import build_parser

    def spelled(parser: Any) -> list[tuple[tuple[str, ...], str, Any]]:
        return [(tuple(a.option_strings), a.dest, a.default) for a in collect_actions(parser)]

    alone = subcommands(build_parser(only=command))
    assert list(alone) == [command]
    assert spelled(alone[command]) == spelled(subcommands(build_parser())[command])
