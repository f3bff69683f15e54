"""`loader demo`: the README's first command, in a fresh process, over HTTP, FTP and Gopher."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from support import loader_command, plain_http_environ


def test_demo_fetches_the_page_and_the_gopher_menu_from_all_three_servers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [loader_command(), "demo", "-o", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    saved = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    names = {path.rsplit("/", 1)[-1] for path in saved}
    assert {"logo.png", "chime.wav", "bg.png", "cdn-badge.png"} <= names  # HTTP, CSS, second host
    assert any(p.startswith("ftp_127.0.0.1_") and p.endswith("ftp-image.png") for p in saved)
    assert any(p.startswith("gopher_127.0.0.1_") and p.endswith("purr.wav") for p in saved)
    assert "missing.png" not in names
    assert "img/missing.png: HTTP 404" in proc.stderr
    page_path = next(tmp_path.glob("127.0.0.1_*/index.html"))
    page = page_path.read_text()
    assert 'src="img/logo.png"' in page and "{{" not in page
    # The closing hint names this run's copy itself: a pattern would match every earlier run's.
    hint = [line for line in proc.stderr.splitlines() if line.startswith("demo: open ")]
    assert hint == [f"demo: open {page_path.resolve()} in a browser to view the offline copy"]


def _start_serving(cwd: Path, temp: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """``loader demo --serve`` in a fresh process (its temporary files under ``temp``),
    and the page URL it printed."""
    env = plain_http_environ()
    if temp is not None:
        env["TMPDIR"] = str(temp)
    proc = subprocess.Popen(
        [loader_command(), "demo", "--serve"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, cwd=cwd, env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("serving "):
            return proc, line.split()[1]
    proc.wait(timeout=30)
    raise AssertionError(f"loader demo --serve printed no URL (exit {proc.returncode})")


def test_demo_serve_serves_the_filled_page_and_its_requisites_resolve(tmp_path: Path) -> None:
    proc, url = _start_serving(tmp_path)
    try:
        assert url.endswith("/index.html")
        site = url.removesuffix("index.html")
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for page_url in (url, site):  # the directory's own URL is the same page, filled too
            with direct.open(page_url, timeout=30) as answer:
                page = answer.read().decode()
            assert "{{" not in page, page_url
            assert 'src="ftp://127.0.0.1:' in page and 'src="gopher://127.0.0.1:' in page
        out = tmp_path / "out"
        fetched = subprocess.run(
            [loader_command(), "fetch", site, "-o", str(out), "--no-progress"],
            capture_output=True, text=True, timeout=60, env=plain_http_environ(),
        )
        errors = [line for line in fetched.stderr.splitlines() if line.startswith("error:")]
        assert fetched.returncode == 1, fetched.stderr  # the one image missing on purpose
        assert len(errors) == 1 and errors[0].startswith(f"error: {site}img/missing.png: HTTP 404"), errors
        names = {p.name for p in out.rglob("*") if p.is_file()}
        assert {"logo.png", "cdn-badge.png", "ftp-image.png", "ftp-sound.wav", "gopher.png", "purr.wav"} <= names
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 0  # Ctrl-C is how serving ends


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_demo_serve_stops_on_sigterm_and_sighup(tmp_path: Path, signum: int, code: int) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc, _ = _start_serving(tmp_path, temp)
    assert [p.name[:12] for p in temp.iterdir()] == ["loader-demo-"]  # the served copies
    proc.send_signal(signum)
    try:
        assert proc.wait(timeout=30) == code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None and "demo: stopped serving" in proc.stderr.read()
    assert list(temp.iterdir()) == []  # removed, as after Ctrl-C
