"""Values as strict JSON (what metrics.json, soak.json and the eval results hold): every reader parses it."""
from __future__ import annotations

import math
from typing import Any


def strict_json(value: Any) -> Any:
    """Nested dicts / lists of plain values: NaN and inf become None (NaN is not JSON), numpy and torch
    scalars and arrays become numbers and lists, tuples lists, keys strings, anything else its str()."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch, scalar or array
        return strict_json(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)
