"""The config file: default values for the command's long options, in TOML.

``~/.config/loader/config.toml`` (``$XDG_CONFIG_HOME/loader/config.toml``) is read when it
exists; ``--config FILE`` names another (which must exist), ``--no-config`` reads none.
Keys are long option names without the dashes; a table named after a subcommand holds
keys for that subcommand only::

    jobs = 8
    user-agent = "loader (me@example.org)"
    header = ["Accept-Language: en"]

    [fetch]
    kinds = "image,sound,style"
    convert-links = true

A value is what the option would take on the command line (a number, a string, ``true``
for a flag, a list for a repeatable option), checked the same way. The command line wins:
the file only sets defaults. A top-level key that no subcommand knows, or a table key
its subcommand does not, is an error naming the file and the key.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["apply_config", "config_path", "default_config_path"]

#: Options about the config file itself: meaningless inside one.
_NOT_IN_FILE = frozenset({"config", "no-config", "help", "version"})


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/loader/config.toml``, else ``~/.config/loader/config.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "loader" / "config.toml"


def config_path(argv: Sequence[str]) -> tuple[Path | None, bool]:
    """The config file ``argv`` asks for and whether it was named (then it must exist)."""
    named: str | None = None
    off = False
    words = list(argv)
    for index, word in enumerate(words):
        if word == "--":
            break
        if word == "--no-config":
            off = True
        elif word == "--config" and index + 1 < len(words):
            named = words[index + 1]
        elif word.startswith("--config="):
            named = word.split("=", 1)[1]
    if off:
        return None, False
    if named is not None:
        return Path(named), True
    return default_config_path(), False


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Path | None:
    """Set the defaults of ``argv``'s subcommand from the config file; the file used, or ``None``.

    Raises ``ValueError`` naming the file (and the key) for a file that cannot be used.
    """
    from ._completion import collect_actions, subcommands

    path, named = config_path(argv)
    if path is None or not (named or path.exists()):  # most runs: no file, no work
        return None
    commands = subcommands(parser)
    name = next((word for word in argv if not word.startswith("-")), None)
    if name not in commands:
        return None
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if named:
            raise ValueError(f"config file {path}: no such file") from None
        return None
    except OSError as exc:
        raise ValueError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path}: not valid TOML: {exc}") from None

    def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
        return {
            option[2:]: action
            for action in collect_actions(parser)
            for option in action.option_strings
            if option.startswith("--") and option[2:] not in _NOT_IN_FILE
        }

    known = {command: options(sub) for command, sub in commands.items()}
    mine = known[name]
    defaults: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            continue
        option = key.replace("_", "-")
        if not any(option in found for found in known.values()):
            raise ValueError(f"config file {path}: unknown key {key!r} (not a long option of any subcommand)")
        if option in mine:
            _store(defaults, mine[option], value, path, key)
    # A subcommand's own table wins over the top level.
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        if key not in commands:
            raise ValueError(f"config file {path}: unknown section [{key}] (not a subcommand)")
        for sub_key, sub_value in value.items():
            option = sub_key.replace("_", "-")
            if option not in known[key]:
                raise ValueError(f"config file {path}: unknown key {sub_key!r} in [{key}]")
            if key == name:
                _store(defaults, mine[option], sub_value, path, f"{key}.{sub_key}")
    commands[name].set_defaults(**defaults)
    return path


def _store(defaults: dict[str, Any], action: argparse.Action, value: Any, path: Path, key: str) -> None:
    def bad(why: str) -> ValueError:
        return ValueError(f"config file {path}: {key} = {value!r}: {why}")

    if action.nargs == 0:
        if not isinstance(value, bool):
            raise bad("expected true or false")
        if value:
            defaults[action.dest] = action.const
        return
    if isinstance(action.default, list):  # a repeatable option
        items = value if isinstance(value, list) else [value]
        defaults[action.dest] = [_convert(action, item, bad) for item in items]
        return
    defaults[action.dest] = _convert(action, value, bad)


def _convert(action: argparse.Action, value: Any, bad: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, list | dict):
        raise bad("expected a number or a string")
    text = str(value)
    result: Any = text
    if action.type is not None and callable(action.type):
        try:
            result = action.type(text)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise bad(str(exc) or "invalid value") from None
    if action.choices is not None and result not in action.choices:
        raise bad(f"choose from {', '.join(map(str, action.choices))}")
    return result
