"""`loader demo`: the README's first command, in a fresh process, over HTTP, FTP and Gopher."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import loader_command


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
    page = next(tmp_path.glob("127.0.0.1_*/index.html")).read_text()
    assert 'src="img/logo.png"' in page and "{{" not in page
