"""The config file: ``~/.config/loader/config.toml``, ``--config FILE``, ``--no-config``.

Each setting is checked where it shows: in the request heads the real test server received.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from loader.cli import EXIT_OK, EXIT_USAGE, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def home_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the default config file goes (``$XDG_CONFIG_HOME/loader/config.toml``)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    path = tmp_path / "xdg" / "loader" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def sent_headers(http_server: Any, tmp_path: Path, *options: str) -> tuple[int, dict[str, str], str]:
    target = tmp_path / "headers.json"
    target.unlink(missing_ok=True)
    code, _, err = run("get", http_server.url("/headers"), "-o", str(target), "-q", *options)
    return code, (json.loads(target.read_text()) if target.exists() else {}), err


def test_default_file_sets_options_and_the_command_line_wins(
    http_server: Any, tmp_path: Path, home_config: Path
) -> None:
    home_config.write_text('user-agent = "from-config/1"\nreferer = "http://config.example/"\n'
                           'header = ["X-From-Config: yes"]\n')
    code, seen, err = sent_headers(http_server, tmp_path)
    assert code == EXIT_OK, err
    assert seen["user-agent"] == "from-config/1"
    assert seen["referer"] == "http://config.example/"
    assert seen["x-from-config"] == "yes"
    code, seen, err = sent_headers(http_server, tmp_path, "-A", "from-argv/2")
    assert code == EXIT_OK, err
    assert seen["user-agent"] == "from-argv/2" and seen["referer"] == "http://config.example/"


def test_no_config_and_a_named_file(http_server: Any, tmp_path: Path, home_config: Path) -> None:
    home_config.write_text('user-agent = "from-home"\n')
    code, seen, _ = sent_headers(http_server, tmp_path, "--no-config")
    assert code == EXIT_OK and seen["user-agent"] != "from-home"
    other = tmp_path / "other.toml"
    other.write_text('user-agent = "from-other"\n')
    code, seen, _ = sent_headers(http_server, tmp_path, "--config", str(other))
    assert code == EXIT_OK and seen["user-agent"] == "from-other"
    code, seen, _ = sent_headers(http_server, tmp_path, f"--config={other}")
    assert code == EXIT_OK and seen["user-agent"] == "from-other"


def test_a_subcommand_table_applies_to_that_subcommand(
    http_server: Any, tmp_path: Path, home_config: Path
) -> None:
    home_config.write_text('user-agent = "top"\n\n[get]\nuser-agent = "get-table"\n\n'
                           '[fetch]\nkinds = "image"\nsame-host = true\n')
    code, seen, _ = sent_headers(http_server, tmp_path)
    assert code == EXIT_OK and seen["user-agent"] == "get-table"
    code, out, err = run("fetch", http_server.url("/files/http/hosts.html"), "--list")
    assert code == EXIT_OK, err
    assert "logo.png" in out and "pixel.gif" not in out  # same-host = true from [fetch]


def test_unknown_key_names_the_file_and_the_key(tmp_path: Path, home_config: Path) -> None:
    home_config.write_text("jobz = 4\n")
    code, _, err = run("get", "http://127.0.0.1:9/x")
    assert code == EXIT_USAGE
    assert str(home_config) in err and "'jobz'" in err
    home_config.write_text("[get]\nkinds = \"image\"\n")  # a fetch option in get's table
    code, _, err = run("get", "http://127.0.0.1:9/x")
    assert code == EXIT_USAGE and "'kinds' in [get]" in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("jobs = 0\n", ["jobs", "at least 1"]),
        ("jobs = true\n", ["jobs", "a number or a string"]),
        ("insecure = \"yes\"\n", ["insecure", "true or false"]),
        ("exists = \"sometimes\"\n", ["exists", "choose from"]),
        ("jobs = \n", ["not valid TOML"]),
        ("[nosuch]\njobs = 1\n", ["unknown section [nosuch]"]),
    ],
)
def test_bad_values_are_usage_errors(home_config: Path, text: str, words: list[str]) -> None:
    home_config.write_text(text)
    code, _, err = run("get", "http://127.0.0.1:9/x")
    assert code == EXIT_USAGE, err
    assert str(home_config) in err
    for word in words:
        assert word in err


def test_a_named_file_must_exist(tmp_path: Path, home_config: Path) -> None:
    code, _, err = run("get", "http://127.0.0.1:9/x", "--config", str(tmp_path / "missing.toml"))
    assert code == EXIT_USAGE and "missing.toml" in err and "no such file" in err


def test_a_flag_and_a_repeatable_option(http_server: Any, tmp_path: Path, home_config: Path) -> None:
    home_config.write_text('header = ["A-One: 1", "A-Two: 2"]\nquiet = true\n')
    code, seen, err = sent_headers(http_server, tmp_path, "-H", "A-Three: 3")
    assert code == EXIT_OK and err == ""  # quiet from the file
    assert (seen["a-one"], seen["a-two"], seen["a-three"]) == ("1", "2", "3")
