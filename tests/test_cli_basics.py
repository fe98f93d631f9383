"""The command line's conventions: --help everywhere, --version, configuration by flags,
PUSHWIRE_* environment variables and a TOML file, exit code 2 for usage errors."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import typing

import pytest
import typer

from pushwire import PUSH_TYPES, __version__
from pushwire.cli.app import app
from pushwire.cli.options import PushType
from support.cli import CLI, KEY_ID, TEAM_ID, invoke, plain_environment, write_p8


def test_version():
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pushwire {__version__}"


@pytest.mark.parametrize(
    "command", [[], ["send"], ["check-credentials"], ["mock"], ["demo"]], ids=" ".join
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(command, flag):
    result = invoke([*command, flag])
    assert result.exit_code == 0
    assert "Usage: " in result.stdout
    assert "--help" in result.stdout


def test_help_lists_the_commands_and_exit_codes():
    out = invoke(["--help"]).stdout
    for command in ("send", "check-credentials", "mock", "demo"):
        assert command in out
    assert "PUSHWIRE_" in out and "--config" in out and "130 interrupted" in out


def test_send_help_shows_the_environment_variables():
    out = invoke(["send", "--help"]).stdout
    for variable in ("PUSHWIRE_P8", "PUSHWIRE_P12_PASSWORD", "PUSHWIRE_SERVICE_ACCOUNT"):
        assert variable in out


def test_push_type_choices_are_the_library_push_types():
    assert set(typing.get_args(PushType)) == set(PUSH_TYPES)


def test_unknown_option_is_a_usage_error():
    result = invoke(["send", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_missing_required_input_is_a_usage_error():
    result = invoke(["send", "--topic", "com.example.app"])
    assert result.exit_code == 2
    assert "--input" in result.output


# -- configuration: flags > PUSHWIRE_* environment > --config file > defaults -----------------


@pytest.fixture
def p8_dir(tmp_path, p8_key):
    write_p8(tmp_path / "AuthKey.p8", p8_key)
    return tmp_path


def key_id_shown(result) -> str:
    """The key id check-credentials reports having signed with."""
    for line in result.stdout.splitlines():
        if "signed an ES256 provider token" in line:
            return line.split("key id ")[1].split(",")[0]
    raise AssertionError(result.output)


def test_config_file_sets_options_with_paths_relative_to_the_file(p8_dir, tmp_path_factory):
    config = p8_dir / "pushwire.toml"
    config.write_text(f'p8 = "AuthKey.p8"\nkey-id = "{KEY_ID}"\nteam_id = "{TEAM_ID}"\n')
    elsewhere = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)
        result = invoke(["check-credentials", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert key_id_shown(result) == KEY_ID


def test_environment_beats_config_and_flags_beat_environment(p8_dir):
    config = p8_dir / "pushwire.toml"
    config.write_text(
        f'p8 = "AuthKey.p8"\nteam-id = "{TEAM_ID}"\nkey-id = "CONFIG0001"\n'
        '[check-credentials]\nkey-id = "SECTION001"\n'
    )
    args = ["check-credentials", "--config", str(config)]
    assert key_id_shown(invoke(args)) == "SECTION001"  # the command's table wins in the file
    env = {"PUSHWIRE_KEY_ID": "ENVIRON001"}
    assert key_id_shown(invoke(args, env=env)) == "ENVIRON001"
    assert key_id_shown(invoke([*args, "--key-id", "FLAGGED001"], env=env)) == "FLAGGED001"


def test_config_file_from_the_environment(p8_dir):
    config = p8_dir / "pushwire.toml"
    config.write_text(f'p8 = "AuthKey.p8"\nkey-id = "{KEY_ID}"\nteam-id = "{TEAM_ID}"\n')
    result = invoke(["check-credentials"], env={"PUSHWIRE_CONFIG": str(config)})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('p8 = "x.p8"\nkey-idd = "A"\n', "unknown option 'key-idd'"),
        ("[check-credentials]\nresults = 'r.jsonl'\n", "unknown option 'results'"),
        ("p8 = \n", "not valid TOML"),
    ],
)
def test_config_mistakes_are_usage_errors_naming_the_problem(tmp_path, text, words):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = invoke(["check-credentials", "--config", str(config)])
    assert result.exit_code == 2
    assert words in result.output and "bad.toml" in result.output
    assert "Traceback" not in result.output


def test_a_key_for_another_command_is_allowed_at_the_top_of_the_file(p8_dir):
    config = p8_dir / "pushwire.toml"
    # `results` belongs to send: shared config files may hold it.
    config.write_text(
        f'p8 = "AuthKey.p8"\nkey-id = "{KEY_ID}"\nteam-id = "{TEAM_ID}"\nresults = "r.jsonl"\n'
    )
    assert invoke(["check-credentials", "--config", str(config)]).exit_code == 0


def test_missing_config_file_is_a_usage_error(tmp_path):
    result = invoke(["check-credentials", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml" in result.output and "Traceback" not in result.output


# -- the package: the library does not import the command line --------------------------------


def test_importing_pushwire_does_not_import_the_command_line():
    code = (
        "import sys, pushwire, pushwire.store, pushwire.testing\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')\n"
        "          or m == 'pushwire.cli' or m.startswith('pushwire.cli.')]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_without_the_cli_extra_the_command_prints_a_one_line_hint():
    # As if typer were not installed: the entry point says what to install, no traceback.
    code = "import sys; sys.modules['typer'] = None\nfrom pushwire.cli import main\nmain()\n"
    done = subprocess.run([sys.executable, "-c", code, "demo"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: the pushwire command needs its extra dependencies (typer, rich): "
        "pip install 'pushwire[cli]'"
    ]


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "pushwire.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"pushwire {__version__}"


# -- usage errors are one line; help is readable at 80 columns ---------------------------------


def usage_mistakes(tmp_path) -> list[list[str]]:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("p8 = \n")
    return [
        ["send", "--p8", str(tmp_path), "-i", "x.jsonl"],  # a directory for a file
        ["send", "--no-such-option"],
        ["send", "--badge", "many"],
        ["check-credentials", "--config", str(bad_toml)],
        ["endpoints", "list", "--limit", "0"],
        ["jobs", "status", "--nope"],
        ["endpoints", "add-app", "ios"],  # --provider missing
    ]


def test_usage_errors_are_one_error_line_without_a_terminal(tmp_path):
    for args in usage_mistakes(tmp_path):
        result = invoke(args, env={"COLUMNS": "80"})
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "", args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert "─" not in lines[0] and "╭" not in lines[0]


def test_usage_errors_are_one_error_line_in_a_terminal(tmp_path):
    for args in usage_mistakes(tmp_path)[:4]:
        controller, terminal = pty.openpty()
        done = subprocess.run(
            [*CLI, *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            env=plain_environment(COLUMNS="80"),
            timeout=60,
        )
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal is closed and drained
                break
            if not chunk:
                break
            output += chunk
        os.close(controller)
        lines = output.decode().splitlines()
        assert done.returncode == 2, (args, lines)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)


def all_command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(group, prefix):
        for name, command in group.commands.items():
            paths.append([*prefix, name])
            if hasattr(command, "commands"):
                walk(command, [*prefix, name])

    walk(root, [])
    return paths


def test_every_help_is_readable_at_80_columns():
    paths = all_command_paths()
    assert ["endpoints", "import"] in paths and ["jobs", "status"] in paths
    for path in paths:
        result = invoke([*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, path
        for line in result.stdout.splitlines():
            assert len(line) <= 80, (path, line)
            assert "…" not in line and "<bool>" not in line, (path, line)
    mock_help = invoke(["mock", "--help"], env={"COLUMNS": "80"}).stdout
    assert "--service-account-public-key" in mock_help
    assert "--service-account-email" in mock_help


def test_send_help_shows_its_option_groups():
    out = invoke(["send", "--help"], env={"COLUMNS": "80"}).stdout
    sections = [line[:-1] for line in out.splitlines() if line and not line[0].isspace()]
    assert sections[1:] == [
        "Input",
        "Payload",
        "APNs credentials",
        "FCM credentials",
        "Endpoint",
        "Output",
        "Sending",
        "Endpoint store (--to-segment)",
        "Web Push (--subscriptions)",
        "Options",
    ]
