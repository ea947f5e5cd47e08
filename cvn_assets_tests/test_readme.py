"""The README's commands, copied verbatim from its code blocks, run as a new user would run them.

Each ``sh`` block of README.md is run in a fresh shell (`bash -e`, an empty environment but PATH
and HOME) from a fresh folder holding only the project's ``.venv``: the `cvn` lines really run —
the launch of a small campaign included — against the embedded defaults, and each `make` line must
name a real target (dry run: `make test` would run this very test). When the README changes to a
command that breaks, this test fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvn_assets.cli.main import get_cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV = Path(sys.executable).parent.parent


def shell_blocks(text: str) -> list[list[str]]:
    """The command lines of each ```sh block (comments and blank lines dropped)."""
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S):
        lines = [re.sub(r"\s+#.*$", "", line).strip() for line in body.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


def test_the_readme_has_runnable_blocks():
    commands = [line for block in shell_blocks(README) for line in block]
    assert any(line.startswith("make demo") for line in commands)
    assert any("cvn campaign launch" in line for line in commands)


def test_every_make_line_names_a_real_target():
    for line in (line for block in shell_blocks(README) for line in block if line.startswith("make ")):
        target = line.split()[1]
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, f"README: `{line}`: {dry.stderr}"


@pytest.mark.slow
def test_the_readme_cvn_commands_run_in_a_fresh_shell(tmp_path):
    blocks = [block for block in shell_blocks(README) if any("cvn " in line for line in block)]
    assert blocks
    (tmp_path / ".venv").symlink_to(VENV)
    for block in blocks:
        assert not any(line.startswith("make ") for line in block), "a cvn block must not need make"
        script = "\n".join(block) + "\n"
        result = subprocess.run(["bash", "-e", "-x", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                                timeout=900, env={"PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)})
        assert result.returncode == 0, f"README block failed:\n{script}\n--- stderr ---\n{result.stderr[-4000:]}"
        assert "Traceback" not in result.stderr
        if any("--planted-signal" in line for line in block):
            assert "verdict PASS" in result.stdout, result.stdout  # the README promises the PASS path here
            for chatter in ("Successfully registered model", "Creating initial MLflow database tables", "STEP_"):
                assert chatter not in result.stderr  # quiet by default


def table_commands(text: str) -> set[tuple[str, ...]]:
    """`cvn a b|c …` of the README's command table, expanded to the sub-command paths it names."""
    paths = set()
    first_cells = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| `cvn ")]
    for cell in (command for first in first_cells for command in re.findall(r"`cvn ([^`]*)`", first)):
        words = []
        for word in cell.split():
            if word.startswith(("-", "[", "<", "…")) or word.isupper():
                break
            words.append(word)
        heads, alternatives = words[:-1], words[-1].replace("\\|", "|").split("|")
        paths |= {(*heads, alternative) for alternative in alternatives}
    return paths


def test_every_command_of_the_readme_table_exists():
    paths = table_commands(README)
    assert {("lifecycle", "verify"), ("state",), ("blob", "inspect"), ("campaign", "launch")} <= paths
    for path in paths:
        result = CliRunner().invoke(get_cli(), [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
