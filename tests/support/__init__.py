"""Helpers shared by the tests (real servers live in the sibling modules)."""

import shutil
import sys
from pathlib import Path


def loader_command() -> str:
    """The installed ``loader`` console script: beside this Python first, else on PATH."""
    beside = Path(sys.executable).with_name("loader")
    if beside.exists():
        return str(beside)
    found = shutil.which("loader")
    assert found, "the loader console script is not installed"
    return found
