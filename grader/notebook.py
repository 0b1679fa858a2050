"""Ingestion: turn a submitted notebook into a Python module that only *defines* things.

Why this stage exists: a learner's notebook also trains models, plots, installs packages and
may loop forever. The grader must load the learner's definitions without running any of that,
and must give every file a verdict, however broken (DESIGN.md, invariants 1 and 2). So:

* the file is read defensively (size cap, sniffed binary formats, JSON, nbformat major 4 only,
  schema validation) and anything that is not a usable notebook raises `NotebookError` with a
  message written for the learner;
* IPython syntax (``%magic``, ``%%cell_magic``, ``!shell``) is rewritten by IPython's own
  `TransformerManager` into ``get_ipython()...`` calls, which are then dropped like any other
  top-level expression;
* the graded parts (`GRADED_PARTS`) are found by cell tag, ``# GRADED: <name>`` header or plain
  definition name, and only what they need is kept (see "The keep rule" below).

The keep rule, applied to top-level statements of parseable code cells, in notebook order:

1. Every import is kept (also imports nested in a top-level ``try``/``if``), hoisted to the top
   and wrapped in ``try: ... except ImportError: pass``, so that an unused Colab-only import
   cannot sink the whole submission; ``from __future__`` imports go first, unwrapped.
2. Function and class definitions are kept when a graded part needs them (transitive closure
   over the global names their bodies, decorators, defaults and bases use).
3. A simple assignment (``NAME = expr``, ``A, B = expr``, ``NAME: T = expr``, ``NAME += expr``)
   is a *constant* and is kept when needed, if ``expr`` runs no learner code: every name it uses
   is an import, a builtin or another constant defined above it; every call it makes is on an
   imported name (``np.array([...])``), a pure builtin (``range``, ``len``, ``dict``...), a string
   literal's method, or a learner *generator* function (calling one runs none of its body, which
   is how the original course builds ``test_datagen = data_generator(1)``); no ``await``,
   ``yield`` or ``:=``. Lambdas are allowed (their bodies do not run).
   Exception: assignments in cells tagged ``setup`` (course-provided set-up code such as rendering
   the emojis) are kept as written, helper calls included; they still run only inside the sandbox.
4. Everything else (bare expressions such as ``model.fit(...)`` or ``plt.show()``, ``for``,
   ``while``, ``with``, ``if``, ``try``, assignments that call learner code) is dropped. If a kept
   definition uses a global that only dropped code sets, a ``dropped_dependency`` problem says so;
   if dropped code changes a kept global that a graded part uses (a loop filling
   ``emojis[i]['image']``), a ``dropped_statement`` problem names that statement's cell and line
   and what the course provides instead.

Ingestion also looks for the original guided project's idioms (`CourseFinding`, one per
`Difference`): a notebook with two or more kinds is told, at the top of its report, what differs
here and the line to write (`DIFFERENCES`, also in the learner notebook's first cell).

Name resolution follows "run the notebook top to bottom": a definition-time reference (a
constant's value, a decorator, a default, a base class) sees the last binding *above* it; a
reference from a function body sees the last binding in the notebook. A graded name always
resolves to its last ``def``/``class``; other rebindings of it (``lr_schedule =
LearningRateScheduler(lr_schedule)``) are ignored.

Cell numbers in messages count from 1 over all cells, markdown included; the ``cell_index``
fields are the 0-based index into ``nb.cells``. Line numbers are 1-based within the cell.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import re
import symtable
import warnings
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode
from nbformat.validator import ValidationError

#: The graded parts, in the course notebook's order (the one list: runner and tests derive theirs).
GRADED_PARTS: tuple[str, ...] = (
    "create_example",
    "plot_bounding_box",
    "data_generator",
    "IoU",
    "create_model",
    "ShowTestImages",
    "lr_schedule",
)
GRADED_TAG = "graded"
#: Cells the course provides (rendering the emojis, measuring the box): their assignments are kept
#: even when they call the notebook's own helper functions, since graded parts depend on them.
SETUP_TAG = "setup"
DEFAULT_MAX_BYTES = 20_000_000  # a notebook with cleared outputs is well under 1 MB

FoundBy = Literal["tag", "header", "name"]
ProblemKind = Literal[
    "bad_file",
    "invalid_notebook",
    "missing_part",
    "syntax_error",
    "duplicate_definition",
    "not_attempted",
    "dropped_dependency",
    "dropped_statement",
]

_HEADER_RE = re.compile(r"#\s*GRADED\s*:\s*([A-Za-z_]\w*)", re.IGNORECASE)
# Cell magics whose body IPython runs in the user namespace, so definitions inside them count.
_TRANSPARENT_CELL_MAGICS = frozenset({"time", "capture"})
# Builtins that a constant's value may call: pure, no I/O, no code execution.
_SAFE_BUILTIN_CALLS = frozenset(
    {
        "abs", "all", "any", "bool", "bytes", "chr", "complex", "dict", "divmod", "enumerate",
        "float", "frozenset", "int", "isinstance", "len", "list", "max", "min", "ord", "pow",
        "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple",
        "zip",
    }
)  # fmt: skip
_BUILTIN_NAMES = frozenset(dir(builtins))
_MAGIC_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
)
_RESUBMIT_HINT = "Open the notebook in Jupyter, save it, and submit the .ipynb file again."


class NotebookError(Exception):
    """The file is not a usable notebook; `message` is meant for the learner, verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_problem(self) -> Problem:
        """The same verdict as a `Problem`, for reports that list problems uniformly."""
        return Problem(kind="bad_file", message=self.message)


@dataclass(frozen=True)
class Problem:
    """Something the learner should know about; ``message`` is written for them."""

    kind: ProblemKind
    message: str
    part: str | None = None
    cell_index: int | None = None  # 0-based index into nb.cells
    line: int | None = None  # 1-based line within that cell


class Difference(Enum):
    """What differs from the original guided project (TF 2.4, Keras 2) that its learners know."""

    RNG = "rng"
    MODEL = "create_model"
    EMOJIS = "emoji_tiles"
    METRIC = "metric"
    PLOT = "pred_coords"
    CALLBACK = "figures"
    SCHEDULE = "schedule"
    KERAS3 = "keras3"


@dataclass(frozen=True)
class DifferenceRow:
    original: str  # what the original course did
    here: str  # what this course asks
    line: str  # the line to write


#: The table shown in the notebook's first cell, the bundle README and, for the rows that apply,
#: at the top of the report of a notebook written the original course's way.
DIFFERENCES: dict[Difference, DifferenceRow] = {
    Difference.RNG: DifferenceRow(
        "`create_example()`, `data_generator(batch_size)` draw from `np.random`",
        "they take a seed: `create_example(rng=None)`, `data_generator(batch_size=16, rng=None)`",
        "`rng = np.random.default_rng(rng)`, then `rng.integers(0, 9)` for `np.random.randint(0, 9)`",
    ),
    Difference.MODEL: DifferenceRow(
        "the model is built and compiled in notebook cells (`model = tf.keras.models.Model(...)`)",
        "`create_model()` builds, compiles and returns it; top-level code is not graded",
        "`def create_model():` that builds the model, compiles it (`model.compile`) and returns it",
    ),
    Difference.EMOJIS: DifferenceRow(
        "emojis loaded from PNG files into `emojis[class_id]['image']` by a loop",
        "the set-up cell renders them from the OpenMoji font into `emoji_tiles` (9x72x72x3 uint8)",
        "`emoji_tiles[class_id]` where you wrote `np.array(emojis[class_id]['image'])`",
    ),
    Difference.METRIC: DifferenceRow(
        "`IoU` keeps a tensor made in `update_state` and calls `add_weight` in `reset_state`; "
        "its area is not clamped, so disjoint boxes score ~0.74",
        "state in variables, the value computed in `result()`, reset to zero; disjoint boxes "
        "score 0",
        '`self.total = self.add_variable(shape=(), initializer="zeros", name="total")`; '
        "`self.total.assign_add(...)` in `update_state`; `self.total.assign(0.0)` in "
        "`reset_state`; the overlap's height and width clamped at 0",
    ),
    Difference.PLOT: DifferenceRow(
        "`plot_bounding_box(image, gt_coords, pred_coords=[], norm=False)`",
        "no prediction is `pred_coords=None`; the caller's image is never changed",
        "`if pred_coords is not None:`; `image = image * 255` (a new array, not `image *= 255`)",
    ),
    Difference.CALLBACK: DifferenceRow(
        "`ShowTestImages.on_epoch_end` draws with `plt.show()`",
        "keep the stub's `__init__(self, test_data=None, num_images=6, show=True)`; keep each "
        "figure",
        "`self.figures.append(...)` with each figure drawn",
    ),
    Difference.SCHEDULE: DifferenceRow(
        "every 5th epoch `lr *= 0.2`, floor `3e-7`",
        "keep `lr` for `HOLD_EPOCHS` epochs, then halve it each epoch, never below `MIN_LR`",
        "`def lr_schedule(epoch, lr):` returning the new rate from `HOLD_EPOCHS` and `MIN_LR` "
        "(the notebook's constants)",
    ),
    Difference.KERAS3: DifferenceRow(
        "Keras 2: `tf.keras`, `fit_generator`, `keras.backend.set_value`, "
        "`fit(workers=, use_multiprocessing=)`, `Adam(lr=)`",
        "Keras 3: `import keras`; those APIs are gone",
        "`model.fit(generator, ...)`; `model.optimizer.learning_rate.assign(v)`; drop `workers=` "
        "and `use_multiprocessing=`; `Adam(learning_rate=...)`",
    ),
}


def differences_markdown(kinds: Iterator[Difference] | None = None) -> str:
    """The differences table as Markdown (all rows, or those of ``kinds`` in table order)."""
    wanted = set(kinds) if kinds is not None else set(DIFFERENCES)
    rows = [
        "| the original guided project | here | the line to write |",
        "|---|---|---|",
    ]
    rows += [
        f"| {row.original} | {row.here} | {row.line} |"
        for kind, row in DIFFERENCES.items()
        if kind in wanted
    ]
    return "\n".join(rows)


@dataclass(frozen=True)
class CourseFinding:
    """One original-course idiom found in a submission, where, and the table row it calls for."""

    difference: Difference
    evidence: str  # what was found, for the learner
    cell_index: int | None = None
    line: int | None = None

    @property
    def row(self) -> DifferenceRow:
        return DIFFERENCES[self.difference]


def original_course_rows(findings: tuple[CourseFinding, ...]) -> list[dict[str, Any]]:
    """The table rows that apply to a submission, with where each idiom was found (JSON-ready,
    for the report)."""
    rows = []
    for finding in findings:
        where = f"cell {finding.cell_index + 1}, line {finding.line}" if finding.line else ""
        rows.append(
            {
                "difference": finding.difference.value,
                "found": finding.evidence,
                "where": where,
                "original": finding.row.original,
                "here": finding.row.here,
                "line": finding.row.line,
            }
        )
    return rows


def original_course_text(findings: tuple[CourseFinding, ...]) -> str:
    """The summary's opening for a notebook written the original course's way (plain text)."""
    lines = [
        "Your notebook looks written for the original guided project (TF 2.4, Keras 2). "
        "What differs here, and the line to write:"
    ]
    for row in original_course_rows(findings):
        where = f" ({row['where']})" if row["where"] else ""
        lines.append(f"- {row['found']}{where}: {row['here']}. Write: {row['line']}")
    return "\n".join(lines).replace("`", "")


@dataclass(frozen=True)
class PartInfo:
    """Where a graded part was found and what it looks like, for the report."""

    name: str
    cell_index: int  # 0-based index into nb.cells
    line: int  # 1-based line of the definition (or its first decorator) within the cell
    found_by: FoundBy
    source: str  # the definition's text, decorators included
    attempted: bool  # False while the body is still the ``raise NotImplementedError()`` stub


@dataclass(frozen=True)
class IngestedNotebook:
    """The result of ingestion: ``source``, exec'd in a fresh namespace, defines the parts."""

    source: str
    parts: dict[str, PartInfo]
    problems: list[Problem]
    nbformat_version: tuple[int, int]  # as submitted, before any upgrade
    sha256: str  # of the submitted bytes (of canonical JSON for `ingest_notebook`)
    #: Signs that the notebook was written for the original guided project (see `Difference`).
    original_course: tuple[CourseFinding, ...] = ()

    @property
    def looks_original(self) -> bool:
        """Two or more kinds of original-course idiom: the report opens with their rows."""
        return len({f.difference for f in self.original_course}) >= 2

    @property
    def missing(self) -> tuple[str, ...]:
        """Graded parts that could not be found, in `GRADED_PARTS` order."""
        return tuple(name for name in GRADED_PARTS if name not in self.parts)


# --------------------------------------------------------------------------- public API


def submission_hash(path: Path | str) -> str:
    """SHA-256 of the file's bytes: identifies a submission in results and journals."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ingest(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> IngestedNotebook:
    """Read, validate and ingest a submitted notebook file.

    Raises `NotebookError` when the file is not a usable notebook (too big, empty, not JSON,
    not nbformat 4, no graded part at all); everything else is reported in ``problems``.
    """
    p = Path(path)
    try:
        if not p.is_file():
            raise NotebookError(f"The submission {p.name!r} was not found or is not a file.")
        size = p.stat().st_size
        if size > max_bytes:
            raise NotebookError(_too_big_message(size, max_bytes))
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # the cap also holds for files that grow or lie
    except OSError as exc:
        raise NotebookError(f"The submission could not be read ({exc.strerror}).") from None
    if len(data) > max_bytes:
        raise NotebookError(_too_big_message(len(data), max_bytes))
    nbdict = _parse_json_bytes(data)
    result = _ingest_dict(nbdict)
    return replace(result, sha256=hashlib.sha256(data).hexdigest())


def ingest_notebook(nb: NotebookNode | Mapping[str, Any]) -> IngestedNotebook:
    """Ingest an in-memory notebook (any nbformat 4 minor); the caller's object is not modified."""
    if not isinstance(nb, Mapping):
        raise NotebookError("This is not a Jupyter notebook (expected a JSON object).")
    return _ingest_dict(nb)


# --------------------------------------------------------------------------- reading


def _too_big_message(size: int, max_bytes: int) -> str:
    return (
        f"The notebook is {size / 1e6:.1f} MB, above the {max_bytes / 1e6:g} MB limit. "
        "Large outputs (images, long logs) make it this big: clear all outputs "
        "(Edit > Clear All Outputs), save, and submit again."
    )


def _parse_json_bytes(data: bytes) -> Any:
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


def _to_v4(nbdict: Any) -> tuple[NotebookNode, tuple[int, int], list[Problem]]:
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


# --------------------------------------------------------------------------- cells to statements

_Kind = Literal["import", "def", "assign", "other"]


@dataclass(eq=False)
class _Stmt:
    order: int  # position in notebook order, over all kept-or-dropped statements
    cell_index: int
    line: int  # 1-based line in the original cell
    node: ast.stmt
    text: str
    kind: _Kind
    binds: frozenset[str]
    early: frozenset[str] = frozenset()  # global names used when the statement runs
    late: frozenset[str] = frozenset()  # global names used when its functions are called
    call_roots: frozenset[str] = frozenset()  # for assignments: names at the root of calls
    simple: bool = False  # for assignments: passes the structural part of the constant rule


@dataclass
class _Cell:
    index: int
    tagged: bool
    header: str | None
    error: Problem | None = None
    raw: str = ""


@dataclass
class _Parsed:
    cells: list[_Cell] = field(default_factory=list)
    stmts: list[_Stmt] = field(default_factory=list)
    imports: list[_Stmt] = field(default_factory=list)


def _cell_tags(cell: Mapping[str, Any]) -> list[str]:
    meta = cell.get("metadata")
    tags = meta.get("tags") if isinstance(meta, Mapping) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _cell_header(source: str) -> str | None:
    """The part named by the first line that is neither blank nor a magic (``%%time``)."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("%"):
            match = _HEADER_RE.match(stripped)
            return match.group(1) if match else None
    return None


def _parse_cells(nb: NotebookNode) -> _Parsed:
    parsed = _Parsed()
    transformer = TransformerManager()
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        raw = cell.get("source", "").replace("\r\n", "\n").replace("\r", "\n")
        info = _Cell(index, GRADED_TAG in _cell_tags(cell), _cell_header(raw), raw=raw)
        parsed.cells.append(info)
        if not raw.strip():
            continue
        try:
            _add_source(parsed, info, raw, 0, transformer)
        except _CellSyntaxError as exc:
            info.error = Problem(
                kind="syntax_error",
                message=f"Cell {index + 1}, line {exc.line}: {exc.reason}. "
                "The code in this cell was not graded.",
                cell_index=index,
                line=exc.line,
            )
    return parsed


class _CellSyntaxError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _add_source(
    parsed: _Parsed, cell: _Cell, raw: str, line_offset: int, tm: TransformerManager
) -> None:
    """Transform IPython syntax, parse, and record the cell's top-level statements."""
    # IPython drops leading blank lines; count them so line numbers match the cell.
    stripped = raw.lstrip(" \t\n")
    line_offset += raw[: len(raw) - len(stripped)].count("\n")
    try:
        text = tm.transform_cell(raw)
    except Exception:  # the transformer is best effort; plain Python needs none
        text = raw
    try:
        with warnings.catch_warnings():  # SyntaxWarnings about learner code are not ours
            warnings.simplefilter("ignore")
            tree = compile(
                text,
                f"<cell {cell.index + 1}>",
                "exec",
                flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                dont_inherit=True,
            )
    except SyntaxError as exc:
        line = (exc.lineno or 1) + line_offset
        raise _CellSyntaxError(line, f"syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = "the code is nested too deeply" if not isinstance(exc, ValueError) else str(exc)
        raise _CellSyntaxError(line_offset + 1, f"cannot be read: {reason}") from None
    assert isinstance(tree, ast.Module)
    body = _transparent_cell_magic_body(tree)
    if body is not None:
        # `%%time` on the first line: IPython runs the body as ordinary cell code.
        _add_source(parsed, cell, body, line_offset + 1, tm)
        return
    lines = text.split("\n")
    for node in tree.body:
        order = len(parsed.stmts)
        parsed.stmts.append(_make_stmt(order, cell, node, lines, line_offset))
        for imp in _nested_imports(node):
            parsed.imports.append(_make_stmt(order, cell, imp, lines, line_offset))


def _transparent_cell_magic_body(tree: ast.Module) -> str | None:
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "run_cell_magic"
        and isinstance(call.func.value, ast.Call)
        and isinstance(call.func.value.func, ast.Name)
        and call.func.value.func.id == "get_ipython"
        and len(call.args) == 3
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
    ):
        return None
    name, body = call.args[0].value, call.args[2].value  # type: ignore[attr-defined]
    return body if name in _TRANSPARENT_CELL_MAGICS else None


def _nested_imports(node: ast.stmt) -> Iterator[ast.stmt]:
    """Imports inside top-level ``try``/``if`` blocks (e.g. a guarded optional import)."""
    if isinstance(node, ast.Try | ast.If):
        blocks = [node.body, node.orelse]
        if isinstance(node, ast.Try):
            blocks.append(node.finalbody)
        for block in blocks:
            for child in block:
                if isinstance(child, ast.Import | ast.ImportFrom):
                    yield child
                else:
                    yield from _nested_imports(child)


def _segment(lines: list[str], node: ast.stmt) -> tuple[str, int]:
    """Exact source text of a top-level statement (decorators included) and its first line."""
    decorators = getattr(node, "decorator_list", None) or []
    if decorators:  # a top-level decorator's '@' is the first thing on its line
        start_line, start_col = min(d.lineno for d in decorators), 0
    else:
        start_line, start_col = node.lineno, node.col_offset
    end_line = node.end_lineno or start_line
    chunk = [ln.encode() for ln in lines[start_line - 1 : end_line]]
    if node.end_col_offset is not None:  # offsets are in UTF-8 bytes
        chunk[-1] = chunk[-1][: node.end_col_offset]
    chunk[0] = chunk[0][start_col:]
    return b"\n".join(chunk).decode("utf-8", errors="replace"), start_line


def _make_stmt(
    order: int, cell: _Cell, node: ast.stmt, lines: list[str], line_offset: int
) -> _Stmt:
    text, first_line = _segment(lines, node)
    stmt = _Stmt(
        order=order,
        cell_index=cell.index,
        line=first_line + line_offset,
        node=node,
        text=text,
        kind="other",
        binds=frozenset(),
    )
    if isinstance(node, ast.Import | ast.ImportFrom):
        stmt.kind = "import"
        stmt.binds = frozenset(
            (a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*"
        )
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        stmt.kind = "def"
        stmt.binds = frozenset({node.name})
        stmt.early, stmt.late = _scope_refs(text)
    elif (targets := _assign_targets(node)) is not None:
        stmt.kind = "assign"
        stmt.binds = frozenset(targets)
        early, stmt.late = _scope_refs(text)
        # `NAME += 1` reads NAME too, which symtable does not flag as a reference.
        stmt.early = early | stmt.binds if isinstance(node, ast.AugAssign) else early
        stmt.call_roots, stmt.simple = _call_roots(node)
    else:
        stmt.binds = frozenset(_stored_names(node))
    return stmt


def _assign_targets(node: ast.stmt) -> list[str] | None:
    """Names bound by a simple assignment, or None if it is not one."""
    if isinstance(node, ast.Assign):
        targets: list[ast.expr] = list(node.targets)
    elif isinstance(node, ast.AugAssign) or (
        isinstance(node, ast.AnnAssign) and node.value is not None and node.simple
    ):
        targets = [node.target]
    else:
        return None
    names: list[str] = []
    stack = targets
    while stack:
        target = stack.pop()
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, ast.Tuple | ast.List) and not isinstance(node, ast.AugAssign):
            stack.extend(target.elts)
        elif isinstance(target, ast.Starred) and isinstance(target.value, ast.Name):
            names.append(target.value.id)
        else:
            return None  # subscript/attribute targets mutate something: not a constant
    return names


def _stored_names(node: ast.AST) -> Iterator[str]:
    """Global names a dropped statement binds (not looking inside nested scopes)."""
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Store):
            yield current.id
        elif isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield current.name
            continue
        elif isinstance(current, ast.Import | ast.ImportFrom):
            yield from ((a.asname or a.name.split(".")[0]) for a in current.names)
            continue
        if isinstance(current, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp):
            continue
        if isinstance(current, ast.GeneratorExp):
            continue
        stack.extend(ast.iter_child_nodes(current))


def _scope_refs(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Global names a statement reads: at definition time (early) and at call time (late).

    Uses the compiler's own scope analysis (`symtable`), so locals, arguments, comprehension
    variables and closures are never mistaken for globals.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            top = symtable.symtable(text, "<statement>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(), frozenset()
    early = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    late: set[str] = set()

    def visit(table: symtable.SymbolTable, runs_now: bool) -> None:
        for child in table.get_children():
            kind = child.get_type()
            is_comprehension = child.get_name() in {"listcomp", "setcomp", "dictcomp", "genexpr"}
            child_runs_now = runs_now and (kind == "class" or is_comprehension)
            names = {
                s.get_name() for s in child.get_symbols() if s.is_referenced() and s.is_global()
            }
            (early if child_runs_now else late).update(names)
            visit(child, child_runs_now)

    visit(top, True)
    return frozenset(early), frozenset(late)


def _call_roots(node: ast.stmt) -> tuple[frozenset[str], bool]:
    """Names at the root of every call that runs when the assignment runs, and whether the
    value is structurally a constant expression (no await/yield/walrus, calls on names)."""
    value = getattr(node, "value", None)
    if value is None:
        return frozenset(), False
    roots: set[str] = set()
    stack: list[ast.AST] = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Lambda):
            continue  # its body does not run now
        if isinstance(current, ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr):
            return frozenset(), False
        if isinstance(current, ast.Call):
            root: ast.AST = current.func
            while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name):
                roots.add(root.id)
            elif not (isinstance(root, ast.Constant) and isinstance(root.value, str)):
                return frozenset(), False
        stack.extend(ast.iter_child_nodes(current))
    return frozenset(roots), True


# --------------------------------------------------------------------------- stubs


def _raises_not_implemented(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Raise) or stmt.exc is None:
        return False
    exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _is_filler(stmt: ast.stmt) -> bool:
    """Statements a stub may carry besides the raise: pass, ..., strings, super() calls."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr):
        value = stmt.value
        if isinstance(value, ast.Constant):
            return True
        if isinstance(value, ast.Call):
            root: ast.AST = value.func
            while isinstance(root, ast.Attribute):
                root = root.value
            return (
                isinstance(root, ast.Call)
                and isinstance(root.func, ast.Name)
                and root.func.id == "super"
            )
    return False


def _is_stub_function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    real = [s for s in fn.body if not _is_filler(s)]
    return len(real) == 1 and _raises_not_implemented(real[0])


def _is_attempted(node: ast.stmt) -> bool:
    """Unattempted while the stub's ``raise NotImplementedError`` is still anywhere in the function
    (the course's stubs keep given lines such as ``rng = np.random.default_rng(rng)`` before it),
    or, for a class, in any of its methods."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return not any(
            isinstance(inner, ast.stmt) and _raises_not_implemented(inner)
            for inner in ast.walk(node)
        )
    return True


def _is_generator_function(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef):
        return False
    stack: list[ast.AST] = list(node.body)
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Yield | ast.YieldFrom):
            return True
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return False


# --------------------------------------------------------------------------- resolution


class _Resolver:
    """Answers "which statement binds NAME, seen from here", running top to bottom.

    Lookups bisect per-name lists and keepability is computed in one forward pass (a constant
    only depends on statements above it), so a hostile notebook cannot make this quadratic or
    recurse deeply.
    """

    def __init__(
        self, stmts: list[_Stmt], imports: list[_Stmt], setup_cells: frozenset[int] = frozenset()
    ) -> None:
        self.bindings: dict[str, list[_Stmt]] = {}
        graded = set(GRADED_PARTS)
        for stmt in stmts:  # already in notebook order
            for name in stmt.binds:
                if name in graded and stmt.kind != "def":
                    continue  # a graded name is its definition; rebinding it is not
                self.bindings.setdefault(name, []).append(stmt)
        self._orders = {name: [s.order for s in lst] for name, lst in self.bindings.items()}
        # An import nested in a top-level try/if binds at its enclosing statement's position.
        self.nested = {(imp.order, name): imp for imp in imports for name in imp.binds}
        self._keepable: dict[int, bool] = {}
        for stmt in stmts:
            if stmt.kind == "assign" and stmt.cell_index in setup_cells:
                self._keepable[stmt.order] = True  # course-provided set-up: runs as written
            elif stmt.kind == "assign" and stmt.simple:
                names = stmt.early | stmt.call_roots
                self._keepable[stmt.order] = all(self._ref_ok(stmt, n) for n in names)

    def resolve(self, name: str, before: int | None) -> _Stmt | None:
        candidates = self.bindings.get(name)
        if not candidates:
            return None
        count = len(candidates) if before is None else bisect_left(self._orders[name], before)
        if count == 0:
            return None
        found = candidates[count - 1]
        return self.nested.get((found.order, name), found)

    def definitions(self, name: str) -> list[_Stmt]:
        return [s for s in self.bindings.get(name, []) if s.kind == "def"]

    def keepable(self, stmt: _Stmt) -> bool:
        """Whether an assignment is a constant under the module docstring's rule."""
        return self._keepable.get(stmt.order, False) if stmt.kind == "assign" else False

    def _ref_ok(self, stmt: _Stmt, name: str) -> bool:
        called = name in stmt.call_roots
        target = self.resolve(name, stmt.order)
        if target is None:
            return name in (_SAFE_BUILTIN_CALLS if called else _BUILTIN_NAMES)
        if target.kind == "import":
            return True
        if target.kind == "def":
            return _is_generator_function(target.node)
        if target.kind == "assign":
            return not called and self.keepable(target)
        return False


# --------------------------------------------------------------------------- ingestion


def _ingest_dict(nbdict: Any) -> IngestedNotebook:
    nb, version, problems = _to_v4(nbdict)
    parsed = _parse_cells(nb)
    problems.extend(c.error for c in parsed.cells if c.error is not None)
    setup_cells = frozenset(
        index for index, cell in enumerate(nb.cells) if SETUP_TAG in _cell_tags(cell)
    )
    resolver = _Resolver(parsed.stmts, parsed.imports, setup_cells)
    cells = {c.index: c for c in parsed.cells}

    parts: dict[str, PartInfo] = {}
    keep: dict[int, _Stmt] = {}
    work: list[tuple[_Stmt, str]] = []
    for name in GRADED_PARTS:
        defs = resolver.definitions(name)
        if not defs:
            problems.append(_missing_problem(name, parsed.cells))
            continue
        winner = defs[-1]
        cell = cells[winner.cell_index]
        parts[name] = PartInfo(
            name=name,
            cell_index=winner.cell_index,
            line=winner.line,
            found_by=_found_by(name, cell),
            source=winner.text,
            attempted=_is_attempted(winner.node),
        )
        if len(defs) > 1:
            problems.append(_duplicate_problem(name, defs, name))
        if not parts[name].attempted:
            problems.append(
                Problem(
                    kind="not_attempted",
                    message=f"`{name}` has not been attempted yet: it still raises "
                    "NotImplementedError.",
                    part=name,
                    cell_index=winner.cell_index,
                    line=winner.line,
                )
            )
        keep[winner.order] = winner
        work.append((winner, name))

    if not parts and not any(p.kind == "missing_part" and p.line for p in problems):
        raise NotebookError(
            "This notebook contains none of the graded parts ("
            + ", ".join(GRADED_PARTS)
            + "). Submit the course notebook with your solutions filled in."
        )

    reported: set[str] = set()
    used: dict[str, str] = {}  # global name -> the first graded part found using it
    while work:
        stmt, part = work.pop()
        refs = [(n, stmt.order) for n in sorted(stmt.early)]
        refs += [(n, None) for n in sorted(stmt.late)]
        for name, before in refs:
            target = resolver.resolve(name, before)
            if target is not None and target.kind != "import":
                first = used.setdefault(name, part)  # name the earliest part that uses it
                if GRADED_PARTS.index(part) < GRADED_PARTS.index(first):
                    used[name] = part
            if target is None or target.kind == "import" or target.order in keep:
                continue
            if target.kind == "def" or resolver.keepable(target):
                keep[target.order] = target
                work.append((target, part))
                defs = resolver.definitions(name)
                if target.kind == "def" and len(defs) > 1 and name not in reported:
                    reported.add(name)
                    problems.append(_duplicate_problem(name, defs, part))
            elif name not in reported:
                reported.add(name)
                problems.append(
                    Problem(
                        kind="dropped_dependency",
                        message=(
                            f"`{part}` uses `{name}`, which cell {target.cell_index + 1}, line "
                            f"{target.line} sets with code the grader does not run (only imports, "
                            "functions, classes and simple constants are kept). "
                            + _instead(name, target.text)
                        ),
                        part=part,
                        cell_index=target.cell_index,
                        line=target.line,
                    )
                )

    problems += _dropped_statements(parsed, resolver, keep, used)
    source = _assemble(parsed, sorted(keep.values(), key=lambda s: s.order))
    return IngestedNotebook(
        source=source,
        parts=parts,
        problems=problems,
        nbformat_version=version,
        sha256=hashlib.sha256(
            json.dumps(nbdict, sort_keys=True, default=str).encode("utf-8", "replace")
        ).hexdigest(),
        original_course=_original_course(parsed, resolver),
    )


# --------------------------------------------------------------------------- dropped code

_MUTATING_METHODS = frozenset(
    {"append", "extend", "update", "insert", "setdefault", "add", "pop", "clear", "remove"}
)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutated_globals(node: ast.stmt) -> set[str]:
    """Global names a dropped statement changes without rebinding them: ``emojis[i]['image'] =
    ...``, ``table.update(...)``, also through a loop variable (``for k, v in emojis.items():
    v['image'] = ...``)."""
    aliases: dict[str, str] = {}
    found: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        root = None
        if isinstance(current, ast.For) and (source := _root_name(current.iter)):
            for target in ast.walk(current.target):
                if isinstance(target, ast.Name):
                    aliases[target.id] = aliases.get(source, source)
        elif isinstance(current, ast.Subscript | ast.Attribute) and isinstance(
            current.ctx, ast.Store | ast.Del
        ):
            root = _root_name(current.value)
        elif (
            isinstance(current, ast.Call)
            and isinstance(current.func, ast.Attribute)
            and current.func.attr in _MUTATING_METHODS
        ):
            root = _root_name(current.func.value)
        if root is not None:
            found.add(aliases.get(root, root))
        stack.extend(reversed(list(ast.iter_child_nodes(current))))
    return found


def _instead(name: str, text: str) -> str:
    """What the course provides instead of code the grader does not run."""
    if ".png" in text.lower() or "Image.open" in text or name == "emojis":
        return (
            "The course provides `emoji_tiles` instead: `emoji_tiles[class_id]` is the 72x72x3 "
            "uint8 tile of each class, made in the set-up cell (no PNG files)."
        )
    if re.search(r"\b(Model|Sequential)\s*\(|\.compile\(", text) or name == "model":
        return (
            "Build the model inside `create_model()` and return it compiled; a callback reaches "
            "it as `self.model`."
        )
    return f"Do this inside the function that needs it, or write `{name}` as a plain constant."


def _dropped_statements(
    parsed: _Parsed, resolver: _Resolver, keep: dict[int, _Stmt], used: dict[str, str]
) -> list[Problem]:
    """Dropped top-level code that changes a kept global a graded part uses: the part would run
    on a value the learner never saw (an ``emojis`` dict without its images)."""
    problems = []
    for stmt in parsed.stmts:
        if stmt.order in keep or stmt.kind in ("import", "def"):
            continue
        for name in sorted(_mutated_globals(stmt.node)):
            target = resolver.resolve(name, None)
            if name not in used or target is None or target.order not in keep:
                continue
            first = stmt.text.splitlines()[0].strip()
            problems.append(
                Problem(
                    kind="dropped_statement",
                    message=(
                        f"Cell {stmt.cell_index + 1}, line {stmt.line} (`{first[:60]}`) was not "
                        f"run by the grader: it changes `{name}`, which `{used[name]}` uses, and "
                        "only imports, functions, classes and constants are kept, so "
                        f"`{name}` stays as cell {target.cell_index + 1} defines it. "
                        + _instead(name, stmt.text)
                    ),
                    part=used[name],
                    cell_index=stmt.cell_index,
                    line=stmt.line,
                )
            )
            break
    return problems


# --------------------------------------------------------------------------- original course

_KERAS2 = re.compile(
    r"\btf\.keras\b|tensorflow\.keras|fit_generator|\bset_value\(|\bworkers\s*=|"
    r"use_multiprocessing\s*=|[(,]\s*lr\s*="
)
_TOP_LEVEL_MODEL = re.compile(r"\b(Model|Sequential)\s*\(|^\s*\w+\.compile\(", re.MULTILINE)


def _original_course(parsed: _Parsed, resolver: _Resolver) -> tuple[CourseFinding, ...]:
    """Idioms of the original guided project, each with where it was found (first one only)."""
    found: dict[Difference, CourseFinding] = {}

    def note(kind: Difference, evidence: str, stmt: _Stmt) -> None:
        found.setdefault(kind, CourseFinding(kind, evidence, stmt.cell_index, stmt.line))

    for stmt in sorted(parsed.stmts + parsed.imports, key=lambda s: (s.order, s.line)):
        if match := _KERAS2.search(stmt.text):
            note(Difference.KERAS3, f"`{match.group(0).strip(' (,')}`", stmt)
        if stmt.kind != "def" and ".png" in stmt.text.lower():
            note(Difference.EMOJIS, "emoji images read from PNG files", stmt)
        if stmt.kind in ("assign", "other") and _TOP_LEVEL_MODEL.search(stmt.text):
            note(Difference.MODEL, "the model is built or compiled at top level", stmt)
    for name in ("create_example", "data_generator"):
        for stmt in resolver.definitions(name)[-1:]:
            node = stmt.node
            if isinstance(node, ast.FunctionDef) and "rng" not in {
                a.arg for a in node.args.args + node.args.kwonlyargs
            }:
                note(Difference.RNG, f"`{name}` has no `rng` parameter", stmt)
    for stmt in resolver.definitions("plot_bounding_box")[-1:]:
        if isinstance(stmt.node, ast.FunctionDef) and any(
            isinstance(d, ast.List) for d in stmt.node.args.defaults
        ):
            note(Difference.PLOT, "`plot_bounding_box` defaults `pred_coords` to a list", stmt)
    for stmt in resolver.definitions("ShowTestImages")[-1:]:
        if "figures" not in stmt.text:
            note(Difference.CALLBACK, "`ShowTestImages` keeps no `self.figures`", stmt)
    for stmt in resolver.definitions("lr_schedule")[-1:]:
        if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) for n in ast.walk(stmt.node)):
            note(Difference.SCHEDULE, "`lr_schedule` changes the rate every few epochs", stmt)
    for stmt in resolver.definitions("IoU")[-1:]:
        for method in ast.walk(stmt.node):
            if (
                isinstance(method, ast.FunctionDef)
                and method.name == "reset_state"
                and "add_weight" in ast.unparse(method)
            ):
                note(Difference.METRIC, "`reset_state` creates new weights", stmt)
    order = list(DIFFERENCES)
    return tuple(sorted(found.values(), key=lambda f: order.index(f.difference)))


def _found_by(name: str, cell: _Cell) -> FoundBy:
    if cell.tagged and cell.header in (None, name):
        return "tag"
    if cell.header == name:
        return "header"
    return "name"


def _duplicate_problem(name: str, defs: list[_Stmt], part: str) -> Problem:
    where = ", ".join(f"cell {d.cell_index + 1}" for d in defs)
    last = defs[-1]
    return Problem(
        kind="duplicate_definition",
        message=(
            f"`{name}` is defined {len(defs)} times ({where}); the grader uses the last one, in "
            f"cell {last.cell_index + 1}, as running the notebook from top to bottom would."
        ),
        part=part,
        cell_index=last.cell_index,
        line=last.line,
    )


def _missing_problem(name: str, cells: list[_Cell]) -> Problem:
    """Explain a missing part as precisely as the notebook allows."""
    definition = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", re.MULTILINE)
    for cell in reversed(cells):
        if cell.error is None:
            continue
        if cell.header == name or definition.search(cell.raw):
            return Problem(
                kind="missing_part",
                message=(
                    f"`{name}` is missing (syntax error at cell {cell.index + 1} line "
                    f"{cell.error.line}): fix the syntax error so the grader can read it."
                ),
                part=name,
                cell_index=cell.index,
                line=cell.error.line,
            )
    for cell in cells:
        if cell.header == name:
            return Problem(
                kind="missing_part",
                message=(
                    f"`{name}` is missing: cell {cell.index + 1} is marked `# GRADED: {name}` but "
                    f"defines no function or class called `{name}` (was it renamed?)."
                ),
                part=name,
                cell_index=cell.index,
            )
    return Problem(
        kind="missing_part",
        message=f"`{name}` is missing: no function or class called `{name}` was found.",
        part=name,
    )


def _assemble(parsed: _Parsed, kept: list[_Stmt]) -> str:
    """Imports first (guarded), then kept definitions and constants in notebook order."""
    future: list[str] = []
    guarded: list[str] = []
    seen: set[str] = set()
    imports = [s for s in parsed.stmts if s.kind == "import"] + parsed.imports
    for stmt in sorted(imports, key=lambda s: (s.order, s.line)):
        text = ast.unparse(stmt.node)
        if text in seen:
            continue
        seen.add(text)
        if isinstance(stmt.node, ast.ImportFrom) and stmt.node.module == "__future__":
            future.append(text)
        else:
            guarded.append(f"try:\n    {text}\nexcept ImportError:\n    pass")
    blocks = ['"""Learner code kept by grader.notebook: imports, definitions, constants."""']
    if future:
        blocks.append("\n".join(future))
    blocks += guarded
    blocks += [f"# cell {s.cell_index + 1}, line {s.line}\n{s.text}" for s in kept]
    return "\n\n".join(blocks) + "\n"
