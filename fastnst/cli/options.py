"""Flags and YAML keys from a typed config dataclass: the command line's configurator.

Each field of the dataclass (and of a dataclass nested in it, e.g. TrainConfig.loss) is one flag,
``--field-name``, and one YAML key, ``field_name``; its type hint says how a value is read and its
``metadata["help"]`` what it does. Values from the file and the flags are checked against the
hints here, with a one-line error naming the option, before anything runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from pathlib import Path

from fastnst.errors import FastNSTError


def fields(cls, group: str | None = None) -> dict[str, tuple[object, object, str]]:
    """{name: (type hint, default, help)} for ``cls``'s fields, a nested dataclass's fields in its
    place; only those whose metadata names ``group`` where given (a nested dataclass's fields are
    in the group of the field holding it)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(hints[f.name]):
            if group is None or group == f.metadata.get("group", "recipe"):
                nested = fields(hints[f.name])
                out |= {k: (hint, getattr(default, k), text) for k, (hint, _, text) in nested.items()}
        elif group is None or group == f.metadata.get("group"):
            out[f.name] = (hints[f.name], default, f.metadata.get("help", ""))
    return out


def build(cls, values: dict):
    """``cls(**values)``, with a nested dataclass's fields gathered into it (it keeps its own defaults
    for those not given, and the default instance's values where ``cls`` overrides them)."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            base = f.default if f.default is not dataclasses.MISSING else hint()
            own = {k: values[k] for k in (g.name for g in dataclasses.fields(hint)) if k in values}
            kwargs[f.name] = dataclasses.replace(base, **own)
        elif f.name in values:
            kwargs[f.name] = values[f.name]
    return cls(**kwargs)


def _options(hint) -> tuple:
    """The alternatives of a union hint (``int | None`` -> (int, NoneType)), else (hint,)."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def coerce(name: str, hint, value):
    """``value`` (from YAML, or a flag's text) as ``hint`` says: int, float (finite), str, bool,
    tuple[str, ...], Literal[...], or a union of those with None."""
    for kind in _options(hint):
        if kind is type(None) and value in (None, "None", "none", "null"):
            return None
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
        if kind is int and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
        if kind is float and not isinstance(value, bool) and isinstance(value, (int, float, str)):
            try:
                number = float(value)
            except ValueError:
                continue
            # NaN passes every range check (nan < 0 is False) and trains a NaN model: refuse here.
            if not math.isfinite(number):
                raise FastNSTError(f"option {name!r}: expected a finite number, got {value!r}")
            return number
        if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)) \
                and all(isinstance(v, str) for v in value):
            return tuple(value)
        if typing.get_origin(kind) is typing.Literal and value in typing.get_args(kind):
            return value
        if kind is str and isinstance(value, str):
            return value
    shown = " | ".join(getattr(k, "__name__", None) or str(k).replace("typing.", "") for k in _options(hint))
    raise FastNSTError(f"option {name!r}: expected {shown}, got {value!r}")


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls, group: str | None = None) -> None:
    """One ``--field-name`` per field of ``cls`` (of its ``group``, where given). A flag left out is
    absent from the namespace (SUPPRESS), so it never hides the value a config file gives."""
    for name, (hint, default, text) in fields(cls, group).items():
        flag = "--" + name.replace("_", "-")
        if default in (None, "", ()):
            shown = text
        else:
            shown = f"{text} (default: {' '.join(default) if isinstance(default, tuple) else default})"
        kinds = _options(hint)
        if any(typing.get_origin(k) is tuple for k in kinds):
            parser.add_argument(flag, nargs="*", default=argparse.SUPPRESS, metavar="NAME", help=shown)
        elif bool in kinds:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=shown)
        else:
            choices = [a for k in kinds if typing.get_origin(k) is typing.Literal for a in typing.get_args(k)]
            metavar = "{" + ",".join(map(str, choices)) + "}" if choices else \
                getattr(kinds[0], "__name__", "VALUE").upper()
            parser.add_argument(flag, default=argparse.SUPPRESS, metavar=metavar, help=shown)


def resolve(cls, *layers: tuple[str, dict]) -> dict:
    """Defaults < each (source name, mapping) layer in turn (e.g. a YAML file, then the flags) ->
    {field: value}; unknown keys and values of the wrong type are one-line errors naming the source."""
    known = fields(cls)
    resolved = {name: default for name, (_, default, _) in known.items()}
    for source, layer in layers:
        for key, value in layer.items():
            if key not in known:
                raise FastNSTError(f"{source}: unknown option {key!r}; valid options: {', '.join(sorted(known))}")
            resolved[key] = coerce(key, known[key][0], value)
    return resolved


def read_yaml(path: Path) -> dict:
    """A YAML mapping of option: value (dashes in keys read as underscores); errors say where and what."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise FastNSTError(f"{path}: config file not found") from None
    except yaml.MarkedYAMLError as e:  # a syntax error: say where and what, as YAML does
        mark = e.problem_mark or e.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        cause = "; ".join(str(x) for x in (e.context, e.problem) if x)
        raise FastNSTError(f"{path}{where}: YAML syntax error: {cause or type(e).__name__}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FastNSTError(f"{path}: not a readable YAML file ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FastNSTError(f"{path}: a config must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
