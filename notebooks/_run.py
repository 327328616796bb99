"""Execute a teaching notebook (a jupytext percent-format ``.py`` file) headlessly, with parameter overrides.

The notebooks keep their settings in one cell tagged ``parameters`` (papermill's convention). This helper reads a
notebook with jupytext, inserts a cell tagged ``injected-parameters`` after that cell with the values given, runs
every cell in a fresh kernel with nbclient and can save the executed ``.ipynb``. The test suite runs each notebook
through it; from the repository root you can use it to run one on your own data::

    python notebooks/_run.py notebooks/01_things_eeg_tour.py -p DATA '"/data/things-eeg"' -o tour.ipynb
    python notebooks/_run.py notebooks/06_your_own_eeg.py -p RECORDINGS '"my_eeg/*.csv"' -p TARGET '"native"'

A value is read as a Python literal (``3``, ``"text"``, ``{"face": 2}``) and otherwise kept as a string. The kernel
starts in the notebook's folder (as Jupyter does) unless ``--cwd`` says otherwise, so relative paths in the
parameters cell resolve against the notebook. The helper lives beside the notebooks rather than in the library: it
needs jupytext, nbclient and ipykernel (the ``test`` extra), which the library does not.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def read_notebook(path: str | os.PathLike) -> Any:
    """Read a jupytext percent-format ``.py`` notebook (or an ``.ipynb``) as an nbformat notebook.

    Parameters
    ----------
    path : str | os.PathLike
        The notebook file.

    Returns
    -------
    nbformat.NotebookNode
        The notebook, without outputs.
    """
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"Notebook '{path}' does not exist; pass a file from the notebooks/ folder.")
    return jupytext.read(path)


def _parameters_index(nb: Any) -> int | None:
    for idx, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.metadata.get("tags", []):
            return idx
    return None


def parameter_names(path_or_nb: str | os.PathLike | Any) -> list[str]:
    """Names assigned in a notebook's ``parameters`` cell, in order (empty when it has none).

    Parameters
    ----------
    path_or_nb : str | os.PathLike | nbformat.NotebookNode
        A notebook file or an already read notebook.

    Returns
    -------
    list of str
        The parameter names.
    """
    nb = read_notebook(path_or_nb) if isinstance(path_or_nb, (str, os.PathLike)) else path_or_nb
    idx = _parameters_index(nb)
    if idx is None:
        return []
    names: list[str] = []
    for node in ast.parse(nb.cells[idx].source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and name.id not in names:
                    names.append(name.id)
    return names


def _literal(name: str, value: Any) -> str:
    """``repr(value)`` when it reads back as the same Python literal (paths become strings)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        same = False
    if not same:
        raise ToolkitError(
            f"Parameter {name} = {text} is not a plain literal (number, string, bool, None, list, tuple or dict); "
            "pass a value that can be written into the notebook as code."
        )
    return text


def inject_parameters(nb: Any, parameters: Mapping[str, Any], *, label: str = "the notebook") -> Any:
    """Insert a cell tagged ``injected-parameters`` after the ``parameters`` cell (papermill's convention).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook, changed in place.
    parameters : mapping of str to Any
        Names of the parameters cell and their new values (Python literals).
    label : str
        How to name the notebook in error messages.

    Returns
    -------
    nbformat.NotebookNode
        The same notebook.
    """
    import nbformat

    if not parameters:
        return nb
    idx = _parameters_index(nb)
    if idx is None:
        raise ToolkitError(f"{label} has no cell tagged 'parameters', so parameters cannot be set; edit it directly.")
    known = parameter_names(nb)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise ToolkitError(f"{label} has no parameter(s) {unknown}; its parameters are {known}.")
    source = "# Parameters set by notebooks/_run.py\n" + "\n".join(
        f"{name} = {_literal(name, value)}" for name, value in parameters.items()
    )
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(idx + 1, cell)
    return nb


def execute_notebook(
    path: str | os.PathLike,
    *,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 600,
    output: str | os.PathLike | None = None,
    kernel_name: str = "python3",
) -> tuple[Any, float]:
    """Run every cell of a notebook in a fresh kernel and return the executed notebook.

    Parameters
    ----------
    path : str | os.PathLike
        A jupytext percent-format ``.py`` notebook (or an ``.ipynb``).
    parameters : mapping of str to Any | None
        Overrides of the ``parameters`` cell (see :func:`inject_parameters`).
    cwd : str | os.PathLike | None
        Working directory of the kernel; ``None`` is the notebook's folder, as in Jupyter.
    timeout : float
        Seconds allowed per cell.
    output : str | os.PathLike | None
        Where to write the executed notebook (``.ipynb``); written even when a cell fails, so the error can be
        read in context.
    kernel_name : str
        Jupyter kernel to start.

    Returns
    -------
    tuple of (nbformat.NotebookNode, float)
        The executed notebook and the wall time in seconds.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        When a cell raises; the message holds the cell's traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = read_notebook(path)
    inject_parameters(nb, parameters or {}, label=f"Notebook '{path}'")
    workdir = Path(cwd) if cwd is not None else path.resolve().parent
    if not workdir.is_dir():
        raise ToolkitError(f"Working directory '{workdir}' does not exist; create it or pass another one.")
    # Figures render inline as in Jupyter: a backend forced for the parent process (MPLBACKEND=Agg in the tests)
    # would keep the kernel's matplotlib from showing them.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    # Torch's OpenMP threads wait for each other by spinning; on a shared machine (CI, a busy laptop) a spinning
    # thread takes the core its partner needs, and the small models' many short parallel sections become several
    # times slower (on the demo preset, two busy cores: the saliency notebook 116 s instead of 15 s, the training
    # notebook 504 s instead of 43 s). Waiting threads sleep instead, unless the caller chose otherwise.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(workdir)}}
    )
    start = time.perf_counter()
    try:
        client.execute(env=env)
    finally:
        seconds = time.perf_counter() - start
        if output is not None:
            nbformat.write(nb, str(output))
    return nb, seconds


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module notes)."""
    parser = argparse.ArgumentParser(description="Execute a jupytext notebook headlessly with parameter overrides.")
    parser.add_argument("notebook", help="the notebook (.py, jupytext percent format)")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="set a parameter; VALUE is a Python literal or else a string (repeatable)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", help="write the executed notebook here (.ipynb)")
    parser.add_argument("--cwd", help="kernel working directory (default: the notebook's folder)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    try:
        _, seconds = execute_notebook(
            args.notebook,
            parameters={name: _parse_value(value) for name, value in args.parameter},
            cwd=args.cwd,
            timeout=args.timeout,
            output=args.output,
        )
    except ToolkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except CellExecutionError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(f"{args.notebook}: executed in {seconds:.1f} s" + (f", saved to {args.output}" if args.output else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
