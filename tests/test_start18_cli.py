"""Start-up (issue 16): typer reads each command's parameters from its annotations. Written as strings
(``from __future__ import annotations``), they are compiled and evaluated again every time typer builds the
app, about 50 M instructions (~10 % of a one-file scan, measured with callgrind); evaluated once when the
module is imported (from its bytecode), they cost almost nothing. The help and every message are unchanged
(the typer/click objects are the same)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from veritensor_fast import cli, cli_commands, cli_scan

COMMANDS: list[Callable[..., Any]] = [cli._main, cli_scan.scan, cli_commands.rules_list, cli_commands.rules_check,
                                      cli_commands.explain, cli_commands.baseline_create]


@pytest.mark.parametrize("fn", COMMANDS, ids=lambda f: f.__name__)
def test_command_annotations_are_objects_not_strings(fn: Callable[..., Any]) -> None:
    ann = inspect.get_annotations(fn)
    assert ann and not [k for k, v in ann.items() if isinstance(v, str)]


def test_every_command_is_registered_with_its_options() -> None:
    import typer.main

    group: Any = typer.main.get_command(cli.app)
    names = sorted(group.commands)
    assert names == ["baseline", "explain", "rules", "scan"]
    scan = group.commands["scan"]
    opts = {o for p in scan.params for o in p.opts}
    assert {"--jobs", "-j", "--format", "--show-secrets", "--history", "--staged", "--validate"} <= opts
    assert [p.name for p in scan.params if not p.opts[0].startswith("-")] == ["paths"]
