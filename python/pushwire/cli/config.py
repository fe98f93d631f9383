"""``--config path.toml``: option defaults from a TOML file.

Keys are option names (``key-id`` or ``key_id``). Top-level keys apply to every command that
has that option; a ``[send]`` (``[demo]``, ``[mock]``, ``[check-credentials]``) table applies
to that command only and wins. Precedence, as usual for CLIs: flags, then ``PUSHWIRE_*``
environment variables, then the file, then built-in defaults. Relative paths in the file are
relative to the file.

The file is read by an eager option callback that fills click's ``default_map`` before the
other options of the command are parsed. (Typer bundles its own click: parameters are
inspected by their attributes, not by class.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import typer

from .errors import CLIError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; errors name the file and the line."""
    if tomllib is None:  # pragma: no cover
        raise CLIError(f"{path}: reading TOML needs Python 3.11+ (or `pip install tomli`)")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise CLIError(f"{path} is not valid TOML: {e}") from None


def load_mapping(path: Path) -> dict[str, Any]:
    """A JSON or TOML (by extension: ``.toml``) file holding one object."""
    if path.suffix.lower() == ".toml":
        return load_toml(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CLIError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not UTF-8 text") from None
    if not isinstance(data, dict):
        raise CLIError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _option_names(command: Any) -> dict[str, Any]:
    """Every spelling a config key may use for the command's options -> the option."""
    names: dict[str, Any] = {}
    for param in command.params:
        if param.param_type_name != "option" or param.name in (None, "config"):
            continue
        names[param.name] = param
        for opt in param.opts:
            if opt.startswith("--"):
                names[opt[2:]] = param
                names[opt[2:].replace("-", "_")] = param
    return names


def _is_path_option(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.29
    if descriptor is not None:
        return descriptor.annotation is Path
    return getattr(getattr(param, "type", None), "name", None) == "path"


def _resolve(value: Any, param: Any, base: Path) -> Any:
    """Paths in the file are relative to the file, not to the current directory."""
    if _is_path_option(param) and isinstance(value, str) and value != "-":
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else base / path)
    return value


def config_defaults(path: Path, ctx: typer.Context) -> dict[str, Any]:
    """The ``default_map`` for the running command from the config file at ``path``."""
    data = load_toml(path)
    command = ctx.command
    command_name = ctx.info_name or command.name or ""
    siblings: dict[str, Any] = {}
    if ctx.parent is not None:
        siblings = dict(getattr(ctx.parent.command, "commands", {}))
    mine = _option_names(command)
    anyone = set(mine)
    for other in siblings.values():
        anyone.update(_option_names(other))
    defaults: dict[str, Any] = {}
    sections: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict) and (key in siblings or key == command_name):
            if key == command_name:
                sections.append((f"[{key}] ", value))
            continue
        if key not in anyone:
            raise CLIError(f"{path}: unknown option {key!r} (keys are option names, e.g. key-id)")
        if key in mine:
            param = mine[key]
            defaults[str(param.name)] = _resolve(value, param, path.parent)
    for where, table in sections:
        for key, value in table.items():
            if key not in mine:
                raise CLIError(
                    f"{path}: {where}has unknown option {key!r} for `pushwire {command_name}`"
                )
            param = mine[key]
            defaults[str(param.name)] = _resolve(value, param, path.parent)
    return defaults


def apply_config(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Callback of the eager ``--config`` option."""
    if value is None:
        return None
    try:
        defaults = config_defaults(value, ctx)
    except CLIError as e:
        raise typer.BadParameter(str(e), ctx=ctx, param=cast(Any, param)) from None
    except OSError as e:
        raise typer.BadParameter(
            f"cannot read {value}: {e.strerror or e}", ctx=ctx, param=cast(Any, param)
        ) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value
