"""lighttpd: HTTP/1.1, HTTP/2 over TLS (mod_openssl), gzip (mod_deflate), Range, basic auth."""

from __future__ import annotations

from tests.interop.http_servers import WebServerChecks


class TestLighttpd(WebServerChecks):
    """Every web-server check against lighttpd (see ``WebServerChecks``)."""

    server_fixture = "lighttpd"
