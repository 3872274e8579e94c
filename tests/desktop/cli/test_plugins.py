"""Command groups other packages add to ``subtone`` (the server's ``token`` and
``standalone``) are found through entry points, never imported by the client."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import typer
from typer.testing import CliRunner

from desktop.cli import ENTRY_POINT_GROUP, add_plugin_groups
from tests.plugins import ROOT, declared, metadata_dir

runner = CliRunner()

extra = typer.Typer(help="An extra group.", no_args_is_help=True)


@extra.command("hello")
def _hello() -> None:
    print("hello from a plugin")


def _entry(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP)


def _app() -> typer.Typer:
    target = typer.Typer()

    @target.command("encode")
    def _encode() -> None:  # a built-in command
        print("built in")

    @target.command("jobs")
    def _jobs() -> None:
        print("jobs")

    return target


def test_a_declared_group_is_added_and_runs():
    target = _app()
    added = add_plugin_groups(target, [_entry("extra", f"{__name__}:extra")])
    assert added == ["extra"]
    result = runner.invoke(target, ["extra", "hello"])
    assert result.exit_code == 0 and "hello from a plugin" in result.stdout


def test_an_unloadable_or_odd_entry_point_is_left_out_and_the_rest_still_work():
    target = _app()
    added = add_plugin_groups(
        target,
        [
            _entry("gone", "no_such_package.cli:app"),  # its package is not installed
            _entry("odd", f"{__name__}:runner"),  # not a typer.Typer
            _entry("encode", f"{__name__}:extra"),  # a built-in name keeps its owner
            _entry("extra", f"{__name__}:extra"),
            _entry("extra", "no_such_package.cli:app"),  # a second owner of a name
        ],
    )
    assert added == ["extra"]
    assert "built in" in runner.invoke(target, ["encode"]).stdout


def test_none_declared_is_the_desktop_bundle_the_client_commands_remain():
    target = _app()
    assert add_plugin_groups(target, []) == []
    assert runner.invoke(target, ["encode"]).exit_code == 0


def test_the_server_declares_token_and_standalone():
    assert {e.name: e.value for e in declared()} == {
        "token": "server.admin.tokens:app",
        "standalone": "server.admin.standalone:app",
    }
    target = _app()
    assert add_plugin_groups(target, declared()) == ["token", "standalone"]


def test_subtone_token_help_through_the_installed_entry_points(tmp_path):
    """``python -m desktop.cli token --help`` finds the server's group the way an installed
    ``subtone`` does: through the distribution metadata on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(metadata_dir(tmp_path))])
    result = subprocess.run(
        [sys.executable, "-m", "desktop.cli", "token", "--help"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for command in ("create", "list", "revoke"):
        assert command in result.stdout
    help_all = subprocess.run(
        [sys.executable, "-m", "desktop.cli", "--help"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert "standalone" in help_all.stdout and "token" in help_all.stdout


def test_a_built_in_command_loads_no_plugin_and_a_named_plugin_loads_alone() -> None:
    from desktop.cli import plugins_for

    entries = [_entry("token", "server.admin.tokens:app"), _entry("extra", f"{__name__}:extra")]
    assert plugins_for(["--stats", "encode", "a.wav", "b.txt", "-o", "c.wav"], entries) == []
    assert [e.name for e in plugins_for(["extra", "hello"], entries)] == ["extra"]
    assert [e.name for e in plugins_for(["--help"], entries)] == ["token", "extra"]
    assert [e.name for e in plugins_for([], entries)] == ["token", "extra"]


def test_a_command_line_that_starts_with_a_built_in_reads_no_entry_points(monkeypatch) -> None:
    """``subtone [options] encode ...`` runs a built-in command: the installed packages'
    entry points are not read (only ``--help``, a plug-in or an unknown word reads them)."""
    import desktop.cli as cli

    assert cli.names_a_builtin(["--stats", "encode", "a.wav", "b.txt", "-o", "c.wav"])
    assert cli.names_a_builtin(["decode", "--help"])
    assert not cli.names_a_builtin(["standalone", "up"])
    assert not cli.names_a_builtin(["--url", "http://x", "encode"])  # read: it may be a plug-in
    assert not cli.names_a_builtin(["--help"]) and not cli.names_a_builtin([])

    read: list[str] = []

    def entry_points(**kwargs):
        read.append(kwargs["group"])
        return []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    class NotRun:  # the real app's commands, not run
        registered_commands = cli.app.registered_commands
        registered_groups = cli.app.registered_groups

        def __call__(self, prog_name: str) -> None:
            pass

    monkeypatch.setattr(cli, "app", NotRun())
    for argv, reads in ((["encode", "--help"], []), (["standalone", "up"], [ENTRY_POINT_GROUP])):
        read.clear()
        monkeypatch.setattr(sys, "argv", ["subtone", *argv])
        cli.main()
        assert read == reads


def test_subtone_encode_imports_neither_the_server_nor_the_codec_before_its_passphrase() -> None:
    """``subtone encode`` starts its scrypt before it imports the codec, and never imports the
    server's command groups (FastAPI, Redis): checked in a fresh interpreter."""
    probe = (
        "import sys\n"
        "from desktop.cli import app, plugins_for, ENTRY_POINT_GROUP\n"
        "import importlib.metadata as m\n"
        "plugins_for(['encode'], m.entry_points(group=ENTRY_POINT_GROUP))\n"
        "bad = [n for n in ('fastapi', 'redis', 'server', 'numba', 'subtone.stego.codec')"
        " if n in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
