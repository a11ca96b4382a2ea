"""The lock: which version of each package the kit was tested with, and what this environment differs in.

``uv.lock`` holds the resolution; ``constraints.txt`` (exported from it by ``scripts/lock.sh``) is what
setup installs from, torch excepted. Both must agree with ``pyproject.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from helpers.core import config

LOCK_FILE = config.REPO_ROOT / "uv.lock"
CONSTRAINTS_FILE = config.REPO_ROOT / "constraints.txt"

ReqKey = tuple[str, frozenset[str], str, str]  # name, extras, specifier, marker
# Colab's interpreter and platform: every locked package must install there from a wheel.
COLAB_ENV = {"python_version": "3.13", "python_full_version": "3.13.0", "implementation_name": "cpython",
             "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
             "platform_machine": "x86_64", "os_name": "posix"}


def _key(name: str, extras, specifier: str, marker: str | None) -> ReqKey:
    return canonicalize_name(name), frozenset(extras or ()), str(specifier or ""), str(marker or "")


def declared_requirements(pyproject: dict) -> set[ReqKey]:
    """Every requirement ``pyproject.toml`` declares, extras' ones marked ``extra == '<name>'``."""
    project = pyproject["project"]
    declared = [(Requirement(spec), None) for spec in project["dependencies"]]
    declared += [(Requirement(spec), extra) for extra, specs in project["optional-dependencies"].items()
                 for spec in specs]
    return {_key(r.name, r.extras, str(r.specifier), f"extra == '{extra}'" if extra else r.marker)
            for r, extra in declared}


def locked_requirements(lock: dict, project: str) -> set[ReqKey]:
    """The requirements of ``project`` as they were when ``uv.lock`` was made."""
    package = next(p for p in lock["package"] if p["name"] == project)
    return {_key(r["name"], r.get("extras"), r.get("specifier"), r.get("marker"))
            for r in package["metadata"]["requires-dist"]}


def lock_drift(pyproject: dict, lock: dict) -> list[str]:
    """What ``pyproject.toml`` and ``uv.lock`` disagree on, one line each; empty when the lock is current."""
    name = pyproject["project"]["name"]
    declared, locked = declared_requirements(pyproject), locked_requirements(lock, name)
    lines = [f"declared but not locked: {r[0]}{sorted(r[1]) or ''} {r[2]} {r[3]}".rstrip()
             for r in sorted(declared - locked)]
    lines += [f"locked but no longer declared: {r[0]} {r[2]} {r[3]}".rstrip()
              for r in sorted(locked - declared)]
    constraints = pyproject.get("tool", {}).get("uv", {}).get("constraint-dependencies", [])
    manifest = lock.get("manifest", {}).get("constraints", [])
    locked_constraints = {f"{c['name']}{c['specifier']}" for c in manifest}
    if {str(Requirement(c)) for c in constraints} != locked_constraints:
        lines.append(f"constraint-dependencies {sorted(constraints)} vs locked {sorted(locked_constraints)}")
    return lines


def read_lock(path: Path | None = None) -> dict:
    """``uv.lock`` as a dict."""
    return tomllib.loads((path or LOCK_FILE).read_text())


def constraint_pins(path: Path | None = None) -> list[tuple[str, str, str]]:
    """(name, version, marker) of every ``name==version ; marker`` line of the constraints file."""
    pins = []
    for line in (path or CONSTRAINTS_FILE).read_text().splitlines():
        spec, _, marker = line.partition(";")
        if spec and not spec[0].isspace() and not spec.startswith("#") and "==" in spec:
            name, _, version = spec.partition("==")
            pins.append((canonicalize_name(name.strip()), version.strip(), marker.strip()))
    return pins


def locked_versions(path: Path | None = None) -> dict[str, str]:
    """The locked version of every package that applies to this interpreter and platform."""
    return {name: version for name, version, marker in constraint_pins(path)
            if not marker or Marker(marker).evaluate()}


def installed_differences(path: Path | None = None) -> list[tuple[str, str, str]]:
    """(package, installed version, locked version) for each installed package the lock pins otherwise.

    Packages the lock pins but that are not installed (an extra left out) are not differences.
    """
    out = []
    for name, locked in sorted(locked_versions(path).items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if installed != locked:
            out.append((name, installed, locked))
    return out


@dataclass
class Changes:
    """What an install did to an environment: packages moved (before, after), and those it added."""

    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)

    @property
    def downgraded(self) -> dict[str, tuple[str, str]]:
        """The changed packages whose new version is lower."""
        return {n: (a, b) for n, (a, b) in self.changed.items() if Version(b) < Version(a)}


def version_changes(before: dict[str, str], after: dict[str, str]) -> Changes:
    """Compare two {package: version} snapshots of one environment (removed packages are not counted)."""
    changed = {n: (before[n], v) for n, v in sorted(after.items()) if n in before and before[n] != v}
    return Changes(changed=changed, added={n: v for n, v in sorted(after.items()) if n not in before})


def _applies(marker: str | None, env: dict[str, str]) -> bool:
    """True when a dependency marker (None: none) holds on ``env``."""
    return marker is None or Marker(marker).evaluate(env)


def needed_packages(lock: dict, env: dict[str, str]) -> list[dict]:
    """The locked packages some locked package requires on ``env`` (its interpreter and platform)."""
    edges = [dep for p in lock["package"] for deps in [p.get("dependencies", []),
                                                      *p.get("optional-dependencies", {}).values()]
             for dep in deps if _applies(dep.get("marker"), env)]
    wanted = {(dep["name"], dep.get("version")) for dep in edges}
    return [p for p in lock["package"] if "editable" not in p["source"]
            and ((p["name"], p["version"]) in wanted or (p["name"], None) in wanted)
            and any(_applies(m, env) for m in p.get("resolution-markers", [None]))]


def fits(wheel: str, env: dict[str, str]) -> bool:
    """True when a wheel installs on ``env``'s CPython (its own ABI, abi3 or pure Python; Linux x86_64)."""
    minor = int(env["python_version"].split(".")[1])
    for tag in parse_wheel_filename(wheel)[3]:
        own = tag.interpreter in (f"cp3{minor}", f"py3{minor}", "py3")
        stable = tag.abi == "abi3" and tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= minor
        if (own or stable) and (tag.platform == "any" or tag.platform.endswith(env["platform_machine"])
                                and "linux" in tag.platform):
            return True
    return False


def without_wheel(lock: dict, env: dict[str, str] = COLAB_ENV) -> list[str]:
    """``name version`` of each locked package needed on ``env`` that has no wheel for it."""
    return [f"{p['name']} {p['version']}" for p in needed_packages(lock, env)
            if not any(fits(w["url"].rsplit("/", 1)[-1], env) for w in p.get("wheels", []))]
