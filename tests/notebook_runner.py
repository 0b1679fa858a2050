"""Execute a course notebook with nbclient, papermill-style: parameters injected after the cell
tagged ``parameters``, so CI can shorten training while learners get the full run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def inject_parameters(nb: nbformat.NotebookNode, assignments: str) -> None:
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.metadata.get("tags", []):
            nb.cells.insert(index + 1, nbformat.v4.new_code_cell(assignments))
            return
    raise ValueError("notebook has no cell tagged 'parameters'")


def execute(path: Path, parameters: str | None = None, timeout: int = 900) -> nbformat.NotebookNode:
    """Run the notebook top to bottom; raises nbclient's CellExecutionError at the first error."""
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def stdout_of(nb: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )


def result_line(nb: nbformat.NotebookNode) -> dict:
    """The JSON the training section prints after ``RESULT `` (training time, test IoU, accuracy)."""
    for line in stdout_of(nb).splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError("the notebook printed no RESULT line")
