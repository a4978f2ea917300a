"""Dependencies flow one way: faces -> tasks -> core. Checked on every import statement,
including the lazy ones inside functions, so a shortcut cannot creep in unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import srlab

PKG = Path(srlab.__file__).parent
FACES = {"cli", "web", "__main__"}
TASKS = {"upscale_task", "train", "benchmark", "ship", "compare", "kfold", "tune", "speed",
         "export"}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    return ".".join(rel.parts)


def _srlab_imports(path: Path) -> set[str]:
    """Top-level srlab modules that ``path`` imports (relative or absolute)."""
    here = _module(path).split(".")[:-1]  # the importing module's package, within srlab
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts[0]] if parts else [a.name.split(".")[0] for a in node.names]
            elif node.module and node.module.split(".")[0] == "srlab":
                rest = node.module.split(".")[1:]
                names = rest[:1] or [a.name.split(".")[0] for a in node.names]
            else:
                continue
            found.update(names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "srlab" and len(parts) > 1:
                    found.add(parts[1])
    return found


MODULES = sorted(p for p in PKG.rglob("*.py"))


def test_the_layers_name_real_modules():
    top = {_module(p).split(".")[0] for p in MODULES}
    assert FACES <= top and TASKS <= top


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module(p))
def test_no_import_points_up_a_layer(path):
    top = _module(path).split(".")[0]
    imported = _srlab_imports(path)
    if top in FACES:
        return
    forbidden = FACES if top in TASKS else FACES | TASKS
    assert not imported & forbidden, f"{_module(path)} imports {sorted(imported & forbidden)}"


def test_the_checker_sees_lazy_relative_imports():
    assert "cli" in _srlab_imports(PKG / "__main__.py")
    assert {"upscaler", "models"} <= _srlab_imports(PKG / "upscale_task.py")
    assert "resize" in _srlab_imports(PKG / "models" / "classical.py")
