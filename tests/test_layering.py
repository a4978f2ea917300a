"""Dependencies flow one way: faces -> tasks -> core, and the package names say which layer a
module is in. Checked on every import statement, including the lazy ones inside functions,
so a shortcut cannot creep in unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import srlab

PKG = Path(srlab.__file__).parent
FACES = {"cli", "web", "__main__"}  # command line and browser
TASKS = {"batch", "eval", "train", "ship"}  # upscale files, measure, train, ship weights
CORE = {"__init__", "api", "zoo", "image", "runtime"}  # library: models, pixels, backends
# the one task that drives others: ship trains nothing itself, it benchmarks a finished run
TASK_USES = {"ship": {"eval", "train"}}
# inside the core: image knows nothing of models; zoo knows images, not the upscaler or backends
CORE_BELOW = {"image": set(), "zoo": {"image"}}


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


def _imports_from(path: Path) -> list[tuple[str, str]]:
    """(srlab module, name) for every `from srlab.x import name` in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module \
                and node.module.split(".")[0] == "srlab":
            out += [(node.module, a.name) for a in node.names]
    return out


MODULES = sorted(p for p in PKG.rglob("*.py"))
TOP = sorted({_module(p).split(".")[0] for p in MODULES})


@pytest.mark.parametrize("top", TOP)
def test_every_module_is_in_exactly_one_layer(top):
    assert [top in layer for layer in (FACES, TASKS, CORE)].count(True) == 1, top


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module(p))
def test_no_import_points_up_a_layer(path):
    top = _module(path).split(".")[0]
    imported = _srlab_imports(path) - {top}
    if top in FACES:
        return
    if top in TASKS:
        forbidden = FACES | (TASKS - TASK_USES.get(top, set()))
    else:
        forbidden = FACES | TASKS
        if top in CORE_BELOW:
            forbidden |= CORE - CORE_BELOW[top] - {top, "__init__"}
    assert not imported & forbidden, f"{_module(path)} imports {sorted(imported & forbidden)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module(p))
def test_no_private_name_crosses_a_module(path):
    private = [f"{m}.{n}" for m, n in _imports_from(path)
               if n.startswith("_") and not n.startswith("__")]
    assert not private, f"{_module(path)} imports private names {private}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    assert "cli" in _srlab_imports(PKG / "__main__.py")
    assert {"api", "zoo"} <= _srlab_imports(PKG / "batch" / "__init__.py")
    assert "image" in _srlab_imports(PKG / "zoo" / "classical.py")
    assert "runtime" in _srlab_imports(PKG / "cli" / "export.py")  # imported inside a function
    probe = tmp_path / "zoo" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("def f():\n    from ..image import resize\n    from . import span\n")
    monkeypatch.setitem(globals(), "PKG", tmp_path)
    assert _srlab_imports(probe) == {"image", "zoo"}


# ---- no two modules import each other ---------------------------------------------------

# None left. The last ones ran through api: load_model dispatched to runtime.backends and
# runtime.foreign, which wrapped api.Upscaler and loaded their torch network with
# api.load_model; and backends loaded model files through foreign, which read backends'
# measurements. Upscaler now lives in runtime.upscaler, the plain torch loading in
# runtime.torch_model and the measurements in runtime.measured, all below both sides.
# Earlier rounds: make_upscaler moved to eval.runners (eval.benchmark <-> eval.speed), luma
# and LATTICE below image.condition (image.condition <-> image.damage).
# A package and its own modules don't count.
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _module_imports(path: Path) -> set[str]:
    """srlab modules (dotted, without 'srlab.') that ``path`` imports, lazily too: absolute
    (``from srlab.x import y``, ``from srlab import x``, ``import srlab.x``) or relative. Both
    ``x`` and ``x.y`` are listed for ``from x import y``: ``y`` may be a module."""
    here = _module(path).split(".")[:-1]  # the importing module's package, within srlab
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here[: len(here) - (node.level - 1)] \
                    + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "srlab":
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add(".".join(parts))
            found.update(".".join([*parts, a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names
                         if a.name.startswith("srlab."))
    return found


def _deps(paths: list[Path]) -> dict[str, set[str]]:
    """Module -> the modules among ``paths`` it imports; a package and its own modules don't
    count (a package's __init__ may gather its modules, which import their siblings)."""
    names = {_module(p).removesuffix(".__init__"): p for p in paths}
    return {m: {d for d in _module_imports(p) if d in names and d != m
                and not (d.startswith(m + ".") or m.startswith(d + "."))}
            for m, p in names.items()}


def _circles(paths: list[Path]) -> set[frozenset[str]]:
    """Pairs of modules among ``paths`` that import each other."""
    deps = _deps(paths)
    return {frozenset({a, b}) for a, ds in deps.items() for b in ds if a in deps[b]}


def _cycles(paths: list[Path]) -> set[frozenset[str]]:
    """Groups of modules among ``paths`` that reach each other through imports, however long
    the way round (a pair that imports each other is one, a -> b -> c -> a another)."""
    deps = _deps(paths)

    def reach(m: str) -> set[str]:
        seen, todo = set(), [m]
        while todo:
            for d in deps[todo.pop()] - seen:
                seen.add(d)
                todo.append(d)
        return seen

    reached = {m: reach(m) for m in deps}
    return {frozenset({m} | {d for d in reached[m] if m in reached[d]})
            for m in deps if m in reached[m]}


def test_no_two_modules_import_each_other():
    circles = _circles(MODULES)
    assert circles <= KNOWN_CIRCLES, sorted(sorted(c) for c in circles - KNOWN_CIRCLES)
    longer = {c for c in _cycles(MODULES) if len(c) > 2}
    assert not longer, sorted(sorted(c) for c in longer)


def test_the_circle_check_sees_every_import_form(tmp_path, monkeypatch):
    files = {
        "api.py": "def f():\n    from srlab.runtime.backends import load_backend\n",
        "runtime/__init__.py": "",
        "runtime/backends.py": "from srlab import api\n",
        "runtime/foreign.py": "def f():\n    from . import onnx\n",
        "runtime/onnx.py": "import srlab.runtime.foreign\n",
        "runtime/upscaler.py": "from srlab.runtime import cpu\n",
        "runtime/cpu.py": "from .upscaler import Upscaler\n",
        "image/__init__.py": "from srlab.image import a\n",  # a package and its module
        "image/a.py": "from srlab.image.b import x\n",
        "image/b.py": "def g():\n    from ..image import a\n",
        "zoo/c.py": "from srlab.image import b\n",  # one way only
        "train/x.py": "from srlab.train import y\n",  # three round
        "train/y.py": "from srlab.train.z import q\n",
        "train/z.py": "import srlab.train.x\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setitem(globals(), "PKG", tmp_path)
    pairs = {frozenset({"api", "runtime.backends"}), frozenset({"runtime.foreign", "runtime.onnx"}),
             frozenset({"runtime.upscaler", "runtime.cpu"}), frozenset({"image.a", "image.b"})}
    paths = sorted(tmp_path.rglob("*.py"))
    assert _circles(paths) == pairs
    assert _cycles(paths) == pairs | {frozenset({"train.x", "train.y", "train.z"})}
