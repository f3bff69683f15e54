"""nginx (Debian's nginx-light): HTTP/1.1, HTTP/2 over TLS, gzip, chunked, Range, basic auth."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

from tests.interop.http_servers import HttpServer, WebServerChecks, new_tag, run_fetch
from tests.support.interop import sha256_file


class TestNginx(WebServerChecks):
    """Every web-server check against nginx (see ``WebServerChecks``), and its chunked gzip."""

    server_fixture = "nginx"

    def test_chunked_gzip_page_is_decoded(self, nginx: HttpServer, env: dict[str, str],
                                          tmp_path: Path) -> None:
        # What makes this case: nginx gzips on the fly, so it cannot know the length
        # and frames the body in chunks.  Asked with the standard library's client.
        parts = urlsplit(nginx.http)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            connection.request("GET", "/index.html", headers={"Accept-Encoding": "gzip"})
            answer = connection.getresponse()
            answer.read()
        finally:
            connection.close()
        assert (answer.getheader("Content-Encoding"), answer.getheader("Transfer-Encoding")) == (
            "gzip", "chunked")

        tag = new_tag()
        fetched = run_fetch("get", nginx.http + "/index.html", tmp_path / "index.html", env, tag=tag)
        assert fetched.process.returncode == 0, fetched.report()
        assert sha256_file(fetched.output) == sha256_file(nginx.root / "index.html")
        # The loader was answered the same way: fewer bytes sent than it saved.
        (access,) = nginx.accesses(tag)
        assert 0 < access.size < (nginx.root / "index.html").stat().st_size, access
