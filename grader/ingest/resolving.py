"""Name resolution, top to bottom, and the constant rule that decides which assignments are kept.

Why this module exists: both finding the graded parts and keeping what they need ask "which
statement binds NAME, seen from here". Name resolution follows "run the notebook top to bottom": a
definition-time reference (a constant's value, a decorator, a default, a base class) sees the last
binding *above* it; a reference from a function body sees the last binding in the notebook. A
graded name always resolves to its last ``def``/``class``; other rebindings of it (``schedule =
LearningRateScheduler(schedule)``) are ignored. Whether an assignment is a constant (see
`grader.ingest.keeping`, rule 3) is decided here, in one forward pass.
"""

from __future__ import annotations

import ast
import builtins
from bisect import bisect_left

from grader.ingest.model import Stmt

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


class Resolver:
    """Answers "which statement binds NAME, seen from here", running top to bottom.

    Lookups bisect per-name lists and keepability is computed in one forward pass (a constant
    only depends on statements above it), so a hostile notebook cannot make this quadratic or
    recurse deeply.
    """

    def __init__(
        self,
        stmts: list[Stmt],
        imports: list[Stmt],
        setup_cells: frozenset[int] = frozenset(),
        graded: tuple[str, ...] = (),
    ) -> None:
        self.bindings: dict[str, list[Stmt]] = {}
        graded = set(graded)
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

    def resolve(self, name: str, before: int | None) -> Stmt | None:
        candidates = self.bindings.get(name)
        if not candidates:
            return None
        count = len(candidates) if before is None else bisect_left(self._orders[name], before)
        if count == 0:
            return None
        found = candidates[count - 1]
        return self.nested.get((found.order, name), found)

    def definitions(self, name: str) -> list[Stmt]:
        return [s for s in self.bindings.get(name, []) if s.kind == "def"]

    def keepable(self, stmt: Stmt) -> bool:
        """Whether an assignment is a constant under the module docstring's rule."""
        return self._keepable.get(stmt.order, False) if stmt.kind == "assign" else False

    def _ref_ok(self, stmt: Stmt, name: str) -> bool:
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
