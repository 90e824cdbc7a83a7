"""Type checks of a config dataclass's fields against their hints, at the Python API's boundary.

A dataclass does not check types, so ``TrainConfig(max_steps="10")`` or ``holdout="a.jpg"`` (a
tuple of characters once converted) would fail deep in training or train something else. The CLI
converts text before building a config (cli/options.coerce); this is for Python callers.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing

from fastnst.errors import FastNSTError


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _matches(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # an int is a float here, as in Python's numeric tower; True is not
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, tuple) and all(_matches(v, item) for v in value)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return isinstance(value, hint)


def _describe(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "").replace("NoneType", "None")


def check_field_types(obj) -> None:
    """Raise FastNSTError naming the first field of dataclass ``obj`` whose value does not fit its hint."""
    for name, hint in _hints(type(obj)).items():
        value = getattr(obj, name)
        if not _matches(value, hint):
            raise FastNSTError(f"{type(obj).__name__}.{name} must be {_describe(hint)}, got {value!r}")
