"""One error root: every exception class of the package derives from DgslrmError and keeps its builtin base."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

from dgslrm_ros.core.errors import DgslrmError

PACKAGE = Path(__file__).resolve().parents[2] / "dgslrm_ros"


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every class whose name ends in Error, found in the source (so none is missed)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found += [(module, node.name) for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.ClassDef) and node.name.endswith("Error")]
    return found


def test_every_project_exception_derives_from_dgslrm_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 25  # the 24 of issue 13 plus the pose options one
    outside = [f"{module}.{name}" for module, name in classes
               if not issubclass(getattr(importlib.import_module(module), name), DgslrmError)]
    assert not outside, outside


def test_builtin_bases_stay_so_existing_except_clauses_still_catch() -> None:
    from dgslrm_ros.bags.reader import BagReadError
    from dgslrm_ros.convert.errors import PoseError as MessagePoseError
    from dgslrm_ros.model.checkpoint import CheckpointError
    from dgslrm_ros.ros.params import ParameterError
    from dgslrm_ros.stream.config import ConfigError

    assert issubclass(ConfigError, ValueError) and issubclass(ParameterError, ValueError)
    assert issubclass(MessagePoseError, ValueError)
    assert issubclass(CheckpointError, RuntimeError) and issubclass(BagReadError, RuntimeError)
