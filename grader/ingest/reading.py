"""Reading a submitted file: bytes -> a validated nbformat 4 notebook, or a learner's verdict.

Why this module exists: every file gets a verdict, however broken (DESIGN.md, invariants 1 and 2).
The file is read defensively (size cap, sniffed binary formats, JSON, nbformat major 4 only, schema
validation) and anything that is not a usable notebook raises `NotebookError` with a message
written for the learner; a notebook that only bends the schema is read anyway, with an
``invalid_notebook`` problem. `submission_hash` identifies a submitted file in results and journals.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.validator import ValidationError

from grader.ingest.model import NotebookError, Problem

_MAGIC_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
)
_RESUBMIT_HINT = "Open the notebook in Jupyter, save it, and submit the .ipynb file again."


def submission_hash(path: Path | str) -> str:
    """SHA-256 of the file's bytes: identifies a submission in results and journals."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_submission(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, at most ``max_bytes`` of them; `NotebookError` when missing or too big."""
    try:
        if not path.is_file():
            raise NotebookError(f"The submission {path.name!r} was not found or is not a file.")
        size = path.stat().st_size
        if size > max_bytes:
            raise NotebookError(_too_big_message(size, max_bytes))
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # the cap also holds for files that grow or lie
    except OSError as exc:
        raise NotebookError(f"The submission could not be read ({exc.strerror}).") from None
    return check_size(data, max_bytes)


def check_size(data: bytes, max_bytes: int) -> bytes:
    """``data`` when it is at most ``max_bytes`` long; `NotebookError` (too big) otherwise."""
    if len(data) > max_bytes:
        raise NotebookError(_too_big_message(len(data), max_bytes))
    return data


def _too_big_message(size: int, max_bytes: int) -> str:
    return (
        f"The notebook is {size / 1e6:.1f} MB, above the {max_bytes / 1e6:g} MB limit. "
        "Large outputs (images, long logs) make it this big: clear all outputs "
        "(Edit > Clear All Outputs), save, and submit again."
    )


def parse_json_bytes(data: bytes) -> Any:
    """Bytes to JSON, with a learner-readable reason for each way this fails."""
    if not data.strip():
        raise NotebookError(f"The submitted file is empty. {_RESUBMIT_HINT}")
    for magic, what in _MAGIC_SNIFF:
        if data.startswith(magic):
            raise NotebookError(
                f"The submitted file is not a Jupyter notebook: it looks like {what}. "
                "Submit the .ipynb file of your notebook."
            )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError(
            "The submitted file is not a Jupyter notebook: it is not UTF-8 text. "
            "Submit the .ipynb file of your notebook."
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            "The submitted file is not a valid notebook: its JSON is broken at "
            f"line {exc.lineno}, column {exc.colno} ({exc.msg}). The file may be truncated or "
            f"edited by hand. {_RESUBMIT_HINT}"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise NotebookError(
            f"The submitted file is not a valid notebook: its JSON cannot be read. {_RESUBMIT_HINT}"
        ) from None


def to_v4(nbdict: Any) -> tuple[NotebookNode, tuple[int, int], list[Problem]]:
    """Check the version, upgrade 4.x to the current minor, validate; refuse what is unusable."""
    if not isinstance(nbdict, Mapping):
        raise NotebookError("The submitted file is JSON but not a Jupyter notebook.")
    major, minor = nbdict.get("nbformat"), nbdict.get("nbformat_minor", 0)
    if not isinstance(major, int) or isinstance(major, bool) or not isinstance(minor, int):
        raise NotebookError(
            "The submitted file is JSON but not a Jupyter notebook (it has no 'nbformat' version)."
        )
    if major < 4:
        raise NotebookError(
            f"This notebook uses the old format version {major} (IPython 3 or earlier), which "
            "the grader does not read. Open it in a current Jupyter, save it (that converts it "
            "to version 4), and submit again."
        )
    if major > 4:
        raise NotebookError(
            f"This notebook uses format version {major}, newer than the version 4 the grader "
            "reads. Save it from the course's Jupyter environment and submit again."
        )
    problems: list[Problem] = []
    try:
        # to_notebook copies into fresh NotebookNodes and joins list-of-lines sources.
        nb = nbformat.v4.to_notebook_json(dict(nbdict))
        nb.setdefault("nbformat_minor", minor)
        if minor < nbformat.v4.nbformat_minor:
            nb = nbformat.v4.upgrade(nb, from_version=4, from_minor=minor)
    except Exception:  # any malformed structure: the learner needs a verdict, not a traceback
        raise NotebookError(
            f"The submitted file is not a valid Jupyter notebook. {_RESUBMIT_HINT}"
        ) from None
    if not _cells_usable(nb):
        raise NotebookError(
            "The submitted notebook is damaged: its cells cannot be read. " + _RESUBMIT_HINT
        )
    try:
        with warnings.catch_warnings():  # e.g. MissingIDFieldWarning: fixed in place, harmless
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except ValidationError as exc:
        reason = str(getattr(exc, "message", exc)).splitlines()[0][:200]
        problems.append(
            Problem(
                kind="invalid_notebook",
                message=(
                    "The notebook does not fully follow the Jupyter format "
                    f"({reason}); the grader read its code cells anyway."
                ),
            )
        )
    except Exception:  # validator crashes on pathological input; cells were checked above
        problems.append(
            Problem(
                kind="invalid_notebook",
                message="The notebook could not be validated; the grader read its code cells anyway.",
            )
        )
    return nb, (major, minor), problems


def _cells_usable(nb: Any) -> bool:
    cells = nb.get("cells") if isinstance(nb, Mapping) else None
    if not isinstance(cells, list):
        return False
    for cell in cells:
        if not isinstance(cell, Mapping) or not isinstance(cell.get("cell_type"), str):
            return False
        if cell.get("cell_type") == "code" and not isinstance(cell.get("source", ""), str):
            return False
    return True
