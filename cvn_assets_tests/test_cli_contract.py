"""The `cvn` contract every command keeps: a fast start, one JSON object on error, flags named in
errors, a relative DAGSTER_HOME understood, a read-only `cvn state`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cvn_assets.cli.main import COMMANDS, get_cli

CVN = str(Path(sys.executable).with_name("cvn"))
HEAVY = ("dagster", "mlflow", "boto3", "pandas", "sklearn")


def imported_after(code: str) -> set[str]:
    """Top-level modules imported by ``code`` in a fresh interpreter (no state from this test process)."""
    probe = f"{code}\nimport sys\nprint(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    return set(result.stdout.strip().splitlines()[-1].split(","))


def test_importing_the_cli_and_its_help_import_no_dagster():
    """`cvn --help` and `cvn --version` start at once: nothing heavy is imported for them."""
    entry_point = """
import sys
from cvn_assets.cli.main import main
for argv in (['cvn', '--help'], ['cvn', '--version']):
    sys.argv = argv
    try:
        main()
    except SystemExit as exit:
        assert exit.code == 0, argv
"""
    loaded = imported_after(entry_point)
    assert not loaded & {*HEAVY, "numpy"}, sorted(loaded & {*HEAVY, "numpy"})
    assert not imported_after("import cvn_assets.cli") & {*HEAVY, "numpy"}


@pytest.mark.parametrize("command", [["blob", "ls", "--help"], ["blob", "inspect", "--help"], ["s3", "check", "--help"],
                                     ["lifecycle", "sweep", "--help"]])
def test_commands_that_do_not_run_dagster_do_not_import_it(command):
    code = f"""
from click.testing import CliRunner
from cvn_assets.cli.main import get_cli
result = CliRunner().invoke(get_cli(), {command!r})
assert result.exit_code == 0, result.output
"""
    assert not imported_after(code) & set(HEAVY)


def first_paragraph(command: click.Command) -> str:
    return " ".join((command.help or "").strip().split("\n\n")[0].split())


def test_help_lists_every_command_with_its_own_short_help():
    """The registry's one-liners (shown without importing anything) are the commands' own help."""
    cli = get_cli()
    context = click.Context(cli)
    for name, (_, short_help) in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
        assert short_help == first_paragraph(command), name
    listing = CliRunner().invoke(cli, ["--help"], terminal_width=200)
    assert listing.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in listing.stdout


def json_commands(group: click.Group, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found = set()
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found |= json_commands(command, (*path, name))
        elif any("--json" in param.opts for param in command.params):
            found.add((*path, name))
    return found


# For every command with --json, one way to make it fail on this machine (no bucket, unknown ids…).
FAILING = {
    ("campaign", "launch"): (["--group", "nope"], {}),
    ("gate",): (["--campaign", "never-launched"], {}),
    ("blob", "ls"): (["--campaign", "never-launched"], {}),
    ("blob", "inspect"): (["not-a-key"], {}),
    ("s3", "check"): ([], {}),
    ("lifecycle", "show"): ([], {}),
    ("lifecycle", "plan"): ([], {}),
    ("lifecycle", "apply"): ([], {}),
    ("lifecycle", "verify"): ([], {}),
    ("lifecycle", "sweep"): ([], {"CVN_S3_BUCKET": "cvn-bucket"}),
    ("state",): (["--notify"], {"CVN_ALERT_WEBHOOK_URL": "not-a-url"}),
    ("campaign", "rerun"): (["never-launched"], {}),
    ("model", "ls"): (["--crypto", "not a crypto"], {}),
    ("model", "approve"): (["BTCUSDC", "1", "--role", "ml_owner", "--by", "alice"], {}),
    ("model", "promote"): (["BTCUSDC", "1", "--by", "alice"], {}),
    ("model", "killswitch"): (["BTCUSDC", "--confirm", "ETHUSDC@1", "--reason", "drill", "--by", "op"], {}),
    ("model", "rollback"): (["BTCUSDC", "--confirm", "ETHUSDC@1", "--reason", "drill", "--by", "op"], {}),
    ("model", "decommission"): (["BTCUSDC", "1", "--confirm", "ETHUSDC@1", "--by", "op"], {}),
    ("model", "backtest"): (["--crypto", "BTCUSDC"], {}),
    ("model", "walkforward"): (["--crypto", "BTCUSDC", "--version", "1"], {}),
    ("model", "retrain"): (["--crypto", "BTCUSDC"], {}),
    ("model", "monitor"): (["--crypto", "not a crypto"], {}),
    ("model", "meta-train"): (["--crypto", "BTCUSDC", "--by", "alice"], {}),
    ("universes", "show"): (["--group", "nope"], {}),
    ("universes", "sync"): ([], {"CVN_UNIVERSES_FILE": "/nonexistent/universes.yaml"}),
}


def test_every_json_command_has_an_error_case_here():
    assert json_commands(get_cli()) == set(FAILING)


@pytest.mark.parametrize("path", sorted(FAILING), ids=" ".join)
def test_json_errors_are_one_object_on_stdout(path, dagster_home, monkeypatch):
    args, env = FAILING[path]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(get_cli(), [*path, *args, "--json"])
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout
    assert document["exit_code"] == 2 and document["error"]
    assert document["error"] in result.stderr  # a person reading the terminal sees it too


def test_a_usage_error_with_json_is_one_object_too(dagster_home):
    result = CliRunner().invoke(get_cli(), ["campaign", "launch", "--group", "defi", "--folds", "abc", "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document == {"error": "Invalid value for '--folds': 'abc' is not a valid integer.", "exit_code": 2}


@pytest.mark.parametrize(
    ("args", "expected", "not_expected"),
    [
        (["--horizons", "H0"], "--horizons 'H0': Input should be greater than or equal to 1", "horizons.0"),
        (["--horizons", "5"], "--horizons '5': horizon '5' is invalid: expected H<n>", "Value error"),
        (["--sl-range", "abc"], "--sl-range 'abc': Input should be a valid number", "sl_range.0"),
        (["--campaign-id", "../x"], "--campaign-id '../x': campaign_id '../x' is invalid: expected 3 to 63 "
         "characters: lowercase letters, digits and '-', starting with a letter or a digit", "[a-z0-9]"),
        (["--data-source", "files"], "--data-dir: data_dir is required when data_source is 'files'", "data_dir:"),
        (["--planted-signal", "0.6", "--data-source", "files", "--data-dir", "."],
         "--planted-signal '0.6': planted_signal 0.6 is only for data_source 'synthetic'", "Value error"),
    ],
    ids=["h0", "h-not-hours", "sl-not-numbers", "campaign-id-rule-in-words", "files-without-dir", "planted-on-files"],
)
def test_validation_errors_name_the_flag_typed(args, expected, not_expected, dagster_home, storage_root):
    result = CliRunner().invoke(get_cli(), ["campaign", "launch", "--group", "defi", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and not_expected not in result.stderr
    assert not storage_root.exists()  # refused before anything is written


def cvn(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CVN, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, **env})


def test_a_relative_dagster_home_is_taken_from_the_current_directory_and_state_stays_read_only(tmp_path, monkeypatch):
    monkeypatch.delenv("CVN_STORAGE_ROOT")  # the embedded default: $DAGSTER_HOME/cvn-objects
    state = cvn("state", "--json", cwd=tmp_path, DAGSTER_HOME=".dagster_home")
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout)["state"] in {"YELLOW", "ORANGE", "RED"}
    assert (tmp_path / ".dagster_home" / "dagster.yaml").is_file()  # the project's instance, no Dagster warning
    assert "No dagster instance configuration file" not in state.stderr
    # Read-only: it remembers nothing, so announcing a "change" (here from none) would repeat on every call.
    assert "global_state_changed" not in state.stderr

    gate = cvn("gate", "--campaign", "never-launched", cwd=tmp_path, DAGSTER_HOME=".dagster_home")
    assert gate.returncode == 2 and "not registered" in gate.stderr
    assert str(tmp_path / ".dagster_home" / "cvn-objects") in gate.stderr
    assert "absolute" not in gate.stderr and "Traceback" not in gate.stderr


def test_a_dagster_home_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "home").write_text("")
    result = cvn("blob", "ls", "--campaign", "never-launched", cwd=tmp_path, DAGSTER_HOME="home")
    assert result.returncode == 2
    assert result.stderr == f"error: DAGSTER_HOME='home' is not a directory ({tmp_path / 'home'} is a file): " \
                            "expected the directory of the Dagster instance\n"
