"""An FTP session's decisions, without I/O: what to send next and what a reply means.

:class:`FtpState` is to a control connection what h11's ``Connection`` is to
an HTTP/1.1 one: it never touches a socket, anyio or a clock.  The I/O layer
(:class:`~loader_ftp._connection.ControlConnection`) asks it for the bytes of
each command (:meth:`FtpState.send`), hands it what the server sent
(:meth:`FtpState.receive_data`), takes the parsed replies back
(:meth:`FtpState.next_reply`) and asks it what to do next:

* the login conversation (:class:`Login`): greeting, ``AUTH TLS`` for
  ``ftps``, ``USER``/``PASS``, then ``PBSZ 0`` and ``PROT P``;
* ``EPSV``, or ``PASV`` once the server refused EPSV (:meth:`FtpState.passive_command`);
* ``MLSD`` when FEAT offers MLST, ``LIST`` when MLSD is refused, ``NLST``
  when LIST is too (:meth:`FtpState.listing_command`);
* ``TYPE A``/``TYPE I`` only when it changes, ``FEAT`` once;
* ``REST`` when resuming, and how much of the body to expect;
* the reply sequence of a transfer (one preliminary 1xx, then the final
  reply once the data connection has ended, or a single 2xx from servers that
  skip the 1xx), the byte count against ``SIZE``, and whether the connection
  can go back to the pool.

Replies are checked against the command that is outstanding: a reply when no
command was sent, a second preliminary reply, or a preliminary reply to a
command that starts no transfer is a :class:`~loader.ProtocolError`, and the
connection is marked broken (what it would say next could not be matched to
a command any more).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from loader import (
    ConnectError,
    LoaderError,
    LoginFailed,
    NetworkError,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResponseError,
)

from ._commands import build_command, parse_epsv, parse_features, parse_pasv, show_command
from ._reply import Reply, ReplyParser

__all__ = [
    "LISTING_VERBS",
    "NOT_IMPLEMENTED",
    "TRANSFER_VERBS",
    "Command",
    "FtpState",
    "Login",
    "Passive",
    "Step",
    "reply_error",
]

#: Replies that mean "this server does not do that command": try another way.
NOT_IMPLEMENTED = frozenset({500, 501, 502, 504})
#: Commands answered by a preliminary reply, a data connection, then a final reply.
TRANSFER_VERBS = frozenset({"RETR", "STOR", "STOU", "APPE", "LIST", "NLST", "MLSD"})
#: The listing commands, best first.
LISTING_VERBS = ("MLSD", "LIST", "NLST")

_PERMISSION_WORDS = (
    "permission",
    "denied",
    "privilege",
    "not allowed",
    "forbidden",
    "not authorized",
    "read-only",
    "access",
)


def reply_error(reply: Reply, command: str, url: str | None) -> LoaderError:
    """The :mod:`loader` error for a failure reply to ``command`` (as shown by ``show_command``)."""
    code = reply.code
    message = f"{command} failed: {reply}"
    text = reply.text.lower()
    if code == 421:
        return NetworkError(f"server closing the connection: {reply}", url=url)
    if code == 425:
        return ConnectError(f"server could not open the data connection: {reply}", url=url)
    if code == 426:
        return NetworkError(f"transfer aborted by the server: {reply}", url=url)
    if code in (530, 532):
        return LoginFailed(message, url=url, status=code)
    if code in (550, 450, 553):
        if code == 553 or any(word in text for word in _PERMISSION_WORDS):
            return PermissionDenied(message, url=url, status=code)
        return NotFound(message, url=url, status=code)
    return ResponseError(message, url=url, status=code)


@dataclass(frozen=True, slots=True)
class Command:
    """One control command: a verb and its optional argument."""

    verb: str
    arg: str | None = None

    @property
    def shown(self) -> str:
        """The command as events, logs and errors show it (never a password)."""
        return show_command(self.verb, self.arg)


class Step(enum.Enum):
    """What the I/O layer does next when it is not sending a command."""

    #: Read one more reply (a ``120`` greeting: the real one follows).
    READ = "read"
    #: Start TLS on the control connection, then ask again with no reply.
    START_TLS = "start-tls"
    #: The local copy already holds the whole file: nothing to transfer.
    WHOLE = "whole"


@dataclass(frozen=True, slots=True)
class Passive:
    """Where a passive data connection goes: ``port`` on the control connection's peer.

    ``announced`` is the host a PASV reply named, kept only to report that it
    was ignored (``None`` after EPSV, which names none).
    """

    port: int
    announced: str | None = None


class _Await(enum.Enum):
    GREETING = "greeting"
    REPLY = "reply"  # the one reply to an ordinary command
    PRELIMINARY = "preliminary"  # the first reply to a transfer command
    FINAL = "final"  # the reply that ends a transfer, after its 1xx


class FtpState:
    """The state of one control connection's session; see the module docstring.

    ``secure`` is true for ``ftps`` (AUTH TLS, then PROT P for data);
    ``url`` (password-free) is named in errors.
    """

    def __init__(self, *, secure: bool = False, url: str | None = None) -> None:
        self.secure = secure
        self.url = url
        #: Unusable: a failure left the conversation where no reply can be trusted.
        self.broken = False
        #: A transfer is under way (its data connection has not ended yet).
        self.busy = False
        #: EPSV is worth trying (until the server refuses it once).
        self.epsv = True
        #: MLSD is worth trying (FEAT offers MLST and the server did not refuse it).
        self.mlsd = True
        #: LIST is worth trying (until the server refuses it once).
        self.list_ok = True
        #: The server's features once FEAT was asked.
        self.features: dict[str, str] | None = None
        #: The representation type in force (``"A"`` or ``"I"``), once set.
        self.current_type: str | None = None
        #: The login directory, once asked.
        self.home: str | None = None
        #: ``PROT P`` is in force: data connections are TLS too.
        self.protected_data = False
        #: The reply that ended the last transfer (226 …).
        self.last_final: Reply | None = None
        #: The command the latest reply answered.
        self.last_command: Command | None = None
        self._parser = ReplyParser()
        self._outstanding: Command | None = None
        self._await: _Await | None = _Await.GREETING
        # The current transfer: its first reply, its final reply, bytes expected and seen.
        self._first: Reply | None = None
        self._final: Reply | None = None
        self._expected: int | None = None
        self._received = 0

    # -- bytes and replies ---------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """True when the connection can serve another request (back to the pool)."""
        return not (
            self.broken
            or self.busy
            or self._await is not None
            or self._parser.pending
            or self._parser.has_replies
        )

    def send(self, verb: str, arg: str | None = None) -> bytes:
        """The wire bytes of ``verb arg``, which becomes the outstanding command.

        Refused (before anything is sent) when a reply is still outstanding, when
        the server sent a reply nobody asked for, or when ``arg`` holds CR, LF or NUL.
        """
        line = build_command(verb, arg, url=self.url)
        command = Command(verb, arg)
        if self._await is not None:
            waiting = self._outstanding.shown if self._outstanding else "the greeting"
            raise ProtocolError(
                f"cannot send {command.shown}: the reply to {waiting} is still outstanding",
                url=self.url,
            )
        if self._parser.has_replies:
            self.broken = True
            stray = self._parser.next_reply()
            raise ProtocolError(f"unexpected reply with no command outstanding: {stray}", url=self.url)
        self._outstanding = command
        self._await = _Await.PRELIMINARY if verb in TRANSFER_VERBS else _Await.REPLY
        if verb in TRANSFER_VERBS:
            self._first = self._final = None
            self._expected = None
            self._received = 0
        return line

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the control connection; ``b""`` is its end."""
        if not data:
            self.broken = True
            raise NetworkError("the server closed the control connection", url=self.url)
        try:
            self._parser.feed(data)
        except ProtocolError as exc:
            self.broken = True
            raise ProtocolError(exc.message, url=self.url) from exc

    def connection_lost(self) -> None:
        """The control connection failed or timed out: nothing more can be said on it."""
        self.broken = True

    def next_reply(self) -> Reply | None:
        """The next reply, checked against the outstanding command; ``None``: more bytes needed."""
        reply = self._parser.next_reply()
        if reply is None:
            return None
        waiting, command = self._await, self._outstanding
        if waiting is None:
            self.broken = True
            raise ProtocolError(f"unexpected reply with no command outstanding: {reply}", url=self.url)
        if reply.code == 421:
            self.broken = True  # whatever it answers, the server is going away
        if waiting is _Await.GREETING:
            if reply.code != 120:  # "ready in nnn minutes": the real greeting follows
                self._await = None
            return reply
        assert command is not None
        self.last_command = command
        if reply.kind == 1 and waiting is not _Await.PRELIMINARY:
            self.broken = True
            what = "a second preliminary reply" if waiting is _Await.FINAL else "a preliminary reply"
            raise ProtocolError(f"{what} to {command.shown}: {reply}", url=self.url)
        if waiting is _Await.PRELIMINARY:
            self._first = reply
            if reply.kind == 1:
                self._await = _Await.FINAL
                self.busy = True
                return reply
            self.busy = reply.kind == 2  # a 2xx alone: the data still has to be read
        elif waiting is _Await.FINAL:
            self._final = reply
            self.busy = False
        self._await = None
        self._outstanding = None
        self._learn(command, reply)
        return reply

    def _learn(self, command: Command, reply: Reply) -> None:
        """What a completed command's reply says about the session."""
        verb = command.verb
        if verb == "TYPE" and reply.ok and command.arg is not None:
            self.current_type = command.arg
        elif verb == "FEAT":
            self.features = parse_features(reply)
            if "MLST" not in self.features:
                self.mlsd = False
        elif verb == "PROT" and reply.ok and command.arg == "P":
            self.protected_data = True
        elif verb == "MLSD" and reply.code in NOT_IMPLEMENTED:
            self.mlsd = False
        elif verb == "LIST" and reply.code in NOT_IMPLEMENTED:
            self.list_ok = False

    # -- session decisions ---------------------------------------------------------

    def login(self, user: str, password: str) -> Login:
        """The login conversation for ``user``; drive it with :meth:`Login.step`."""
        return Login(self, user, password)

    def type_command(self, kind: str) -> Command | None:
        """``TYPE A``/``TYPE I`` when ``kind`` is not already in force, else ``None``."""
        kind = kind.upper()
        return None if self.current_type == kind else Command("TYPE", kind)

    def feat_command(self) -> Command | None:
        """``FEAT`` the first time, ``None`` once the features are known."""
        return Command("FEAT") if self.features is None else None

    def passive_command(self) -> Command:
        """``EPSV``, or ``PASV`` once the server refused EPSV."""
        return Command("EPSV" if self.epsv else "PASV")

    def passive_reply(self, reply: Reply) -> Passive | None:
        """Where the data connection goes, from the reply to :meth:`passive_command`.

        ``None`` when EPSV was refused: send :meth:`passive_command` (now PASV)
        again.  Any other failure raises the mapped error.
        """
        verb = self.last_command.verb if self.last_command else None
        if verb == "EPSV":
            if reply.code == 229:
                return Passive(parse_epsv(reply))
            if reply.code in NOT_IMPLEMENTED or reply.code == 522:
                self.epsv = False
                return None
            raise reply_error(reply, "EPSV", self.url)
        if verb == "PASV":
            if reply.code != 227:
                raise reply_error(reply, "PASV", self.url)
            host, port = parse_pasv(reply)
            return Passive(port, host)
        raise ValueError(f"not a reply to EPSV or PASV: {reply} (to {verb})")

    def listing_command(self, path: str) -> Command:
        """``MLSD``, ``LIST`` or ``NLST`` of ``path`` (``""``: the current directory).

        A refusal (500, 501, 502, 504) of MLSD or LIST, first or final reply,
        moves to the next one: when a listing fails, ask again and compare.
        """
        verb = "MLSD" if self.mlsd else "LIST" if self.list_ok else "NLST"
        return Command(verb, path or None)

    def resume(self, offset: int, size: int | None, *, binary: bool) -> Command | Step | None:
        """How to start a download at byte ``offset`` of a file of ``size`` bytes.

        ``REST offset`` when resuming makes sense, :attr:`Step.WHOLE` when the
        local copy is already whole, ``None`` to download from the start (ASCII
        mode, nothing local, or a local copy larger than the file).
        """
        if offset <= 0 or not binary or (size is not None and offset > size):
            return None
        if offset == size:
            return Step.WHOLE
        return Command("REST", str(offset))

    def resume_reply(self, reply: Reply, offset: int) -> int:
        """The offset the server honoured after ``REST offset``: ``offset``, or 0 when it cannot."""
        if reply.code == 350:
            return offset
        if reply.code in NOT_IMPLEMENTED:
            return 0
        raise reply_error(reply, f"REST {offset}", self.url)

    # -- transfers -----------------------------------------------------------------

    def transfer_started(self, reply: Reply, expected: int | None = None) -> None:
        """Check the first reply to a transfer command; ``expected``: body bytes ``SIZE`` announced.

        Raises the mapped error when the server refused the transfer.
        """
        if reply.kind not in (1, 2):
            command = self.last_command.shown if self.last_command else "transfer"
            raise reply_error(reply, command, self.url)
        self._expected = expected

    def body_received(self, size: int) -> None:
        """Count ``size`` body bytes; more than ``SIZE`` announced is a protocol error."""
        self._received += size
        if self._expected is not None and self._received > self._expected:
            # SIZE is trusted both ways: a body that grows past it is not the file
            # that was announced (or the server is feeding us without end).
            self.broken = True
            raise ProtocolError(
                f"the server sent more than the {self._expected} bytes SIZE announced",
                url=self.url,
            )

    @property
    def final_expected(self) -> bool:
        """True when the transfer's final reply is still to be read (after a 1xx)."""
        return self._await is _Await.FINAL

    def transfer_finished(self, what: str) -> Reply:
        """End the transfer once its data connection ended (and its final reply was read).

        Returns the reply that ended it; raises the mapped error for a failure
        reply (``what`` names the command), and a :class:`~loader.NetworkError`
        when fewer bytes came than ``SIZE`` announced (the connection is then
        not reused).
        """
        if self._await is _Await.FINAL:
            raise ProtocolError(f"{what}: the final reply was not read yet", url=self.url)
        final = self._final or self._first
        if final is None:
            raise ProtocolError(f"{what}: no transfer was started", url=self.url)
        self.busy = False
        self.last_final = final
        if not final.ok:
            raise reply_error(final, what, self.url)
        if self._expected is not None and self._received < self._expected:
            self.broken = True
            raise NetworkError(
                f"transfer ended after {self._received} of {self._expected} bytes", url=self.url
            )
        return final

    def abandon(self) -> None:
        """The transfer stopped before its end: the server is still in it, so the
        connection cannot be used again."""
        if self.busy or self._await is not None:
            self.broken = True


class Login:
    """The login conversation, one reply at a time: :meth:`step` says what comes next."""

    def __init__(self, state: FtpState, user: str, password: str) -> None:
        self.state = state
        self.user = user
        self._password = password
        self._phase = "greeting"

    def step(self, reply: Reply | None) -> Command | Step | None:
        """Take the reply to the previous step (``None`` after :attr:`Step.START_TLS`);
        return the next command, :attr:`Step.READ`, :attr:`Step.START_TLS`, or ``None``
        once logged in.  A refusal raises the mapped :mod:`loader` error."""
        state, phase = self.state, self._phase
        url = state.url
        if phase == "tls":
            self._phase = "user"
            return Command("USER", self.user)
        if reply is None:
            raise ValueError(f"login step {phase!r} needs a reply")
        if phase == "greeting":
            if reply.code == 120:
                return Step.READ
            if reply.code != 220:
                raise reply_error(reply, "connect", url)
            if state.secure:
                self._phase = "auth"
                return Command("AUTH", "TLS")
            self._phase = "user"
            return Command("USER", self.user)
        if phase == "auth":
            if reply.code != 234:
                raise ResponseError(
                    f"the server does not offer explicit FTPS (AUTH TLS): {reply}",
                    url=url,
                    status=reply.code,
                )
            self._phase = "tls"
            return Step.START_TLS
        if phase == "user" and reply.code == 331:
            self._phase = "pass"
            return Command("PASS", self._password)
        if phase in ("user", "pass"):
            self._logged_in(reply)
            if state.secure:
                self._phase = "pbsz"
                return Command("PBSZ", "0")
            self._phase = "done"
            return None
        if phase in ("pbsz", "prot"):
            if not reply.ok:
                raise reply_error(reply, "PBSZ 0" if phase == "pbsz" else "PROT P", url)
            if phase == "pbsz":
                self._phase = "prot"
                return Command("PROT", "P")
            self._phase = "done"
            return None
        raise ValueError(f"the login is over (step {phase!r})")

    def _logged_in(self, reply: Reply) -> None:
        url = self.state.url
        if reply.code == 332:
            raise LoginFailed(
                f"login as {self.user!r} needs an account (ACCT): {reply}", url=url, status=332
            )
        if reply.kind != 2:
            if reply.code == 421:
                raise reply_error(reply, "login", url)
            raise LoginFailed(f"login as {self.user!r} refused: {reply}", url=url, status=reply.code)
