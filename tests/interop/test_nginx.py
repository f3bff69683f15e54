"""nginx (Debian's nginx-light): HTTP/1.1, HTTP/2 over TLS, gzip, chunked, Range, basic auth."""

from __future__ import annotations

from tests.interop.http_servers import WebServerChecks


class TestNginx(WebServerChecks):
    """Every web-server check against nginx (see ``WebServerChecks``)."""

    server_fixture = "nginx"
