"""The I/O-free HTTP/1.1 response parser (``loader_http._http11``), fed bytes in every split.

Every recorded response is fed byte by byte, in two pieces at every split point and
in random pieces, and must give the same heads, body, end and leftover bytes each
time; every hostile one must be refused with the same clear message each time.  Valid
responses are also read by h11 (httpx's own parser), which must agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import h11
import pytest
from loader_http._http11 import (
    END,
    MAX_HEAD,
    MAX_HEADERS,
    NEED_DATA,
    BadResponse,
    Head,
    ResponseParser,
)


class Outcome:
    """What a parser made of a response: heads, body, whether it ended, what was left."""

    def __init__(self, heads: list[Head], body: bytes, ended: bool, leftover: bytes, reusable: bool) -> None:
        self.heads = heads
        self.body = body
        self.ended = ended
        self.leftover = leftover
        self.reusable = reusable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Outcome) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Outcome({vars(self)!r})"


def parse(pieces: list[bytes], method: str = "GET", eof: bool = True) -> Outcome:
    """Feed ``pieces`` one at a time (then the end of the stream, if ``eof``); take every event."""
    parser = ResponseParser(method)
    heads: list[Head] = []
    body: list[bytes] = []
    ended = False

    def drain() -> bool:
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return False
            if event is END:
                assert parser.next_event() is END  # and again on every later call
                return True
            if isinstance(event, Head):
                assert not body, "a head after body bytes"
                heads.append(event)
            else:
                assert isinstance(event, bytes) and event, event
                body.append(event)

    for piece in filter(None, pieces):  # an empty piece would say the stream ended
        parser.feed(piece)  # after the end: bytes of whatever the connection carries next
        ended = ended or drain()
    if not ended and eof:
        parser.feed(b"")
        ended = drain()
    return Outcome(heads, b"".join(body), ended, parser.buffer, parser.reusable)


def splits(data: bytes, seed: int = 0) -> Iterator[list[bytes]]:
    """``data`` whole, byte by byte, in two pieces at every point, and in random pieces."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    rng = random.Random(seed)
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, 4)))
        yield [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def same_everywhere(data: bytes, method: str = "GET", eof: bool = True) -> Outcome:
    """The one outcome of ``data`` however it is split (asserted)."""
    first = parse([data], method, eof)
    for pieces in splits(data):
        assert parse(pieces, method, eof) == first, pieces
    return first


def refused_everywhere(data: bytes, method: str = "GET") -> str:
    """The one error message ``data`` gets however it is split (asserted)."""
    messages = set()
    for pieces in splits(data):
        with pytest.raises(BadResponse) as info:
            parse(pieces, method)
        messages.add(str(info.value))
    assert len(messages) == 1, messages
    return messages.pop()


HEAD_NGINX = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 18:00:00 GMT\r\n"
    b"Content-Type: image/png\r\nContent-Length: 11\r\nConnection: keep-alive\r\n"
    b'ETag: "6565-b"\r\nAccept-Ranges: bytes\r\n\r\n'
)


# -- recorded responses ------------------------------------------------------------------


def test_content_length_body_and_the_next_responses_bytes() -> None:
    outcome = same_everywhere(HEAD_NGINX + b"hello world" + b"HTTP/1.1 200 OK\r\n", eof=False)
    (head,) = outcome.heads
    assert (head.version, head.status, head.reason) == (b"HTTP/1.1", 200, b"OK")
    assert head.headers[0] == (b"Server", b"nginx/1.22.1") and (b"ETag", b'"6565-b"') in head.headers
    assert outcome.body == b"hello world" and outcome.ended and outcome.reusable
    assert outcome.leftover == b"HTTP/1.1 200 OK\r\n"  # what came after is not this response's


def test_chunked_with_extensions_and_trailers() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n5 ; name=\"v\"\r\n worl\r\nA\r\nd and more\r\n1\n!\n"
        b"0\r\nX-Checksum: abc\r\nX-Folded: one\r\n two\r\n\r\n"
    )
    outcome = same_everywhere(data, eof=False)
    assert outcome.body == b"hello world and more!" and outcome.ended and outcome.reusable
    assert outcome.leftover == b""


def test_close_delimited_body_ends_with_the_stream() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end\r\n\r\n"
    outcome = same_everywhere(data)
    assert outcome.body == b"until the end\r\n\r\n" and outcome.ended and not outcome.reusable
    assert not parse([data], eof=False).ended  # without the end of the stream it goes on


def test_interim_responses_come_before_the_final_one() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    outcome = same_everywhere(data, eof=False)
    assert [(h.status, h.headers) for h in outcome.heads] == [
        (100, []), (103, [(b"Link", b"</a.css>; rel=preload")]), (201, [(b"Content-Length", b"2")])]
    assert outcome.body == b"ok" and outcome.ended


@pytest.mark.parametrize(
    ("method", "status_line"),
    [("HEAD", b"HTTP/1.1 200 OK"), ("GET", b"HTTP/1.1 204 No Content"), ("GET", b"HTTP/1.1 304 Not Modified")],
)
def test_no_body_for_head_204_and_304(method: str, status_line: bytes) -> None:
    data = status_line + b"\r\nContent-Length: 1000\r\nTransfer-Encoding: chunked\r\n\r\nNEXT"
    outcome = same_everywhere(data, method, eof=False)
    assert outcome.body == b"" and outcome.ended and outcome.leftover == b"NEXT"


def test_switching_protocols_ends_http_on_the_connection() -> None:
    outcome = same_everywhere(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05", eof=False)
    assert [h.status for h in outcome.heads] == [101]
    assert outcome.ended and not outcome.reusable and outcome.leftover == b"\x81\x05"


@pytest.mark.parametrize(
    ("version", "connection", "reusable"),
    [(b"HTTP/1.0", b"", False), (b"HTTP/1.0", b"Keep-Alive", True), (b"HTTP/1.1", b"", True),
     (b"HTTP/1.1", b"keep-alive, Close", False)],
)
def test_keep_alive_by_version_and_connection(version: bytes, connection: bytes, reusable: bool) -> None:
    line = b"Connection: " + connection + b"\r\n" if connection else b""
    outcome = same_everywhere(version + b" 200 OK\r\n" + line + b"Content-Length: 1\r\n\r\nx", eof=False)
    assert outcome.ended and outcome.reusable is reusable


def test_bare_lf_line_ends_and_folded_headers() -> None:
    data = b"HTTP/1.1 200 OK\nX-Long: one\n  two\r\n\tthree\nContent-Length: 3\n\r\nabc"
    outcome = same_everywhere(data, eof=False)
    assert outcome.heads[0].headers == [(b"X-Long", b"one two three"), (b"Content-Length", b"3")]
    assert outcome.body == b"abc"


def test_content_length_with_transfer_encoding_reads_chunks_and_drops_the_connection() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    outcome = same_everywhere(data, eof=False)
    assert outcome.body == b"ab" and outcome.ended and not outcome.reusable


def test_repeated_equal_content_lengths_are_one() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab"
    assert same_everywhere(data, eof=False).body == b"ab"


def test_a_head_of_max_head_bytes_is_accepted_and_one_more_is_not() -> None:
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: "
    head = start + b"a" * (MAX_HEAD - len(start) - 2) + b"\r\n"  # its lines and line ends
    assert len(head) == MAX_HEAD
    for data, accepted in ((head + b"\r\n", True), (head[:-2] + b"a\r\n\r\n", False),
                           (head[:-2] + b"a\n\n", True), (head[:-2] + b"aa\n\n", False)):
        at = len(data) - 5
        for pieces in ([data], *([data[:i], data[i:]] for i in range(at, len(data)))):
            if accepted:
                assert parse(pieces).ended
            else:
                with pytest.raises(BadResponse, match=f"larger than {MAX_HEAD} bytes"):
                    parse(pieces)


# -- hostile responses ---------------------------------------------------------------------

HOSTILE = [
    (b"", "Server disconnected without sending a response"),
    (b"HTTP/1.1 200 OK\r\nContent-", "inside the response head"),
    (b"SSH-2.0-OpenSSH_9.0\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/2.0 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.x 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status code"),
    (b"HTTP/1.1 20x OK\r\n\r\n", "bad status code"),
    (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nX(y): z\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\n folded: first\r\n\r\n", "continuation line before any header"),
    (b"HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\n\r\n", "bare CR"),
    (b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", "NUL"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 19 + b"\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "chunked is not the last"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     "chunked is not the last"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 17 + b"\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", "chunk not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "2 of 5 chunk bytes missing"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "inside a chunked body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", "inside a chunked body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "95 of 100 body bytes missing"),
]


@pytest.mark.parametrize(("data", "message"), HOSTILE, ids=[repr(d[:48]) for d, _ in HOSTILE])
def test_hostile_responses_are_refused_the_same_way_at_every_split(data: bytes, message: str) -> None:
    assert message in refused_everywhere(data)


def test_a_head_past_max_head_is_refused_with_or_without_its_end() -> None:
    endless = b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD
    parser = ResponseParser("GET")
    for at in range(0, len(endless), 4096):  # a slow server: the limit holds before the end comes
        parser.feed(endless[at : at + 4096])
        if at + 4096 < MAX_HEAD:
            assert parser.next_event() is NEED_DATA
    with pytest.raises(BadResponse, match=f"larger than {MAX_HEAD} bytes"):
        parser.next_event()
    whole = ResponseParser("GET")
    whole.feed(endless + b"\r\n\r\n")  # one read with the end in it is refused all the same
    with pytest.raises(BadResponse, match=f"larger than {MAX_HEAD} bytes"):
        whole.next_event()


def test_too_many_header_lines_are_refused() -> None:
    data = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    for pieces in ([data], [data[:100], data[100:]]):
        with pytest.raises(BadResponse, match=f"more than {MAX_HEADERS} header lines"):
            parse(pieces)
    assert parse([b"HTTP/1.1 204 No Content\r\n" + b"X: y\r\n" * MAX_HEADERS + b"\r\n"]).ended


def test_endless_trailers_and_chunk_lines_are_bounded() -> None:
    trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"X: y\r\n" * (MAX_HEAD // 6 + 1)
    with pytest.raises(BadResponse, match="trailers larger than"):
        parse([trailers], eof=False)
    line = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"e" * (MAX_HEAD + 1)
    with pytest.raises(BadResponse, match="chunk header line too long"):
        parse([line], eof=False)
    whole = line + b"\r\nhello\r\n0\r\n\r\n"  # the line's end in the same read: refused all the same
    for pieces in ([whole], [whole[:100], whole[100:]], [line, whole[len(line) :]]):
        with pytest.raises(BadResponse, match="chunk header line too long"):
            parse(pieces, eof=False)


def test_a_chunk_size_of_sixteen_hex_digits_is_read() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000003\r\nabc\r\n0\r\n\r\n"
    assert same_everywhere(data, eof=False).body == b"abc"


# -- h11 agrees ----------------------------------------------------------------------------


def h11_reads(data: bytes, method: str, eof: bool) -> tuple[list[tuple[int, bytes, list[tuple[bytes, bytes]]]], bytes]:
    """Heads (status, reason, raw headers) and body as h11 reads ``data`` (answering ``method``)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "example")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    heads, body = [], b""
    while True:
        event: Any = conn.next_event()
        if isinstance(event, h11.InformationalResponse | h11.Response):
            heads.append((event.status_code, bytes(event.reason), list(event.headers.raw_items())))
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        else:
            assert isinstance(event, h11.EndOfMessage), event
            return heads, body


def random_response(rng: random.Random) -> tuple[bytes, str, bool, bytes]:
    """A response h11 and we both accept: (bytes, request method, ends with the stream, body)."""
    end = rng.choice([b"\r\n", b"\r\n", b"\n"])
    head = b""
    for _ in range(rng.randint(0, 2)):
        head += b"HTTP/1.1 1%02d Interim%s" % (rng.choice([0, 2, 3]), end)
        head += b"X-Hint: %d%s" % (rng.randint(0, 99), end) * rng.randint(0, 2) + end
    status = rng.choice([200, 200, 200, 203, 204, 304, 404, 500])
    method = rng.choice(["GET", "GET", "HEAD"])
    head += b"HTTP/1.1 %d %s%s" % (status, rng.choice([b"OK", b"Some Reason", b""]), end)
    for i in range(rng.randint(0, 6)):
        name = rng.choice([b"X-A", b"x-b", b"Cache-Control", b"Set-Cookie", b"X-" + b"%d" % i])
        value = rng.choice([b"v", b"a b", b"quoted \"x\"", b"%d" % rng.randint(0, 10**6)])
        head += name + b":" + rng.choice([b" ", b"", b"\t "]) + value + end
        if rng.random() < 0.2:
            head += rng.choice([b" ", b"\t"]) + b"folded" + end
    body = bytes(rng.choice(b"ab\r\n0") for _ in range(rng.randint(0, 40)))
    framing = rng.choice(["length", "chunked", "close"])
    no_body = method == "HEAD" or status in (204, 304)
    if framing == "length" or no_body and framing == "close":
        head += b"Content-Length: %d%s" % (len(body), end)
        payload = body
    elif framing == "chunked":
        head += b"Transfer-Encoding: chunked" + end
        payload, at = b"", 0
        while at < len(body):
            size = rng.randint(1, 9)
            ext = rng.choice([b"", b";x=1", b";y"])  # h11 refuses the space RFC 9112 allows before ";"
            # CRLF: h11 takes a bare LF in a head but not in chunk framing (we take both)
            payload += b"%x%s\r\n" % (len(body[at : at + size]), ext) + body[at : at + size] + b"\r\n"
            at += size
        payload += b"0\r\n" + rng.choice([b"", b"X-Trailer: t\r\n"]) + b"\r\n"
    else:
        payload = body
    if no_body:
        payload, body = b"", b""
    return head + end + payload, method, framing == "close" and not no_body, body


def test_h11_reads_random_responses_as_we_do() -> None:
    rng = random.Random(16)
    for _ in range(400):
        data, method, eof, body = random_response(rng)
        ours = parse([data], method, eof)
        assert ours.ended and ours.body == body, data
        heads, h11_body = h11_reads(data, method, eof)
        assert [(h.status, h.reason, h.headers) for h in ours.heads] == heads, data
        assert h11_body == body
        cut = rng.randint(0, len(data))
        assert parse([data[:cut], data[cut:]], method, eof) == ours, (data, cut)


def test_a_parser_is_freed_by_reference_counting() -> None:
    """No reference cycle: the read a parser holds (up to 256 KiB) goes when the parser does."""
    import gc

    data = HEAD_NGINX + b"hello world"
    gc.collect()
    gc.disable()
    try:
        for pieces in ([data], [data[:10], data[10:]]):
            parse(pieces, eof=False)
        refused = ResponseParser("GET")
        refused.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        with pytest.raises(BadResponse):
            while refused.next_event() is not NEED_DATA:
                pass
        del refused
        assert gc.collect() == 0
    finally:
        gc.enable()
