"""Hugging Face Spaces: the README front matter, requirements.txt against pyproject.toml and constraints.txt, the files
a Space needs, and the optional ZeroGPU decorator."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
LFS_LIMIT = 10 * 1024 * 1024  # Spaces refuse files over 10 MB that are not in Git LFS


def _front_matter() -> dict:
    yaml = pytest.importorskip("yaml")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Spaces YAML front matter"
    block, sep, rest = text[4:].partition("\n---\n")
    assert sep, "the front matter of README.md is not closed by a '---' line"
    assert rest.lstrip().startswith("# "), "the README's title must follow the front matter"
    return yaml.safe_load(block)


def _requirements() -> tuple[list, list[str]]:
    from packaging.requirements import Requirement

    reqs, extras = [], None
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("# extras:"):
            extras = [e.strip() for e in line.removeprefix("# extras:").split(",") if e.strip()]
        if not line or line.startswith("#"):
            continue
        assert not line.startswith(("-", ".", "/")), f"requirements.txt: {line!r} is an option or a local path"
        reqs.append(Requirement(line))
    assert extras, "requirements.txt must name the extras it lists on a '# extras: ...' line"
    return reqs, extras


def _norm(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def test_front_matter_describes_a_gradio_space():
    import gradio

    meta = _front_matter()
    assert {"title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "pinned", "license",
            "short_description"} <= set(meta)
    assert meta["sdk"] == "gradio" and meta["pinned"] is False
    assert meta["sdk_version"] == gradio.__version__, "sdk_version must be the Gradio the app is tested with"
    assert (REPO / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    assert meta["colorFrom"] in SPACE_COLORS and meta["colorTo"] in SPACE_COLORS
    assert 0 < len(meta["short_description"]) <= 60  # the Hub's limit
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == project["license"].lower()
    python = str(meta.get("python_version", "3.10"))
    from packaging.specifiers import SpecifierSet

    assert python in SpecifierSet(project["requires-python"])


def test_requirements_match_pyproject_and_constraints():
    from packaging.specifiers import SpecifierSet

    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs, extras = _requirements()
    unknown = [e for e in extras if e not in project["optional-dependencies"]]
    assert not unknown, f"requirements.txt names extras {unknown} that pyproject.toml does not define"
    expected: dict[str, SpecifierSet] = {}
    for line in [*project["dependencies"], *(d for e in extras for d in project["optional-dependencies"][e])]:
        req = Requirement(line)
        expected[_norm(req.name)] = expected.get(_norm(req.name), SpecifierSet()) & req.specifier
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            req = Requirement(line.strip())
            pins[_norm(req.name)] = req.specifier
    listed = {_norm(r.name): r.specifier for r in reqs}
    assert len(listed) == len(reqs), "requirements.txt lists a package twice"
    missing = [f"{n}{pins.get(n, expected.get(n))}" for n in sorted({*expected, *pins} - set(listed))]
    assert not missing, f"add to requirements.txt: {missing}"
    extra = sorted(set(listed) - set(expected) - set(pins))
    assert not extra, f"requirements.txt lists {extra}, which neither pyproject.toml nor constraints.txt declares"
    for name, spec in listed.items():
        if name in pins:
            assert spec == pins[name], f"{name}: requirements.txt has '{spec}', constraints.txt pins '{pins[name]}'"
            version = next(iter(spec)).version
            assert version in expected.get(name, SpecifierSet()), f"the {name} pin {version} breaks pyproject.toml"
        else:
            assert spec == expected[name], f"{name}: requirements.txt has '{spec}', pyproject.toml '{expected[name]}'"


def test_space_runs_the_gradio_it_declares():
    """The Gradio of sdk_version satisfies requirements.txt (the Space installs that version over it)."""
    meta = _front_matter()
    reqs, extras = _requirements()
    assert "demo" in extras
    gradio_req = next(r for r in reqs if _norm(r.name) == "gradio")
    assert meta["sdk_version"] in gradio_req.specifier


def test_space_files():
    entry = (REPO / "app.py").read_text()
    assert "from demos.app import main" in entry and '"0.0.0.0"' in entry  # a Space must listen on all interfaces
    examples = REPO / "demos" / "examples"
    for path in examples.rglob("*"):
        if path.is_file():
            assert path.stat().st_size < LFS_LIMIT, f"{path} is over 10 MB: Spaces need Git LFS for it"
    for data in examples.rglob("*.csv"):
        assert list(data.parent.glob("LICENSE*")), f"{data} is shipped without its licence"
        assert (data.parent / "README.md").is_file()


# -- ZeroGPU -------------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_spaces(monkeypatch):
    """A stand-in for the `spaces` package that records what its GPU decorator wrapped."""
    module = types.ModuleType("spaces")
    module.calls = []

    def gpu(fn=None, *, duration=None):
        def wrap(func):
            module.calls.append((func.__name__, duration))

            def on_gpu(*args, **kwargs):
                return ("gpu", func(*args, **kwargs))

            return on_gpu

        return wrap(fn) if fn is not None else wrap

    module.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", module)
    return module


def _double(x):
    return 2 * x


def test_gpu_function_decorates_only_on_zero_gpu(monkeypatch, fake_spaces):
    from demos._spaces import gpu_function, zero_gpu_active

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert not zero_gpu_active()
    assert gpu_function(_double) is _double and gpu_function(duration=30)(_double) is _double
    monkeypatch.setenv("SPACES_ZERO_GPU", "false")
    assert gpu_function(_double) is _double
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zero_gpu_active()
    assert gpu_function(_double)(4) == ("gpu", 8)
    assert gpu_function(duration=120)(_double)(1) == ("gpu", 2)
    assert fake_spaces.calls == [("_double", None), ("_double", 120)]


def test_gpu_function_is_a_no_op_without_the_spaces_package(monkeypatch):
    from demos._spaces import gpu_function, zero_gpu_active

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # makes `import spaces` raise ImportError
    assert not zero_gpu_active()
    assert gpu_function(_double) is _double
