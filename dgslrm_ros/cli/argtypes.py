"""argparse value types shared by the subcommands (a bad value is refused by argparse, by name), and
options derived from a config dataclass, so a default or a help text is written once, on the field."""
from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from dgslrm_ros.core.parameters import ParameterError, ParamSpec


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _field_type(f: dataclasses.Field) -> Any:
    """The field's type as an argparse `type`, refusing a value outside its range by name (ParamSpec.check)."""
    kind, spec = type(f.default), ParamSpec(f.name, f.default, **f.metadata)

    def typed(text: str) -> Any:
        try:
            return spec.check(kind(text))
        except ParameterError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    typed.__name__ = kind.__name__  # argparse: "invalid int value: 'x'" for what is no number at all
    return typed


def add_config_options(parser: argparse.ArgumentParser, config_class: type,
                       aliases: dict[str, tuple[str, ...]] | None = None) -> None:
    """One option per field declared with `core.parameters.parameter`: --field-name, typed, defaulted, ranged
    and described by the field; a bool field is a switch (--name when off by default, --no-name when on)."""
    for f in dataclasses.fields(config_class):
        if "description" not in f.metadata:
            continue
        description = f.metadata["description"].replace("%", "%%")  # argparse formats help with %
        flags = ("--" + ("no-" if f.default is True else "") + f.name.replace("_", "-"),
                 *(aliases or {}).get(f.name, ()))
        if isinstance(f.default, bool):
            parser.add_argument(*flags, dest=f.name, action="store_false" if f.default else "store_true",
                                help=f"{description} ({'on by default; this switch turns it off' if f.default else 'off by default'})")
        else:
            parser.add_argument(*flags, dest=f.name, type=_field_type(f), default=f.default,
                                choices=f.metadata["choices"] or None, help=f"{description} (default: {f.default})")


def config_from_options(config_class: type, args: argparse.Namespace, **values: Any) -> Any:
    """The config the options of `add_config_options` describe; `values` set other fields or override options."""
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if "description" in f.metadata}
    return config_class(**{**options, **values})
