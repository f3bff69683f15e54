"""``loader completion bash|zsh|fish``: scripts generated from the parser itself."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from loader._completion import collect_actions, command_tree, script
from loader._plugins import make_plugin_manager
from loader.cli import EXIT_OK, EXIT_USAGE, build_parser, main


def completion(shell: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = main(["completion", shell], stdout=out, stderr=err)
    assert code == EXIT_OK, err.getvalue()
    return out.getvalue()


def test_tree_follows_the_parser() -> None:
    parser = build_parser(make_plugin_manager())
    tree = command_tree(parser)
    assert {"fetch", "get", "plugins", "demo", "completion", "ftp", "gopher"} <= set(tree.subcommands)
    fetch = tree.subcommands["fetch"]
    assert {"--kinds", "--exists", "-i", "--input-file", "--proxy", "--json", "--config"} <= set(fetch.options)
    assert fetch.choices["--exists"] == ["overwrite", "skip", "unique"]
    assert "-N" in tree.subcommands["get"].options and "-N" not in fetch.options
    # Every option string argparse knows for each subcommand is offered.
    for name, sub in tree.subcommands.items():
        sub_parser = next(a.choices for a in collect_actions(parser) if isinstance(a.choices, dict))[name]
        assert {o for a in collect_actions(sub_parser) for o in a.option_strings} == set(sub.options)


def test_an_option_added_later_appears_without_editing_the_script() -> None:
    parser = build_parser()
    assert "--brand-new" not in script(parser, "bash")
    parser.add_argument("--brand-new", action="store_true")
    assert "--brand-new" in script(parser, "bash")


def test_bash_script_is_valid_and_completes(tmp_path: Path) -> None:
    text = completion("bash")
    for word in ("--proxy", "--cacert", "--timestamping", "--input-file", "fetch", "gopher"):
        assert word in text
    path = tmp_path / "loader.bash"
    path.write_text(text)
    subprocess.run(["bash", "-n", str(path)], check=True)
    probe = (
        f"source {path}\n"
        "COMP_WORDS=(loader fetch --prox); COMP_CWORD=2; _loader_complete; echo \"1:${COMPREPLY[*]}\"\n"
        "COMP_WORDS=(loader get --exists ''); COMP_CWORD=3; _loader_complete; echo \"2:${COMPREPLY[*]}\"\n"
        "COMP_WORDS=(loader comp); COMP_CWORD=1; _loader_complete; echo \"3:${COMPREPLY[*]}\"\n"
    )
    lines = subprocess.run(["bash", "-c", probe], check=True, capture_output=True, text=True).stdout.splitlines()
    assert lines == ["1:--proxy", "2:overwrite skip unique", "3:completion"]


def test_zsh_script_loads_the_bash_one_through_bashcompinit() -> None:
    text = completion("zsh")
    assert "autoload -U +X bashcompinit && bashcompinit" in text and "--proxy" in text
    assert text.endswith(completion("bash").split("\n", 1)[1])
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", text], check=True)


def test_fish_script_lists_options_per_subcommand() -> None:
    text = completion("fish")
    assert "complete -c loader -n '__fish_seen_subcommand_from fetch' -l proxy -x" in text
    assert "complete -c loader -n '__fish_seen_subcommand_from get' -l exists -x -a 'overwrite skip unique'" in text
    assert "complete -c loader -n '__fish_seen_subcommand_from fetch' -s i" in text
    if shutil.which("fish"):
        subprocess.run(["fish", "--no-execute", "-c", text], check=True)


def test_unknown_shell_is_a_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["completion", "tcsh"], stdout=out, stderr=err) == EXIT_USAGE
    assert "bash" in err.getvalue()
    with pytest.raises(ValueError, match="tcsh"):
        script(build_parser(), "tcsh")


def test_installed_command_prints_a_script(tmp_path: Path) -> None:
    from support import loader_command

    done = subprocess.run([loader_command(), "completion", "bash"], capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    assert "complete -o default -F _loader_complete loader" in done.stdout
