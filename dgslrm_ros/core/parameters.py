"""A parameter table written once, as dataclass fields: `parameter(...)` declares a field with its
description and range, `parameter_table(cls)` reads the rows back (for the node's descriptors and YAML
check, `PipelineConfig.validate`, `dgslrm replay`'s options and `dgslrm train`'s)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from dgslrm_ros.core.errors import DgslrmError


class ParameterError(DgslrmError, ValueError):
    """A parameter value outside its row of the table; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type is the type of `default` (bool excluded; a tuple is a double array)."""

    name: str
    default: int | float | str | tuple[float, ...]
    description: str
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    choices: tuple[str, ...] = ()
    scope: str = "pipeline"  # "pipeline": a PipelineConfig field; "node": the ROS shell only
    # A value taken besides the range, its meaning in the description (stream/config.FROM_MODEL: "the
    # loaded model's", known only after start-up, so the table cannot hold the model's value itself).
    sentinel: int | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def constraints(self) -> str:
        """Human-readable range/choices, shown in the descriptor's additional_constraints."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.minimum is not None or self.maximum is not None:
            low = "-inf" if self.minimum is None else f"{self.minimum:g}"
            high = "inf" if self.maximum is None else f"{self.maximum:g}"
            sentinel = "" if self.sentinel is None else f" or {self.sentinel}"
            return f"in [{low}, {high}]{sentinel}"
        return ""

    def check(self, value: Any) -> int | float | str | tuple[float, ...]:
        """Return `value` as this parameter's type, or raise ParameterError naming the parameter."""
        expected = self.type
        if expected is tuple:
            return self._check_array(value)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ParameterError(
                f"parameter '{self.name}': expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        if expected is float and isinstance(value, int):
            value = float(value)  # YAML `1` for a double is harmless
        if not isinstance(value, expected):
            raise ParameterError(
                f"parameter '{self.name}': expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        if self.sentinel is not None and value == self.sentinel:
            return value
        if self.choices and value not in self.choices:
            raise ParameterError(
                f"parameter '{self.name}': expected one of {', '.join(self.choices)}, got {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"parameter '{self.name}': expected a finite number, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(
                f"parameter '{self.name}': {value!r} is below the minimum {self.minimum:g} ({self.description})"
            )
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(
                f"parameter '{self.name}': {value!r} is above the maximum {self.maximum:g} ({self.description})"
            )
        return value

    def _check_array(self, value: Any) -> tuple[float, ...]:
        """A double array of the default's length, every element finite (ints welcome: YAML `0`)."""
        n = len(self.default)  # type: ignore[arg-type]
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise ParameterError(f"parameter '{self.name}': expected {n} numbers, got {type(value).__name__} {value!r}")
        items = list(value)
        if len(items) != n or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
            raise ParameterError(f"parameter '{self.name}': expected {n} numbers ({self.description}), got {value!r}")
        floats = tuple(float(v) for v in items)
        if not all(math.isfinite(v) for v in floats):
            raise ParameterError(f"parameter '{self.name}': expected finite numbers, got {list(floats)}")
        return floats


def parameter(default: Any, description: str, *, minimum: float | None = None, maximum: float | None = None,
              choices: tuple[str, ...] = (), sentinel: int | None = None) -> Any:
    """A dataclass field that is also a row of the parameter table (default, description, range)."""
    return dataclasses.field(default=default, metadata={"description": description, "minimum": minimum,
                                                        "maximum": maximum, "choices": choices,
                                                        "sentinel": sentinel})


def parameter_table(config_class: type, scope: str) -> tuple[ParamSpec, ...]:
    """The rows of a dataclass whose fields were declared with `parameter(...)`, in field order."""
    return tuple(ParamSpec(f.name, f.default, scope=scope, **f.metadata) for f in dataclasses.fields(config_class))
