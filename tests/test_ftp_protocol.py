"""The I/O-free FTP pieces: reply parsing (fed byte by byte), command building,
replies that carry values, and ASCII-mode line ends."""

from __future__ import annotations

import pytest
from loader_ftp import (
    CRLFDecoder,
    Reply,
    ReplyParser,
    build_command,
    parse_epsv,
    parse_features,
    parse_pasv,
    parse_pwd,
    parse_size,
    show_command,
)

from loader import InvalidURL, ProtocolError


def feed(data: bytes, chunk: int) -> list[Reply]:
    """Feed ``data`` ``chunk`` bytes at a time; return every reply in order."""
    parser = ReplyParser()
    replies = []
    for i in range(0, len(data), chunk):
        parser.feed(data[i : i + chunk])
        while (reply := parser.next_reply()) is not None:
            replies.append(reply)
    assert not parser.pending
    return replies


CHUNKS = [1, 2, 3, 7, 1000]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_single_line_replies(chunk: int) -> None:
    data = b"220 Service ready\r\n331 Password please\r\n230 Welcome\r\n"
    replies = feed(data, chunk)
    assert [(r.code, r.text) for r in replies] == [
        (220, "Service ready"),
        (331, "Password please"),
        (230, "Welcome"),
    ]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_multi_line_reply_with_odd_middle_lines(chunk: int) -> None:
    # RFC 959 4.2: middle lines may be anything, even other codes or "ddd-" lines.
    data = (
        b"220-Welcome to the archive\r\n"
        b"220-Rules:\r\n"
        b"   no mirroring\r\n"
        b"230 looks like an end but has a different code\r\n"
        b"220-still going\r\n"
        b"220 Ready\r\n"
        b"200 next\r\n"
    )
    replies = feed(data, chunk)
    assert len(replies) == 2
    first = replies[0]
    assert first.code == 220
    assert first.lines == (
        "Welcome to the archive",
        "Rules:",
        "   no mirroring",
        "230 looks like an end but has a different code",
        "still going",
        "Ready",
    )
    assert replies[1] == Reply(200, ("next",))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_feat_reply_is_parsed_into_features(chunk: int) -> None:
    data = b"211-Features:\r\n MLST type*;size*;modify*;\r\n REST STREAM\r\n SIZE\r\n UTF8\r\n211 End\r\n"
    (reply,) = feed(data, chunk)
    assert parse_features(reply) == {
        "MLST": "type*;size*;modify*;",
        "REST": "STREAM",
        "SIZE": "",
        "UTF8": "",
    }
    assert parse_features(Reply(500, ("FEAT not understood",))) == {}


def test_bare_lf_and_code_without_text_are_accepted() -> None:
    replies = feed(b"220 hi\n200\r\n", 1)
    assert [(r.code, r.text) for r in replies] == [(220, "hi"), (200, "")]


def test_utf8_and_undecodable_bytes_survive() -> None:
    (reply,) = feed('257 "/caf\u00e9" created\r\n'.encode(), 1)
    assert parse_pwd(reply) == "/caf\u00e9"
    (latin1,) = feed(b'257 "/caf\xe9"\r\n', 1)
    # A Latin-1 name is kept byte for byte (to send it back), shown with a replacement char.
    assert build_command("CWD", parse_pwd(latin1)) == b"CWD /caf\xe9\r\n"
    assert latin1.display == '"/caf\ufffd"'


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 200 OK\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"22 short\r\n",
        b"600 bad class\r\n",
        b"220x\r\n",
    ],
)
def test_garbage_raises_protocol_error(garbage: bytes) -> None:
    parser = ReplyParser()
    with pytest.raises(ProtocolError, match="not an FTP reply"):
        parser.feed(garbage)


def test_endless_line_and_endless_reply_are_refused() -> None:
    with pytest.raises(ProtocolError, match="longer than"):
        ReplyParser().feed(b"220 " + b"x" * 10000)
    parser = ReplyParser()
    parser.feed(b"220-start\r\n")
    with pytest.raises(ProtocolError, match="lines"):
        for _ in range(5000):
            parser.feed(b" more\r\n")


def test_reply_properties() -> None:
    reply = Reply(550, ("No such file",))
    assert reply.kind == 5 and not reply.ok
    assert str(reply) == "550 No such file"
    assert Reply(226, ("ok",)).ok


# -- commands -----------------------------------------------------------------


def test_build_command() -> None:
    assert build_command("NOOP") == b"NOOP\r\n"
    assert build_command("RETR", "pub/a b.txt") == b"RETR pub/a b.txt\r\n"
    assert build_command("CWD", "caf\u00e9") == b"CWD caf\xc3\xa9\r\n"


@pytest.mark.parametrize("arg", ["a\r\nDELE x", "a\nb", "a\rb", "a\0b"])
def test_cr_lf_and_nul_are_refused_before_sending(arg: str) -> None:
    with pytest.raises(InvalidURL, match="not allowed"):
        build_command("RETR", arg)


def test_only_verbs_are_verbs() -> None:
    with pytest.raises(ValueError):
        build_command("RETR x")


def test_passwords_are_never_shown() -> None:
    assert show_command("PASS", "hunter2") == "PASS ****"
    assert show_command("USER", "alice") == "USER alice"
    assert show_command("PWD") == "PWD"


# -- replies with values --------------------------------------------------------


def test_parse_pasv() -> None:
    assert parse_pasv(Reply(227, ("Entering Passive Mode (127,0,0,1,200,10).",))) == (
        "127.0.0.1",
        200 * 256 + 10,
    )
    # Some servers leave out the parentheses.
    assert parse_pasv(Reply(227, ("=10,1,2,3,4,5",))) == ("10.1.2.3", 1029)
    for bad in (
        Reply(227, ("Passive",)),
        Reply(227, ("(1,2,3,4,256,1)",)),
        Reply(200, ("(1,2,3,4,5,6)",)),
    ):
        with pytest.raises(ProtocolError):
            parse_pasv(bad)


def test_parse_epsv() -> None:
    assert parse_epsv(Reply(229, ("Entering Extended Passive Mode (|||6446|)",))) == 6446
    assert parse_epsv(Reply(229, ("ok (!!!21!)",))) == 21
    for bad in (Reply(229, ("(|||0|)",)), Reply(229, ("(|||70000|)",)), Reply(229, ("(||6446|)",))):
        with pytest.raises(ProtocolError):
            parse_epsv(bad)


def test_parse_pwd() -> None:
    assert parse_pwd(Reply(257, ('"/home/alice" is the current directory',))) == "/home/alice"
    assert parse_pwd(Reply(257, ('"/a ""quoted"" dir" created',))) == '/a "quoted" dir'
    assert parse_pwd(Reply(257, ("/plain created",))) == "/plain"
    with pytest.raises(ProtocolError):
        parse_pwd(Reply(257, ('"/unterminated',)))


def test_parse_size() -> None:
    assert parse_size(Reply(213, ("153600",))) == 153600
    assert parse_size(Reply(213, ("unknown",))) is None
    assert parse_size(Reply(550, ("not a plain file",))) is None


# -- ASCII mode -------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_crlf_decoder_across_chunk_boundaries(chunk: int) -> None:
    data = b"one\r\ntwo\r\n\r\nlone\rcr\r\nend\r"
    decoder = CRLFDecoder()
    out = b"".join(decoder.decode(data[i : i + chunk]) for i in range(0, len(data), chunk))
    out += decoder.flush()
    assert out == b"one\ntwo\n\nlone\rcr\nend\r"


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize(
    "data",
    [
        b"220 Service\x00 ready\r\n",  # in a one-line banner
        b"220-Welcome\r\n   mirror\x00s\r\n220 Ready\r\n",  # in a middle line
        b"220-Welcome\r\n220 Rea\x00dy\r\n",  # in the last line
        b"\x00220 Ready\r\n",  # before the code
        b"220 Ready\x00",  # in a line that never ends
    ],
)
def test_a_nul_byte_in_a_reply_is_a_protocol_error(data: bytes, chunk: int) -> None:
    parser = ReplyParser()
    with pytest.raises(ProtocolError, match="NUL byte in a reply"):
        for i in range(0, len(data), chunk):
            parser.feed(data[i : i + chunk])
    assert parser.next_reply() is None


def test_a_nul_is_refused_as_soon_as_it_arrives() -> None:
    # Fed byte by byte, the NUL is refused when it arrives, not when its line ends.
    parser = ReplyParser()
    for byte in b"220 Rea":
        parser.feed(bytes([byte]))
    with pytest.raises(ProtocolError):
        parser.feed(b"\x00")
