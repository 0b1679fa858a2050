"""Names found, not guessed: near names of graded parts, and misspelt methods of graded classes.

Why this module exists: a part the grader cannot find by its exact name is often there under a
near name (``SCORE``, ``showSamples``, ``build_Net``), and a graded class often misspells a
method its framework calls (``_init_``, ``update_states``, ``on_epoch_ends``), which later fails
far from its cause ("object has no attribute ..."). Both are looked for here, in every code cell
of the notebook before the keep rule drops anything, and reported with the part's kind in mind:

* a near name is offered only for a definition of the part's kind (`PartKind`): a class for a
  class part, whose written bases mention ``Metric`` / ``Callback`` for a metric / callback part;
  a function for a function part, whose required parameters fit the stub's call. A plotting
  helper ``plot_net(net, data)`` is never a ``build_net()`` stub;
* names are compared case-folded with underscores removed (`normalise`), by the number of edited
  characters (`edits`, from difflib's opcodes); the limits (`MAX_EDITS`, `PREFIX_SHARE`) were
  measured on a table of real near names and unrelated names (tests/test_names.py);
* a graded class's method whose name is one edit from a method its kind requires (and which the
  class does not define) is a ``misspelt_method`` problem of that part.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader.ingest.model import Cell, Parsed, Problem, Stmt
from grader.parts import PartKind

if TYPE_CHECKING:
    from grader.assignment import Part

#: Edited characters allowed between normalised names: typos, a letter doubled or dropped.
#: Short names (up to `SHORT` characters) allow one.
MAX_EDITS = 2
SHORT = 5
#: A normalised name that starts the part's name is near when it covers at least this share of it
#: (``load_gen`` for ``load_generator``); one the part's name starts (``ScoreMetric``) always is.
PREFIX_SHARE = 0.5
MIN_PREFIX = 3

#: The methods each kind of class part overrides, as its framework (Python, Keras) names them.
_CALLBACK_HOOKS = tuple(
    f"on_{stage}_{when}"
    for stage in (
        "epoch", "batch", "train", "test", "predict", "train_batch", "test_batch", "predict_batch",
    )
    for when in ("begin", "end")
)  # fmt: skip
REQUIRED_METHODS: dict[PartKind, tuple[str, ...]] = {
    PartKind.CLASS: ("__init__",),
    PartKind.METRIC: ("__init__", "update_state", "result", "reset_state"),
    PartKind.CALLBACK: ("__init__", *_CALLBACK_HOOKS, "set_model", "set_params"),
}
#: What a class part's written bases must mention to be offered for a part of that kind.
BASE_WORD: dict[PartKind, str] = {PartKind.METRIC: "Metric", PartKind.CALLBACK: "Callback"}
_CLASS_KINDS = frozenset({PartKind.CLASS, PartKind.METRIC, PartKind.CALLBACK})
_HEADER_LINE = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)[^\n]*$", re.M)


@dataclass(frozen=True)
class Definition:
    """A function or class the notebook defines at the top level of a cell (also inside a
    top-level ``if``/``try``/``with``/``for``), parsed or not."""

    name: str
    is_class: bool
    cell_index: int
    line: int  # 1-based, within the cell
    cell: str  # the cell as the learner sees it (`describe_cell`)
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None  # None: unparsable cell

    @property
    def shown(self) -> str:
        return f"{'class' if self.is_class else 'function'} `{self.name}`"


@dataclass(frozen=True)
class NearName:
    """A definition offered for a missing graded part, with where it is."""

    part: str
    definition: Definition

    @property
    def message(self) -> str:
        d = self.definition
        return f"your notebook defines {d.shown} in {d.cell}"


def describe_cell(cell: Cell) -> str:
    """A cell as the learner finds it: by its ``# GRADED:`` header, else by its first line."""
    if cell.header:
        return f"the cell `# GRADED: {cell.header}`"
    first = next((ln.strip() for ln in cell.raw.splitlines() if ln.strip()), "")
    return f"the cell that starts `{first[:57] + '...' if len(first) > 60 else first}`"


def normalise(name: str) -> str:
    return name.casefold().replace("_", "")


def edits(a: str, b: str) -> int:
    """Characters inserted, deleted or replaced to turn ``a`` into ``b`` (difflib's opcodes)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )


def name_distance(part: str, name: str) -> int | None:
    """How far ``name`` is from the part's ``part`` name (0 = same but for case and underscores),
    or None when it is not a near name."""
    p, n = normalise(part), normalise(name)
    if not p or not n:
        return None
    found = edits(p, n)
    if found <= (1 if len(p) <= SHORT else MAX_EDITS):
        return found
    if len(p) >= MIN_PREFIX and n.startswith(p):
        return found  # the part's name, extended: ``ScoreMetric``, ``ShowSamplesCallback``
    if len(n) > MIN_PREFIX and p.startswith(n) and len(n) >= PREFIX_SHARE * len(p):
        return found  # shortened: ``load_gen``, ``lr_sched``
    return None


# --------------------------------------------------------------------------- definitions


def collect_definitions(parsed: Parsed) -> tuple[Definition, ...]:
    """Every function and class defined at a cell's top level, in notebook order."""
    cells = {c.index: c for c in parsed.cells}
    found: list[Definition] = []
    for stmt in parsed.stmts:
        cell = cells[stmt.cell_index]
        for node in _top_level_defs(stmt.node):
            line = stmt.line + _first_line(node) - _first_line(stmt.node)
            found.append(_definition(node, cell, line))
    for cell in parsed.cells:  # cells with a syntax error: their def/class lines
        if cell.error is None:
            continue
        for match in _HEADER_LINE.finditer(cell.raw):
            line = cell.raw.count("\n", 0, match.start()) + 1
            node = _header_node(match.group(0))
            if node is not None:
                found.append(_definition(node, cell, line))
    return tuple(sorted(found, key=lambda d: (d.cell_index, d.line)))


def _top_level_defs(node: ast.stmt) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node]
    found = []
    for field in ("body", "orelse", "finalbody", "handlers"):
        for child in getattr(node, field, None) or ():
            if isinstance(child, ast.ExceptHandler):
                for inner in child.body:
                    found += _top_level_defs(inner)
            elif isinstance(child, ast.stmt):
                found += _top_level_defs(child)
    return found


def _header_node(header: str) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None:
    """The definition of a lone ``def``/``class`` line (its body replaced by ``pass``)."""
    text = header.strip()
    text = text[: text.rindex(":") + 1] if ":" in text else text
    try:
        tree = ast.parse(text + " pass")
    except (SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) else None


def _definition(node: ast.stmt, cell: Cell, line: int) -> Definition:
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    return Definition(
        name=node.name,
        is_class=isinstance(node, ast.ClassDef),
        cell_index=cell.index,
        line=line,
        cell=describe_cell(cell),
        node=node,
    )


# --------------------------------------------------------------------------- kinds


def stub_arguments(part: Part) -> ast.arguments | None:
    """The parameters of a function part's stub (``make_sample(rng=None)``)."""
    if part.kind in _CLASS_KINDS:
        return None
    try:
        tree = ast.parse(f"def {part.stub.strip()}: pass")
    except (SyntaxError, ValueError):
        return None
    node = tree.body[0]
    return node.args if isinstance(node, ast.FunctionDef) else None


def fits_call(args: ast.arguments, stub: ast.arguments) -> bool:
    """Whether a function taking ``args`` can be called as the stub is: it takes every argument
    the stub requires, and requires none the stub does not offer."""
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    stub_positional = [*stub.posonlyargs, *stub.args]
    stub_required = len(stub_positional) - len(stub.defaults)
    if any(default is None for default in args.kw_defaults):
        return False  # a required keyword-only parameter the grader never passes
    takes_enough = len(positional) >= stub_required or args.vararg is not None
    return takes_enough and required <= len(stub_positional)


def _bases(node: ast.ClassDef) -> list[str]:
    return [ast.unparse(base) for base in node.bases]


def _mentions(node: ast.ClassDef, word: str, classes: dict[str, ast.ClassDef]) -> bool:
    """Whether the class's written bases (followed through the notebook's own classes) mention
    ``word``; a class with no written base counts as mentioning it."""
    if not node.bases:
        return True
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        for base in _bases(current):
            if word in base:
                return True
            own = classes.get(base)
            if own is not None and base not in seen and own.bases:
                seen.add(base)
                stack.append(own)
    return False


def fits_kind(definition: Definition, part: Part, classes: dict[str, ast.ClassDef]) -> bool:
    """Whether ``definition`` is of the kind ``part`` is (see the module docstring)."""
    if part.kind in _CLASS_KINDS:
        if not isinstance(definition.node, ast.ClassDef):
            return False
        word = BASE_WORD.get(part.kind)
        return word is None or _mentions(definition.node, word, classes)
    if not isinstance(definition.node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    stub = stub_arguments(part)
    return stub is None or fits_call(definition.node.args, stub)


def near_names(
    part: Part, definitions: tuple[Definition, ...], graded: tuple[str, ...]
) -> tuple[NearName, ...]:
    """Definitions of ``part``'s kind under a near name, the nearest first (at most three)."""
    classes = {d.name: d.node for d in definitions if isinstance(d.node, ast.ClassDef)}
    scored: dict[str, tuple[int, int, Definition]] = {}
    for order, definition in enumerate(definitions):
        if definition.name in graded or not fits_kind(definition, part, classes):
            continue
        distance = name_distance(part.name, definition.name)
        if distance is not None:  # the last definition of a name wins, as when run
            scored[definition.name] = (distance, -order, definition)
    best = sorted(scored.values(), key=lambda item: item[:2])[:3]
    return tuple(NearName(part.name, definition) for _, _, definition in best)


# --------------------------------------------------------------------------- misspelt methods


def misspelt_methods(part: Part, definition: Stmt) -> list[Problem]:
    """Methods of a graded class one edit away from a method its kind requires, which the class
    does not define (``_init_``, ``update_states``, ``on_epoch_ends``)."""
    required = REQUIRED_METHODS.get(part.kind)
    node = definition.node
    if not required or not isinstance(node, ast.ClassDef):
        return []
    methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
    defined = {m.name for m in methods}
    problems = []
    for method in methods:
        if method.name in required:
            continue
        expected = _misspelt(method.name, [r for r in required if r not in defined])
        if expected is None:
            continue
        who = "Python" if expected.startswith("__") else "Keras"
        then = (
            "the attributes it sets do not exist"
            if expected == "__init__"
            else f"{who} runs the base class's `{expected}` instead of your code"
        )
        problems.append(
            Problem(
                kind="misspelt_method",
                message=(
                    f"`{part.name}` defines `{method.name}`, which is not `{expected}`: {who} "
                    f"never calls it, so {then}. Rename it to `{expected}`."
                ),
                part=part.name,
                cell_index=definition.cell_index,
                line=definition.line + (method.lineno - _first_line(node)),
            )
        )
    return problems


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([d.lineno for d in decorators] + [node.lineno])


def _misspelt(name: str, expected: list[str]) -> str | None:
    n = normalise(name)
    for wanted in expected:
        dunder = wanted.startswith("__")
        if dunder and not (name.startswith("_") or name.endswith("_")):
            continue  # ``init`` is a helper; ``_init_`` and ``__int__`` are attempts at a dunder
        if edits(n, normalise(wanted)) <= 1:
            return wanted
    return None
