"""Text items: RFC 1436 dot-stuffing undone on a stream, no I/O."""

import pytest
from loader_gopher import TextDecoder, decode_text

CASES = [
    # (on the wire, the document)
    (b"hello\r\nworld\r\n.\r\n", b"hello\r\nworld\r\n"),
    (b"hello\nworld\n.\n", b"hello\nworld\n"),
    (b"..dot first\r\n.\r\n", b".dot first\r\n"),
    (b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
    (b"a\r\n...x\r\n.\r\n", b"a\r\n..x\r\n"),
    (b"a\r\n.hidden\r\n", b"a\r\n.hidden\r\n"),  # a lone dot-line only ends at ".\r\n"
    (b"a\r\n.\r\nafter the end\r\n", b"a\r\n"),
    (b".\r\n", b""),
    (b"", b""),
    (b"no terminator\n", b"no terminator\n"),
    (b"no final newline", b"no final newline"),
    (b"ends with a dot\r\n.", b"ends with a dot\r\n"),
    (b"a.\r\nb. c\r\n.\r\n", b"a.\r\nb. c\r\n"),
    (b"x\r\n.\rnot\r\n", b"x\r\n.\rnot\r\n"),
    (b"\xff\x00.\r\n..\xfe\r\n.\r\n", b"\xff\x00.\r\n.\xfe\r\n"),
]


@pytest.mark.parametrize(("wire", "document"), CASES)
def test_decode(wire: bytes, document: bytes) -> None:
    assert decode_text(wire) == document


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize(("wire", "document"), CASES)
def test_decode_in_chunks(wire: bytes, document: bytes, size: int) -> None:
    decoder = TextDecoder()
    out = b"".join(decoder.feed(wire[i : i + size]) for i in range(0, len(wire), size))
    assert out + decoder.close() == document


def test_done_after_terminator() -> None:
    decoder = TextDecoder()
    assert decoder.feed(b"a\n.") == b"a\n"
    assert not decoder.done
    assert decoder.feed(b"\r\nrest") == b""
    assert decoder.done
    assert decoder.feed(b"more") == b""


def test_large_text_passes_through_quickly() -> None:
    body = b"".join(b"line %d with some text\r\n" % n for n in range(200_000))
    decoder = TextDecoder()
    out = b"".join(decoder.feed(body[i : i + 65536]) for i in range(0, len(body), 65536))
    assert out == body
