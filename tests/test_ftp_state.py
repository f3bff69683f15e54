"""The FTP session's state object, without sockets: commands out, replies in, decisions checked.

:class:`~loader_ftp._state.FtpState` is driven here the way
:class:`~loader_ftp._connection.ControlConnection` drives it, one command and
one reply at a time; the server's bytes are fed in hostile splits where the
state consumes bytes (its reply parser).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loader_ftp._reply import Reply
from loader_ftp._state import Command, FtpState, Login, Passive, Step, reply_error

from loader import (
    ConnectError,
    InvalidURL,
    LoaderError,
    LoginFailed,
    NetworkError,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResponseError,
)

URL = "ftp://host/f.bin"


def r(code: int, *lines: str) -> bytes:
    """The wire bytes of a reply: one line, or a multi-line one."""
    if not lines:
        lines = ("ok",)
    if len(lines) == 1:
        return f"{code} {lines[0]}\r\n".encode()
    head = [f"{code}-{lines[0]}"] + [f" {line}" for line in lines[1:-1]] + [f"{code} {lines[-1]}"]
    return ("\r\n".join(head) + "\r\n").encode()


def reply(state: FtpState, data: bytes) -> Reply:
    """Feed ``data`` and take the one reply it completes."""
    state.receive_data(data)
    got = state.next_reply()
    assert got is not None
    assert state.next_reply() is None
    return got


def ready() -> FtpState:
    """A state past its greeting."""
    state = FtpState(url=URL)
    assert reply(state, r(220, "hello")).code == 220
    return state


def exchange(state: FtpState, command: Command | str, data: bytes) -> Reply:
    """Send ``command`` (checking its wire bytes) and feed the server's answer."""
    if isinstance(command, str):
        command = Command(command)
    line = state.send(command.verb, command.arg)
    assert line == (command.shown if command.verb != "PASS" else f"PASS {command.arg}").encode() + b"\r\n"
    return reply(state, data)


# -- login ---------------------------------------------------------------------


def drive_login(login: Login, server: list[bytes]) -> list[Command | Step]:
    """Run a login against ``server``'s replies (greeting first); return what it did."""
    state = login.state
    done: list[Command | Step] = []
    answers = iter(server)
    step: Command | Step | None = Step.READ
    while step is not None:
        if step is Step.READ:
            got: Reply | None = reply(state, next(answers))
        elif step is Step.START_TLS:
            got = None
        else:
            assert isinstance(step, Command)
            state.send(step.verb, step.arg)
            got = reply(state, next(answers))
        step = login.step(got)
        if step is not None:
            done.append(step)
    assert next(answers, None) is None, "the login stopped before the server's last reply"
    return done


def test_plain_login_is_user_then_pass() -> None:
    state = FtpState(url=URL)
    steps = drive_login(state.login("alice", "secret"), [r(220), r(331), r(230)])
    assert steps == [Command("USER", "alice"), Command("PASS", "secret")]
    assert not state.protected_data and state.reusable


def test_a_120_greeting_is_waited_through() -> None:
    state = FtpState(url=URL)
    steps = drive_login(state.login("anonymous", "x@"), [r(120, "in 5 minutes"), r(220), r(230)])
    assert steps == [Step.READ, Command("USER", "anonymous")]  # USER accepted without PASS


def test_ftps_login_is_auth_tls_then_pbsz_and_prot() -> None:
    state = FtpState(url=URL, secure=True)
    steps = drive_login(
        state.login("alice", "secret"), [r(220), r(234), r(331), r(230), r(200), r(200)]
    )
    assert steps == [
        Command("AUTH", "TLS"),
        Step.START_TLS,
        Command("USER", "alice"),
        Command("PASS", "secret"),
        Command("PBSZ", "0"),
        Command("PROT", "P"),
    ]
    assert state.protected_data


def test_ftps_without_auth_tls_is_refused_clearly() -> None:
    state = FtpState(url=URL, secure=True)
    login = state.login("alice", "secret")
    assert login.step(reply(state, r(220))) == Command("AUTH", "TLS")
    state.send("AUTH", "TLS")
    with pytest.raises(ResponseError, match="does not offer explicit FTPS") as info:
        login.step(reply(state, r(500, "AUTH not understood")))
    assert info.value.status == 500 and info.value.url == URL


@pytest.mark.parametrize("failing", ["PBSZ", "PROT"])
def test_refused_data_protection_fails_the_login(failing: str) -> None:
    state = FtpState(url=URL, secure=True)
    answers = [r(220), r(234), r(230)] + ([r(534, "no")] if failing == "PBSZ" else [r(200), r(534, "no")])
    with pytest.raises(ResponseError, match=f"{failing} .* failed: 534 no"):
        drive_login(state.login("alice", "secret"), answers)
    assert not state.protected_data


@pytest.mark.parametrize(
    ("answers", "error", "text"),
    [
        ([r(421, "too many users")], NetworkError, "421 too many users"),
        ([r(530, "go away")], LoginFailed, "connect failed: 530 go away"),
        ([r(220), r(331), r(530, "wrong password")], LoginFailed, "'alice' refused: 530"),
        ([r(220), r(331), r(332, "account?")], LoginFailed, "needs an account"),
        ([r(220), r(421, "bye")], NetworkError, "421 bye"),
    ],
)
def test_login_failures_map_to_loader_errors(answers: list[bytes], error: type[LoaderError], text: str) -> None:
    state = FtpState(url=URL)
    with pytest.raises(error, match=text) as info:
        drive_login(state.login("alice", "secret"), answers)
    assert info.value.url == URL


def test_421_marks_the_connection_broken() -> None:
    state = ready()
    exchange(state, Command("TYPE", "I"), r(421, "timeout"))
    assert state.broken and not state.reusable


# -- TYPE, FEAT, SIZE-free decisions -------------------------------------------------


def test_type_is_sent_only_when_it_changes() -> None:
    state = ready()
    assert state.type_command("i") == Command("TYPE", "I")
    exchange(state, Command("TYPE", "I"), r(200))
    assert state.type_command("I") is None
    assert state.type_command("A") == Command("TYPE", "A")
    exchange(state, Command("TYPE", "A"), r(200))
    assert state.current_type == "A" and state.type_command("a") is None


def test_a_refused_type_is_asked_again() -> None:
    state = ready()
    exchange(state, Command("TYPE", "A"), r(504, "no ASCII"))
    assert state.current_type is None and state.type_command("A") == Command("TYPE", "A")


def test_feat_is_asked_once_and_decides_mlsd() -> None:
    state = ready()
    assert state.feat_command() == Command("FEAT")
    exchange(state, "FEAT", r(211, "Features:", "MLST type*;size*;", "SIZE", "End"))
    assert state.feat_command() is None
    assert state.features == {"MLST": "type*;size*;", "SIZE": ""}
    assert state.listing_command("pub") == Command("MLSD", "pub")


def test_refused_feat_means_no_mlsd() -> None:
    state = ready()
    exchange(state, "FEAT", r(500, "what?"))
    assert state.features == {} and state.feat_command() is None
    assert state.listing_command("") == Command("LIST")


# -- data connections: EPSV, PASV ----------------------------------------------------


def test_epsv_gives_the_port() -> None:
    state = ready()
    assert state.passive_command() == Command("EPSV")
    got = exchange(state, "EPSV", r(229, "Entering Extended Passive Mode (|||6446|)"))
    assert state.passive_reply(got) == Passive(6446)
    assert state.passive_command() == Command("EPSV")


@pytest.mark.parametrize("code", [500, 501, 502, 504, 522])
def test_refused_epsv_falls_back_to_pasv_for_good(code: int) -> None:
    state = ready()
    got = exchange(state, "EPSV", r(code, "no"))
    assert state.passive_reply(got) is None
    assert state.passive_command() == Command("PASV")
    got = exchange(state, "PASV", r(227, "Entering Passive Mode (10,0,0,9,4,1)."))
    # The announced host is only reported: data goes to the control connection's peer.
    assert state.passive_reply(got) == Passive(1025, "10.0.0.9")
    assert state.passive_command() == Command("PASV")


@pytest.mark.parametrize(
    ("verb", "answer", "error"),
    [
        ("EPSV", r(425, "cannot open"), ConnectError),
        ("EPSV", r(421, "closing"), NetworkError),
        ("PASV", r(502, "no passive either"), ResponseError),
    ],
)
def test_other_passive_failures_raise(verb: str, answer: bytes, error: type[LoaderError]) -> None:
    state = ready()
    if verb == "PASV":
        state.passive_reply(exchange(state, "EPSV", r(502)))
    got = exchange(state, verb, answer)
    with pytest.raises(error, match=f"{answer[:3].decode()}"):
        state.passive_reply(got)


# -- transfers -------------------------------------------------------------------------


def retrieve(state: FtpState, command: Command, first: bytes, expected: int | None = None) -> Reply:
    got = exchange(state, command, first)
    state.transfer_started(got, expected)
    return got


def test_retr_150_body_226() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f.bin"), r(150, "opening"), expected=10)
    assert state.busy and state.final_expected and not state.reusable
    state.body_received(4)
    state.body_received(6)
    state.receive_data(r(226, "done"))
    assert state.next_reply() == Reply(226, ("done",))
    final = state.transfer_finished("transfer")
    assert final.code == 226 and state.last_final == final
    assert not state.busy and state.reusable


def test_a_226_without_150_is_a_transfer_that_skipped_its_preliminary_reply() -> None:
    state = ready()
    retrieve(state, Command("LIST"), r(226, "here it is"))
    assert state.busy and not state.final_expected  # the data still has to be read
    state.body_received(100)
    assert state.transfer_finished("transfer").code == 226
    assert state.last_final is not None and state.last_final.code == 226
    assert state.reusable


def test_a_226_before_150_leaves_the_150_unanswerable() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(226, "done"))
    state.receive_data(r(150, "opening"))  # what a confused server sends after
    state.transfer_finished("transfer")
    assert not state.reusable  # a reply nobody asked for waits in the buffer
    with pytest.raises(ProtocolError, match="unexpected reply with no command outstanding: 150"):
        state.send("TYPE", "I")
    assert state.broken


def test_a_reply_with_nothing_outstanding_is_rejected() -> None:
    state = ready()
    state.receive_data(r(200, "surprise"))
    with pytest.raises(ProtocolError, match="no command outstanding: 200 surprise") as info:
        state.next_reply()
    assert info.value.url == URL and state.broken


def test_a_second_preliminary_reply_is_rejected() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(150, "opening"))
    state.receive_data(r(125, "again"))
    with pytest.raises(ProtocolError, match="second preliminary reply to RETR f: 125"):
        state.next_reply()
    assert state.broken


def test_a_preliminary_reply_to_a_command_that_starts_no_transfer_is_rejected() -> None:
    state = ready()
    state.send("CWD", "pub")
    state.receive_data(r(150, "what?"))
    with pytest.raises(ProtocolError, match="preliminary reply to CWD pub: 150"):
        state.next_reply()
    assert state.broken


def test_a_command_cannot_be_sent_while_a_reply_is_outstanding() -> None:
    state = ready()
    state.send("PWD")
    assert not state.reusable  # e.g. cancelled while waiting: the reply would come later
    with pytest.raises(ProtocolError, match="cannot send SIZE f: the reply to PWD is still outstanding"):
        state.send("SIZE", "f")
    retrieve(state := ready(), Command("RETR", "f"), r(150))
    with pytest.raises(ProtocolError, match="reply to RETR f is still outstanding"):
        state.send("NOOP")


def test_nothing_before_the_greeting() -> None:
    state = FtpState(url=URL)
    with pytest.raises(ProtocolError, match="reply to the greeting is still outstanding"):
        state.send("USER", "alice")


def test_cr_lf_in_an_argument_is_refused_and_nothing_is_outstanding() -> None:
    state = ready()
    with pytest.raises(InvalidURL):
        state.send("RETR", "a\r\nDELE b")
    assert state.reusable and state.send("NOOP") == b"NOOP\r\n"


@pytest.mark.parametrize(
    ("code", "error"),
    [(550, NotFound), (553, PermissionDenied), (450, NotFound), (425, ConnectError), (532, LoginFailed)],
)
def test_a_refused_transfer_maps_to_its_error(code: int, error: type[LoaderError]) -> None:
    state = ready()
    got = exchange(state, Command("RETR", "f"), r(code, "no"))
    with pytest.raises(error, match=f"RETR f failed: {code} no|{code} no") as info:
        state.transfer_started(got)
    assert info.value.url == URL
    assert not state.busy and state.reusable  # the exchange is over


def test_permission_words_make_550_a_permission_error() -> None:
    assert isinstance(reply_error(Reply(550, ("Permission denied",)), "RETR f", URL), PermissionDenied)
    assert isinstance(reply_error(Reply(550, ("No such file",)), "RETR f", URL), NotFound)


@pytest.mark.parametrize(("code", "error"), [(426, NetworkError), (451, ResponseError), (550, NotFound)])
def test_a_failing_final_reply_raises_and_ends_the_transfer(code: int, error: type[LoaderError]) -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(150), expected=3)
    state.body_received(3)
    reply(state, r(code, "trouble"))
    with pytest.raises(error, match=f"{code} trouble"):
        state.transfer_finished("transfer")
    # The server said how the transfer ended: the conversation is in step again.
    assert not state.busy and not state.broken and state.reusable
    assert state.last_final is not None and state.last_final.code == code


def test_more_bytes_than_size_is_refused_at_once() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(150), expected=100)
    state.body_received(100)
    with pytest.raises(ProtocolError, match="more than the 100 bytes SIZE announced"):
        state.body_received(1)
    assert state.broken


def test_fewer_bytes_than_size_is_a_truncated_transfer() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(150), expected=10_000)
    state.body_received(4000)
    reply(state, r(226, "Transfer complete"))
    with pytest.raises(NetworkError, match="ended after 4000 of 10000 bytes"):
        state.transfer_finished("transfer")
    assert state.broken


def test_a_transfer_aborted_mid_way_breaks_the_connection() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(150), expected=10)
    state.body_received(5)
    state.abandon()  # the reader stopped: the server is still sending
    assert state.broken and not state.reusable


def test_an_upload_ends_with_its_final_reply() -> None:
    state = ready()
    retrieve(state, Command("STOR", "up.bin"), r(150, "ok, send"))
    reply(state, r(226, "stored"))
    assert state.transfer_finished("STOR up.bin").code == 226
    state2 = ready()
    retrieve(state2, Command("APPE", "up.bin"), r(150))
    reply(state2, r(552, "quota exceeded"))
    with pytest.raises(ResponseError, match="APPE up.bin failed: 552 quota exceeded"):
        state2.transfer_finished("APPE up.bin")


def test_the_final_reply_must_be_read_before_the_transfer_ends() -> None:
    state = ready()
    retrieve(state, Command("RETR", "f"), r(150))
    with pytest.raises(ProtocolError, match="final reply was not read"):
        state.transfer_finished("transfer")
    with pytest.raises(ProtocolError, match="no transfer was started"):
        ready().transfer_finished("transfer")


# -- listings ------------------------------------------------------------------------


def test_mlsd_refused_falls_back_to_list_then_nlst() -> None:
    state = ready()
    exchange(state, "FEAT", r(211, "Features:", "MLST type*;", "End"))
    assert state.listing_command("pub") == Command("MLSD", "pub")
    got = exchange(state, Command("MLSD", "pub"), r(500, "MLSD not understood"))
    with pytest.raises(ResponseError):
        state.transfer_started(got)
    assert state.listing_command("pub") == Command("LIST", "pub")
    got = exchange(state, Command("LIST", "pub"), r(502, "no LIST"))
    with pytest.raises(ResponseError):
        state.transfer_started(got)
    assert state.listing_command("pub") == Command("NLST", "pub")
    got = exchange(state, Command("NLST", "pub"), r(502, "nothing"))
    with pytest.raises(ResponseError):
        state.transfer_started(got)
    assert state.listing_command("pub") == Command("NLST", "pub")  # nothing left to try
    assert state.reusable


def test_a_refusal_in_the_final_reply_falls_back_too() -> None:
    state = ready()
    exchange(state, "FEAT", r(211, "Features:", "MLST type*;", "End"))
    retrieve(state, Command("MLSD"), r(150))
    reply(state, r(501, "no"))
    with pytest.raises(ResponseError):
        state.transfer_finished("transfer")
    assert state.listing_command("") == Command("LIST")


def test_a_listing_that_is_not_found_does_not_fall_back() -> None:
    state = ready()
    exchange(state, "FEAT", r(211, "Features:", "MLST type*;", "End"))
    got = exchange(state, Command("MLSD", "nope"), r(550, "no such directory"))
    with pytest.raises(NotFound):
        state.transfer_started(got)
    assert state.listing_command("nope") == Command("MLSD", "nope")


# -- REST / resume ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "size", "binary", "decision"),
    [
        (0, 100, True, None),
        (40, 100, True, Command("REST", "40")),
        (40, None, True, Command("REST", "40")),  # no SIZE: try, the server decides
        (100, 100, True, Step.WHOLE),
        (150, 100, True, None),  # the local copy is larger: fetch it whole again
        (40, None, False, None),  # ASCII mode: offsets do not match local bytes
    ],
)
def test_resume_decision(offset: int, size: int | None, binary: bool, decision: object) -> None:
    assert ready().resume(offset, size, binary=binary) == decision


def test_rest_honoured_refused_or_failing() -> None:
    state = ready()
    assert state.resume_reply(exchange(state, Command("REST", "40"), r(350, "restarting")), 40) == 40
    assert state.resume_reply(exchange(state, Command("REST", "40"), r(502, "no REST")), 40) == 0
    with pytest.raises(ResponseError, match="REST 40 failed: 554"):
        state.resume_reply(exchange(state, Command("REST", "40"), r(554, "bad offset")), 40)


# -- bytes in hostile splits -----------------------------------------------------------

SESSION = [
    (None, r(220, "Welcome", "Rules: none", "Ready")),
    (Command("USER", "alice"), r(331, "Password")),
    (Command("PASS", "secret"), r(230, "Logged in")),
    (Command("TYPE", "I"), r(200, "Binary")),
    (Command("FEAT"), r(211, "Features:", "MLST type*;size*;", "SIZE", "End")),
    (Command("EPSV"), r(502, "no EPSV")),
    (Command("PASV"), r(227, "Entering Passive Mode (127,0,0,1,4,1)")),
    (Command("RETR", "f.bin"), r(150, "Opening") + r(226, "Done")),
]


def splits(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_a_whole_session_in_hostile_splits(size: int) -> None:
    state = FtpState(url=URL)
    login = state.login("alice", "secret")
    seen: list[tuple[str, int]] = []
    step: Command | Step | None = Step.READ
    for command, server in SESSION:
        if command is not None:
            state.send(command.verb, command.arg)
        got = None
        for piece in splits(server, size):
            state.receive_data(piece)
            while (next_reply := state.next_reply()) is not None:
                assert got is None or command is not None and command.verb == "RETR"
                got = got or next_reply
                seen.append((command.shown if command else "greeting", next_reply.code))
        assert got is not None
        if command is None or command.verb in ("USER", "PASS"):
            step = login.step(got)
        elif command.verb in ("EPSV", "PASV"):
            assert state.passive_reply(got) == (None if command.verb == "EPSV" else Passive(1025, "127.0.0.1"))
    assert step is None  # logged in
    assert seen == [
        ("greeting", 220), ("USER alice", 331), ("PASS ****", 230), ("TYPE I", 200),
        ("FEAT", 211), ("EPSV", 502), ("PASV", 227), ("RETR f.bin", 150), ("RETR f.bin", 226),
    ]
    assert state.transfer_finished("transfer").code == 226
    assert state.current_type == "I" and not state.epsv and state.mlsd and state.reusable


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_garbage_in_any_split_breaks_the_connection(size: int) -> None:
    state = ready()
    state.send("TYPE", "I")
    with pytest.raises(ProtocolError, match="not an FTP reply") as info:
        for piece in splits(b"200 ok\r\nHTTP/1.1 400 Bad\r\n", size):
            state.receive_data(piece)
    assert info.value.url == URL and state.broken


def test_the_end_of_the_control_connection_breaks_it() -> None:
    state = ready()
    state.send("NOOP")
    state.receive_data(b"200 partial")
    with pytest.raises(NetworkError, match="closed the control connection"):
        state.receive_data(b"")
    assert state.broken
