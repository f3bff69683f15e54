"""The ``loader`` command: ``main([...])`` with its output and exit code."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from support import loader_command

from loader.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_get_to_a_file(http_server: Any, tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    code, _, err = run("get", http_server.url("/files/http/hello.txt"), "-o", str(target))
    assert code == EXIT_OK, err
    assert target.read_bytes() == b"hello, world\n"


def test_get_to_stdout(http_server: Any) -> None:
    code, out, _ = run("get", http_server.url("/files/http/hello.txt"), "-o", "-", "-q")
    assert code == EXIT_OK and out == "hello, world\n"


def test_get_failure_is_one_clear_line(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/status/404")
    code, _, err = run("get", url, "-o", str(tmp_path / "x"), "-q")
    assert code == EXIT_FAILED
    assert f"error: {url}: HTTP 404" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_usage_exit_code() -> None:
    assert run("fetch")[0] == EXIT_USAGE
    assert run("get", "http://x/", "--jobs", "0")[0] == EXIT_USAGE
    assert run("fetch", "http://x/", "--kinds", "bogus")[0] == EXIT_USAGE


def test_events_as_json_lines(http_server: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    code, _, _ = run("get", http_server.url("/bytes/100"), "-o", str(tmp_path / "b"), "--events", str(events), "-q")
    assert code == EXIT_OK
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0]["phase"] == "HANDLE_CREATED" and lines[0]["code"] == 60
    assert lines[-1]["phase"] == "REQUEST_COMPLETE" and lines[-1]["code"] == 100
    assert set(lines[0]) >= {"phase", "code", "request_id", "parent_id", "url", "kind", "bytes",
                             "total", "attempt", "error", "time"}
    progress = [line for line in lines if line["phase"] == "PROGRESS"]
    assert progress[-1]["bytes"] == 100 and progress[-1]["total"] == 100


def test_plain_progress_lines_when_not_a_terminal(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", http_server.url("/bytes/10"), "-o", str(tmp_path / "b"))
    assert code == EXIT_OK
    assert "ok " + http_server.url("/bytes/10") in err


def test_plugins_lists_schemes_and_hooks() -> None:
    code, out, _ = run("plugins")
    assert code == EXIT_OK
    lines = {line.split("\t")[0]: line for line in out.splitlines()}
    assert "http, https" in lines["http"] and "loader_protocol" in lines["http"]
    assert "ftp" in lines["ftp"] and "gopher" in lines["gopher"]


def test_fetch_saves_page_and_requisites(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("fetch", http_server.url("/files/http/index.html"), "-o", str(tmp_path), "-q")
    assert code == EXIT_OK, err
    site = tmp_path / f"127.0.0.1_{http_server.port}" / "files" / "http"
    assert (site / "index.html").is_file()
    assert (site / "logo.png").read_bytes() == (Path(__file__).parents[1] / "fixtures/http/logo.png").read_bytes()
    assert (site / "sound.wav").is_file()
    assert (site / "pixel.gif").is_file()  # found in the linked stylesheet
    # Not a default kind, but downloaded to find pixel.gif: the offline copy keeps it.
    assert (site / "style.css").is_file()
    manifest = json.loads((site / "index.html.manifest.json").read_text())
    assert {Path(r["url"]).name for r in manifest["resources"]} == {"logo.png", "sound.wav", "pixel.gif", "style.css"}


def test_fetch_list_prints_provenance(http_server: Any) -> None:
    code, out, _ = run("fetch", "--list", http_server.url("/files/http/index.html"))
    assert code == EXIT_OK
    rows = [line.split("\t") for line in out.splitlines()]
    by_name = {Path(url).name: (kind, why) for kind, url, why in rows}
    assert by_name["logo.png"] == ("image", "img[src]")
    assert by_name["sound.wav"][0] == "sound"


def test_fetch_partial_failure_exit_code(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("fetch", http_server.url("/files/http/partial.html"), "-o", str(tmp_path), "-q")
    assert code == EXIT_PARTIAL
    assert f"error: {http_server.url('/files/http/not-here.png')}: HTTP 404" in err
    site = tmp_path / f"127.0.0.1_{http_server.port}" / "files" / "http"
    assert (site / "logo.png").is_file() and not (site / "not-here.png").exists()


@pytest.mark.parametrize("page", ["partial.html", "index.html"])
def test_quiet_page_line_counts_as_the_shown_one(http_server: Any, tmp_path: Path, page: str) -> None:
    """-q listens to no event: its page line counts the page's results, and says what the
    event-counted line says (a 404, a stylesheet read for its image, files skipped)."""
    url = http_server.url(f"/files/http/{page}")
    lines: dict[str, list[str]] = {}
    for name, flags in (("shown", ["--no-progress"]), ("quiet", ["-q"])):
        out = tmp_path / name
        for again in ([], ["--exists", "skip"]):  # the second run finds every file there
            code, _, err = run("fetch", url, "-o", str(out), *flags, *again)
            assert code in (EXIT_OK, EXIT_PARTIAL)
            line = next(x for x in err.splitlines() if x.startswith(url + ": saved to"))
            lines.setdefault(name, []).append(line.replace(str(out), "DIR"))
    assert lines["shown"] == lines["quiet"], lines
    first, second = lines["quiet"]
    assert " 0 bytes" not in first and "skipped" not in first
    assert "skipped" in second
    if page == "partial.html":
        assert "1 failed" in first
    else:
        assert "5 files: 5 ok" in first  # the page, its stylesheet and the image in it, two more


def test_fetch_page_failure_exit_code(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/status/500")
    code, _, err = run("fetch", url, "-o", str(tmp_path), "-q", "--retries", "0")
    assert code == EXIT_FAILED and f"error: {url}: HTTP 500" in err


def test_ctrl_c_stops_cleanly_without_partial_files(http_server: Any, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "big.bin"
    url = http_server.url("/bytes/5000000?chunk=5000&delay=0.01")
    proc = subprocess.Popen(
        [sys.executable, "-m", "loader", "get", url, "-o", str(target), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 20
    while not any(".part-" in p.name for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "the download never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_installed_command_fetches_a_page(http_server: Any, tmp_path: Path) -> None:
    """A fresh process: nothing imported beforehand by the test session can hide a bug."""
    import subprocess

    events = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [loader_command(), "fetch", http_server.url("/files/http/index.html"), "-o", str(tmp_path / "out"),
         "--no-progress", "--events", str(events)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    site = tmp_path / "out" / f"127.0.0.1_{http_server.port}" / "files" / "http"
    assert {p.name for p in site.iterdir()} >= {"index.html", "logo.png", "sound.wav", "pixel.gif"}
    assert events.read_text().count('"REQUEST_COMPLETE"') == 5  # page, stylesheet, 3 requisites


def test_quick_exit_keeps_output_exit_code_and_exit_hooks(http_server: Any, tmp_path: Path) -> None:
    """The command skips the interpreter's teardown, never what it wrote or its exit code."""
    import subprocess
    import sys

    body = subprocess.run(
        [sys.executable, "-m", "loader", "get", http_server.url("/bytes/300000"), "-o", "-", "-q"],
        capture_output=True, timeout=60,
    )
    assert body.returncode == EXIT_OK and len(body.stdout) == 300000, body.stderr
    # A failure's code and message come through, and an exit hook still runs.
    hook = tmp_path / "hook-ran"
    script = (
        "import atexit, os, pathlib, sys; from loader.cli import console;"
        f"atexit.register(pathlib.Path({str(hook)!r}).write_text, 'yes');"
        "real_exit = os._exit; os._exit = lambda code: (sys.stderr.write('quick exit'), real_exit(code));"
        "sys.argv[0] = 'loader'; console()"
    )
    url = http_server.url("/status/404")
    failed = subprocess.run(
        [sys.executable, "-c", script, "get", url, "-o", str(tmp_path / "x"), "-q"],
        capture_output=True, text=True, timeout=60,
    )
    assert failed.returncode == EXIT_FAILED and f"error: {url}: HTTP 404" in failed.stderr
    assert hook.read_text() == "yes"
    assert failed.stderr.endswith("quick exit")  # the teardown was skipped indeed


def test_fetch_runs_with_the_collector_on_and_start_up_objects_frozen(http_server: Any, tmp_path: Path) -> None:
    """``console`` pauses the cycle collector while modules load; transfers run with it on."""
    import subprocess
    import sys

    seen = tmp_path / "seen"
    script = (
        "import gc, pathlib, sys; import loader.cli as cli;"
        "real = cli._cmd_fetch\n"
        "async def probe(args, loader):\n"
        f"    pathlib.Path({str(seen)!r}).write_text(f'{{gc.isenabled()}} {{gc.get_freeze_count() > 0}}')\n"
        "    return await real(args, loader)\n"
        "cli._cmd_fetch = probe; sys.argv[0] = 'loader'; cli.console()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "fetch", http_server.url("/files/http/index.html"),
         "-o", str(tmp_path / "out"), "-q", "--no-progress"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert seen.read_text() == "True True"


def test_fetch_warms_up_the_handler_of_each_url_scheme() -> None:
    from types import SimpleNamespace

    from loader.cli import _warm_up

    warmed: list[str] = []

    class Handlers:
        def handler(self, scheme: str) -> Any:
            if scheme == "nope":
                raise ValueError("no handler")  # reported later by the fetch itself
            if scheme == "ftp":
                return SimpleNamespace()  # a duck-typed handler without warm_up
            return SimpleNamespace(warm_up=lambda: warmed.append(scheme))

    _warm_up(Handlers(), ["http://a/", "nope://b/", "ftp://c/", "gopher://d/"])
    assert warmed == ["http", "gopher"]


# -- usage: refused before any request, with exit 2 ------------------------------------


def _requested(http_server: Any) -> int:
    return len(http_server.requests)


@pytest.mark.parametrize("argv", [
    ("get", "{url}", "-o", "-", "--events", "-"),
    ("fetch", "{url}", "--list", "--events", "-"),
])
def test_two_outputs_on_stdout_are_refused(http_server: Any, argv: tuple[str, ...]) -> None:
    before = _requested(http_server)
    url = http_server.url("/files/http/index.html")
    code, out, err = run(*(a.format(url=url) for a in argv))
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("error: ") and "stdout" in err and len(err.splitlines()) == 1, err
    assert _requested(http_server) == before


def test_list_prints_the_list_only(http_server: Any) -> None:
    code, out, err = run("fetch", "--list", http_server.url("/files/http/index.html"))
    assert code == EXIT_OK and "logo.png" in out
    assert err == ""  # no progress lines, no done:


def test_a_url_without_a_scheme_is_http(http_server: Any, tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    code, _, err = run("get", f"127.0.0.1:{http_server.port}/files/http/hello.txt", "-o", str(target), "-q")
    assert code == EXIT_OK, err
    assert target.read_bytes() == b"hello, world\n"


@pytest.mark.parametrize(("url", "hint"), [("htp://x/", "did you mean http?"), ("ftpp://x/", "did you mean ftp?")])
def test_a_mistyped_scheme_is_a_usage_error_with_a_suggestion(url: str, hint: str) -> None:
    code, _, err = run("get", url)
    assert code == EXIT_USAGE
    assert err == f"error: {url}: unknown scheme {url.split(':')[0]!r}: {hint} " \
                  f"(installed: data, ftp, ftps, gopher, gophers, http, https)\n"


def test_an_unknown_option_of_fetch_shows_fetchs_usage() -> None:
    code, _, err = run("fetch", "http://x/", "--bogus")
    assert code == EXIT_USAGE
    assert err.startswith("usage: loader fetch ") and "loader fetch: error: unrecognized arguments: --bogus" in err


@pytest.mark.parametrize("option", ["--connect-timeout", "--idle-timeout", "--timeout"])
def test_a_zero_timeout_is_refused_and_none_disables(option: str) -> None:
    code, _, err = run("get", "http://x/", option, "0")
    assert code == EXIT_USAGE and "'none' disables it" in err
    from loader.cli import build_parser

    assert getattr(build_parser().parse_args(["get", "http://x/", option, "none"]), option[2:].replace("-", "_")) is None


@pytest.mark.parametrize("option", ["--retries", "--max-redirects"])
def test_negative_counts_are_refused(option: str) -> None:
    code, _, err = run("get", "http://x/", option, "-1")
    assert code == EXIT_USAGE and "must be at least 0, not -1" in err


# -- what is said, and counted ---------------------------------------------------------


def test_a_disabled_plugin_is_one_row(monkeypatch: Any) -> None:
    monkeypatch.setenv("LOADER_DISABLE_PLUGINS", "file")
    code, out, _ = run("plugins")
    assert code == EXIT_OK
    assert [line for line in out.splitlines() if line.startswith("file")] == ["file\t(disabled)"]
    assert "NoneType" not in out


def test_help_and_readme_name_the_same_default_kinds() -> None:
    from loader.cli import build_parser

    parser = build_parser()
    fetch_help = parser._subparsers._group_actions[0].choices["fetch"].format_help()  # noqa: SLF001 - our parser
    assert "(default image,sound)" in " ".join(fetch_help.split())
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "`image,sound` by default" in readme
    assert parser.parse_args(["fetch", "http://x/"]).kinds == frozenset({"image", "sound"})


def test_demo_output_has_help() -> None:
    code, out, _ = run("demo", "--help")
    assert code == EXIT_OK
    assert "directory for the fetched copy" in " ".join(out.split())


def test_exists_skip_counts_only_what_was_transferred(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/files/http/index.html")
    assert run("fetch", url, "-o", str(tmp_path), "-q")[0] == EXIT_OK
    code, _, err = run("fetch", url, "-o", str(tmp_path), "--exists", "skip")
    assert code == EXIT_OK, err
    fixtures = Path(__file__).parents[1] / "fixtures/http"
    # The page and its stylesheet are read again (resources are found in them); the images are not.
    read = (fixtures / "index.html").stat().st_size + (fixtures / "style.css").stat().st_size
    skipped = [line for line in err.splitlines() if "] skipped " in line]
    assert len(skipped) == 3 and all("not transferred" in line for line in skipped), err
    assert f"done: 5 files: 2 ok, 3 skipped; {read} bytes transferred in " in err
    assert f"5 files: 2 ok, 3 skipped; {read} bytes transferred\n" in err  # the page line agrees


def test_get_exists_skip_says_skipped(http_server: Any, tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    url = http_server.url("/files/http/hello.txt")
    assert run("get", url, "-o", str(target))[0] == EXIT_OK
    code, _, err = run("get", url, "-o", str(target), "--exists", "skip")
    assert code == EXIT_OK
    assert f"{url}: skipped, {target} is already there (13 bytes)" in err and "saved to" not in err
