"""The install story: one dependency list, an exact lock, CI wiring and the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _direct_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if canonicalize_name(r.name) != "rlcourse"]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements/constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraint {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def test_every_direct_dependency_is_pinned_within_its_range():
    pins = _pins()
    for req in _direct_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{req.name}=={pins[name]} (lock) is outside pyproject's range {req.specifier}")


def test_lock_pins_torch_without_a_local_build_tag():
    # The same lock must serve users elsewhere, where PyPI's torch has no '+cpu' tag.
    assert "+" not in _pins()["torch"]


def test_environment_yml_adds_only_python_pip_and_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = [d for d in deps if isinstance(d, dict)]
    assert sorted(c.split("=")[0] for c in conda) == ["pip", "python"], conda
    python = next(c for c in conda if c.startswith("python="))
    version = python.split("=", 1)[1]
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(version + ".0")
    assert pip == [{"pip": ["-c requirements/constraints.txt", "-e .[dev]"]}], (
        "environment.yml must not list packages itself: pyproject.toml is the single list")


def test_github_workflow_is_valid_and_runs_make_test():
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "push" in triggers and "schedule" in triggers
    cron = triggers["schedule"][0]["cron"]
    assert len(cron.split()) == 5, f"cron needs 5 fields: {cron!r}"
    runs = {name: " ".join(s.get("run", "") for s in job["steps"])
            for name, job in wf["jobs"].items()}
    assert any(re.search(r"\bmake test\b(?!-)", r) for r in runs.values())
    assert any("make test-latest" in r for r in runs.values())
    for name, job in wf["jobs"].items():
        assert job["runs-on"] and job["steps"], name
        for step in job["steps"]:
            assert set(step) & {"run", "uses"}, f"{name}: step without run/uses: {step}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, re.M), ci
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme


def test_makefile_installs_pinned_torch_before_the_package():
    mk = (ROOT / "Makefile").read_text()
    torch_at = mk.index('"$(TORCH_SPEC)"')
    package_at = mk.index('-e ".[dev]"')
    assert torch_at < package_at
    assert re.search(r"^TORCH_SPEC\s*\?=\s*torch==2\.13\.0$", mk, re.M)
    for target in ("lab", "test", "lint", "unit", "notebooks", "readme", "lock", "test-latest"):
        assert re.search(rf"^{re.escape(target)}:", mk, re.M), f"missing make target {target}"
    for flag in ("--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout", "--dist loadscope"):
        assert flag in mk


def test_make_test_installs_the_optional_extras():
    mk = (ROOT / "Makefile").read_text()
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "trl" in extras and "mujoco" in extras
    assert re.search(r"^test:.*\binstall-extras\b", mk, re.M)
    assert re.search(r'^\t\s*-e "\.\[dev,trl,mujoco\]"$', mk, re.M)
    lab_rule = re.search(r"^lab:(.*)$", mk, re.M).group(1)
    assert "extras" not in lab_rule  # learners get the course without the optional libraries
