"""The teaching notebooks: each runs top to bottom in a fresh kernel, offline, in tiny mode (STYLE.md rule 11).

Every ``notebooks/NN_*.py`` file is picked up, so a new notebook is tested as soon as it lands. A notebook runs in a
temporary working directory with the session's isolated ``EEG_TOOLKIT_HOME`` (the demo bundle is built once, from the
``tiny`` preset, and shared by the notebooks of this worker). Parameters in ``TEST_PARAMETERS`` replace a notebook's
defaults when its parameters cell declares them; paths to the shared real recordings come from the conftest fixtures
(the test is skipped when they are absent). The runner itself (``notebooks/_run.py``) is tested without a kernel.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path

import pytest

from toolkit import ToolkitError

pytest.importorskip("jupytext")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("[0-9]*.py"))
# Overrides applied to every notebook that declares the parameter: the simulator's smallest preset.
TEST_PARAMETERS = {"PRESET": "tiny"}
# Seconds allowed per cell (the slowest cell, a first demo-bundle build on two busy cores, takes about 15 s).
CELL_TIMEOUT = 240

logger = logging.getLogger(__name__)


def _load_runner():
    spec = importlib.util.spec_from_file_location("notebooks_run", NOTEBOOK_DIR / "_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _load_runner()


def _parameters(path: Path, request: pytest.FixtureRequest) -> dict:
    declared = run.parameter_names(path)
    params = {name: value for name, value in TEST_PARAMETERS.items() if name in declared}
    if "RECORDINGS" in declared:  # notebook 06: the real N170 recordings beside the repository
        recordings = request.getfixturevalue("n170_dir") / "recordings"
        if not any(recordings.glob("*.csv")):
            pytest.skip(f"no recordings in {recordings}")
        params["RECORDINGS"] = str(recordings / "*.csv")
    return params


def _check_executed(nb, label: str) -> int:
    """Every code cell ran without an error output; returns the number of images the notebook displayed."""
    images = 0
    for idx, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("execution_count") is not None, f"{label}: cell {idx} did not run"
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"{label}: cell {idx} raised {output.get('ename')}"
            data = output.get("data", {})
            images += "image/png" in data or "application/vnd.plotly.v1+json" in data
    return images


@pytest.mark.notebooks
@pytest.mark.xdist_group(name="notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    params = _parameters(path, request)
    nb, seconds = run.execute_notebook(path, parameters=params, cwd=tmp_path, timeout=CELL_TIMEOUT)
    request.node.user_properties.append(("seconds", round(seconds, 1)))
    logger.info("%s ran in %.1f s with %s", path.name, seconds, params)
    assert _check_executed(nb, path.name) >= 2, f"{path.name} displayed fewer than two figures"
    injected = [c for c in nb.cells if run.INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(injected) == (1 if params else 0)
    assert not any(tmp_path.iterdir()), f"{path.name} left files in its working directory"


@pytest.mark.notebooks
@pytest.mark.xdist_group(name="notebooks")
def test_things_tour_on_an_official_root(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Notebook 01 on a folder in the official THINGS-EEG layout: the real-data branch, by changing DATA only."""
    from toolkit.data import simulate_dataset

    root = simulate_dataset(tmp_path / "things-eeg", "tiny", seed=3, n_subjects=1, show_progress=False).root
    work = tmp_path / "work"
    work.mkdir()
    path = NOTEBOOK_DIR / "01_things_eeg_tour.py"
    nb, seconds = run.execute_notebook(path, parameters={"DATA": str(root)}, cwd=work, timeout=CELL_TIMEOUT)
    request.node.user_properties.append(("seconds", round(seconds, 1)))
    _check_executed(nb, path.name)
    text = "\n".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "official test file" in text  # the official file was inspected, not only the store
    assert "times[50:300]" in text and "-0.200" in text  # the times quirk, read from the file
    assert "test combinations also in training: 0 of 8" in text  # the simulator's ground truth, found in the root


# -- structure: thin notebooks with one parameters cell ------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_thin_and_parametrised(path: Path) -> None:
    nb = run.read_notebook(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and run.PARAMETERS_TAG in code[0].metadata.get("tags", []), "the first code cell holds the parameters"
    assert sum(run.PARAMETERS_TAG in c.metadata.get("tags", []) for c in code) == 1
    assert run.parameter_names(nb), "the parameters cell assigns no name"
    for node in ast.walk(ast.parse(code[0].source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not Path(node.value).is_absolute(), f"absolute path {node.value!r} in the parameters cell"
    for idx, cell in enumerate(code):
        for node in ast.walk(ast.parse(cell.source)):
            # logic belongs in the package: a notebook only calls it
            assert not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)), (
                f"{path.name}: cell {idx} defines {node.name!r}; move it into the toolkit"
            )


# -- the runner ------------------------------------------------------------------------------------------------------
NOTEBOOK_TEXT = """# %% [markdown]
# A test notebook

# %% tags=["parameters"]
SIZE = 2
NAME: str = "a"
LOW, HIGH = 1.0, 2.0

# %%
print(SIZE * NAME, LOW + HIGH)
"""


@pytest.fixture
def small_notebook(tmp_path: Path) -> Path:
    path = tmp_path / "nb.py"
    path.write_text(NOTEBOOK_TEXT, encoding="utf-8")
    return path


def test_parameter_names_read_the_parameters_cell(small_notebook: Path) -> None:
    assert run.parameter_names(small_notebook) == ["SIZE", "NAME", "LOW", "HIGH"]


def test_injected_cell_follows_the_parameters_cell(small_notebook: Path) -> None:
    nb = run.inject_parameters(run.read_notebook(small_notebook), {"SIZE": 3, "NAME": Path("x")})
    idx = next(i for i, c in enumerate(nb.cells) if run.PARAMETERS_TAG in c.metadata.get("tags", []))
    injected = nb.cells[idx + 1]
    assert injected.metadata["tags"] == [run.INJECTED_TAG]
    namespace: dict = {}
    exec(compile(nb.cells[idx].source + "\n" + injected.source, "cells", "exec"), namespace)  # trusted test text
    assert (namespace["SIZE"], namespace["NAME"], namespace["LOW"]) == (3, "x", 1.0)


def test_unknown_or_unwritable_parameters_are_refused(small_notebook: Path) -> None:
    nb = run.read_notebook(small_notebook)
    with pytest.raises(ToolkitError, match=r"has no parameter\(s\) \['SIZ'\]; its parameters are \['SIZE'"):
        run.inject_parameters(nb, {"SIZ": 3})
    with pytest.raises(ToolkitError, match=r"SIZE = <object .*> is not a plain literal"):
        run.inject_parameters(nb, {"SIZE": object()})


def test_notebook_without_parameters_cell(tmp_path: Path) -> None:
    path = tmp_path / "plain.py"
    path.write_text("# %%\nx = 1\n", encoding="utf-8")
    assert run.parameter_names(path) == []
    with pytest.raises(ToolkitError, match="has no cell tagged 'parameters'"):
        run.inject_parameters(run.read_notebook(path), {"x": 2}, label=f"Notebook '{path}'")
    with pytest.raises(ToolkitError, match="does not exist"):
        run.read_notebook(tmp_path / "missing.py")


def test_cli_reports_bad_parameters_on_one_line(small_notebook: Path, capsys: pytest.CaptureFixture) -> None:
    assert run.main([str(small_notebook), "-p", "WIDTH", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "WIDTH" in err and "\n" not in err
