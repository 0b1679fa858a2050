"""Keeping only what the graded parts need: imports, definitions and constants; the rest is dropped.

Why this module exists: a learner's notebook also trains models, plots, installs packages and may
loop forever; the grader must load the learner's definitions without running any of that. The keep
rule, applied to top-level statements of parseable code cells, in notebook order:

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
   is how a notebook builds ``batches = make_batches(1)``); no ``await``,
   ``yield`` or ``:=``. Lambdas are allowed (their bodies do not run).
   Exception: assignments in cells tagged ``setup`` (the assignment's given set-up code) are kept
   as written, helper calls included; they still run only inside the sandbox.
4. Everything else (bare expressions such as ``model.fit(...)`` or ``plt.show()``, ``for``,
   ``while``, ``with``, ``if``, ``try``, assignments that call learner code) is dropped. If a kept
   definition uses a global that only dropped code sets, a ``dropped_dependency`` problem says so;
   if dropped code changes a kept global that a graded part uses (a loop filling
   ``table[i]["image"]``), a ``dropped_statement`` problem names that statement's cell and line
   and what the assignment provides instead (its ``dropped_advice``).

IPython magics and ``!`` lines were already rewritten into ``get_ipython()`` calls by `parsing`, so
they are bare expressions and dropped by rule 4.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from grader.ingest.locating import duplicate_problem
from grader.ingest.model import Parsed, Problem, Stmt
from grader.ingest.resolving import Resolver

Advice = Callable[[str, str], str | None]


def keep_needed(
    resolver: Resolver,
    winners: list[tuple[Stmt, str]],
    graded: tuple[str, ...],
    advice: Advice | None = None,
) -> tuple[dict[int, Stmt], dict[str, str], list[Problem]]:
    """The statements the graded parts (``graded``, in notebook order) need (by order), which
    graded part first uses each kept global, and the problems: needed globals that only dropped
    code sets, duplicate helpers; ``advice`` is the assignment's word on what to write instead."""
    problems: list[Problem] = []
    keep: dict[int, Stmt] = {winner.order: winner for winner, _ in winners}
    work = list(winners)
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
                if graded.index(part) < graded.index(first):
                    used[name] = part
            if target is None or target.kind == "import" or target.order in keep:
                continue
            if target.kind == "def" or resolver.keepable(target):
                keep[target.order] = target
                work.append((target, part))
                defs = resolver.definitions(name)
                if target.kind == "def" and len(defs) > 1 and name not in reported:
                    reported.add(name)
                    problems.append(duplicate_problem(name, defs, part))
            elif name not in reported:
                reported.add(name)
                problems.append(
                    Problem(
                        kind="dropped_dependency",
                        message=(
                            f"`{part}` uses `{name}`, which cell {target.cell_index + 1}, line "
                            f"{target.line} sets with code the grader does not run (only imports, "
                            "functions, classes and simple constants are kept). "
                            + _instead(name, target.text, advice)
                        ),
                        part=part,
                        cell_index=target.cell_index,
                        line=target.line,
                    )
                )
    return keep, used, problems


# --------------------------------------------------------------------------- dropped code

_MUTATING_METHODS = frozenset(
    {"append", "extend", "update", "insert", "setdefault", "add", "pop", "clear", "remove"}
)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutated_globals(node: ast.stmt) -> set[str]:
    """Global names a dropped statement changes without rebinding them: ``table[i]["image"] =
    ...``, ``table.update(...)``, also through a loop variable (``for k, v in table.items():
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


def _instead(name: str, text: str, advice: Advice | None) -> str:
    """What to write instead of code the grader does not run: the assignment's advice, if any."""
    specific = advice(name, text) if advice is not None else None
    return specific or (
        f"Do this inside the function that needs it, or write `{name}` as a plain constant."
    )


def dropped_statements(
    parsed: Parsed,
    resolver: Resolver,
    keep: dict[int, Stmt],
    used: dict[str, str],
    advice: Advice | None = None,
) -> list[Problem]:
    """Dropped top-level code that changes a kept global a graded part uses: the part would run
    on a value the learner never saw (a dict whose filling loop was dropped)."""
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
                        + _instead(name, stmt.text, advice)
                    ),
                    part=used[name],
                    cell_index=stmt.cell_index,
                    line=stmt.line,
                )
            )
            break
    return problems


def assemble(parsed: Parsed, kept: list[Stmt]) -> str:
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
    blocks = ['"""Learner code kept by grader.ingest: imports, definitions, constants."""']
    if future:
        blocks.append("\n".join(future))
    blocks += guarded
    blocks += [f"# cell {s.cell_index + 1}, line {s.line}\n{s.text}" for s in kept]
    return "\n\n".join(blocks) + "\n"
