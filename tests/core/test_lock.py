"""The lock agrees with pyproject.toml, constraints.txt agrees with the lock, and drift is detected."""

from __future__ import annotations

import copy
import tomllib

from packaging.utils import canonicalize_name

from helpers.core import config, lockfile

PYPROJECT = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())
LOCK = lockfile.read_lock()


def test_lock_is_current_with_pyproject():
    drift = lockfile.lock_drift(PYPROJECT, LOCK)
    assert not drift, "pyproject.toml changed without relocking (bash scripts/lock.sh):\n" + "\n".join(drift)


def test_a_dependency_added_without_relocking_is_reported():
    changed = copy.deepcopy(PYPROJECT)
    changed["project"]["dependencies"].append("leftpad>=1.0")
    changed["project"]["optional-dependencies"]["rag"].remove("ragas==0.4.3")
    changed["project"]["optional-dependencies"]["rag"].append("ragas==0.5.0")
    drift = lockfile.lock_drift(changed, LOCK)
    assert any("declared but not locked: leftpad" in line for line in drift)
    assert any("ragas ==0.5.0" in line for line in drift)
    assert any("no longer declared: ragas ==0.4.3" in line for line in drift)


def test_constraints_pin_exactly_the_locked_versions_but_torch():
    locked = {(canonicalize_name(p["name"]), p["version"])
              for p in LOCK["package"] if p["name"] != config.DISTRIBUTION}
    pinned = {(name, version) for name, version, _ in lockfile.constraint_pins()}
    assert pinned <= locked, f"constraints.txt pins versions not in uv.lock: {sorted(pinned - locked)}"
    left_out = {name for name, _ in locked - pinned}
    assert left_out, "torch and its CUDA libraries are left to setup"
    assert all(n in ("torch", "triton") or n.startswith(("nvidia-", "cuda-")) for n in left_out), left_out


def test_installed_differences_names_a_package_installed_at_another_version(tmp_path):
    pins = tmp_path / "constraints.txt"
    pins.write_text("packaging==0.0.1\nnot-installed-anywhere==1.0\nnumpy==0.1 ; python_version < '3'\n")
    differences = lockfile.installed_differences(pins)
    assert [d[0] for d in differences] == ["packaging"]
    assert differences[0][2] == "0.0.1"


def test_this_environment_matches_the_lock():
    assert lockfile.installed_differences() == [], "reinstall from the lock: bash scripts/setup.sh"


def test_every_locked_package_has_a_wheel_for_colab_s_python():
    assert lockfile.without_wheel(LOCK) == [], "no wheel for Python 3.13 on Linux x86_64 (Colab's)"


def test_a_package_without_a_wheel_for_colab_is_named():
    def package(name: str, wheel: str | None = None, **more) -> dict:
        wheels = [{"url": f"https://files.example/{wheel}"}] if wheel else []
        return {"name": name, "version": "1.0", "source": {"registry": "pypi"}, "wheels": wheels, **more}

    lock = {"package": [
        {"name": config.DISTRIBUTION, "version": "0.1.0", "source": {"editable": "."}, "dependencies": [
            {"name": "old"}, {"name": "pure"}, {"name": "stable"},
            {"name": "winonly", "marker": "os_name == 'nt'"}]},
        package("old", "old-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
        package("pure", "pure-1.0-py3-none-any.whl"),
        package("stable", "stable-1.0-cp39-abi3-manylinux_2_28_x86_64.whl"),
        package("winonly"),
    ]}
    assert lockfile.without_wheel(lock) == ["old 1.0"]
