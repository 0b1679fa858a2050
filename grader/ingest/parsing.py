"""Code cells -> top-level statements, each with what it binds and which global names it reads.

Why this module exists: the keep rule works on top-level statements, so every code cell is turned
into `Stmt` records once, here. IPython syntax (``%magic``, ``%%cell_magic``, ``!shell``) is
rewritten by IPython's own `TransformerManager` into ``get_ipython()...`` calls, which are later
dropped like any other top-level expression; the body of a transparent cell magic (``%%time``,
``%%capture``) counts as ordinary cell code. A cell that does not parse gets a ``syntax_error``
problem and contributes nothing. Each statement keeps its exact text, cell and line (1-based within
the cell), and the global names it reads at definition time (early) and at call time (late), from
the compiler's own scope analysis. A cell's ``graded`` tag and ``# GRADED: <name>`` header are
recorded here too, for `locating`.
"""

from __future__ import annotations

import ast
import re
import symtable
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode

from grader.ingest.model import GRADED_TAG, Cell, Parsed, Problem, Stmt

_HEADER_RE = re.compile(r"#\s*GRADED\s*:\s*([A-Za-z_]\w*)", re.IGNORECASE)
# Cell magics whose body IPython runs in the user namespace, so definitions inside them count.
_TRANSPARENT_CELL_MAGICS = frozenset({"time", "capture"})


def cell_tags(cell: Mapping[str, Any]) -> list[str]:
    meta = cell.get("metadata")
    tags = meta.get("tags") if isinstance(meta, Mapping) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def cell_header(source: str) -> str | None:
    """The part named by the first line that is neither blank nor a magic (``%%time``)."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("%"):
            match = _HEADER_RE.match(stripped)
            return match.group(1) if match else None
    return None


def parse_cells(nb: NotebookNode) -> Parsed:
    parsed = Parsed()
    transformer = TransformerManager()
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        raw = cell.get("source", "").replace("\r\n", "\n").replace("\r", "\n")
        info = Cell(index, GRADED_TAG in cell_tags(cell), cell_header(raw), raw=raw)
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
    parsed: Parsed, cell: Cell, raw: str, line_offset: int, tm: TransformerManager
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


def _make_stmt(order: int, cell: Cell, node: ast.stmt, lines: list[str], line_offset: int) -> Stmt:
    text, first_line = _segment(lines, node)
    stmt = Stmt(
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
