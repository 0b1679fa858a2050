"""Grade real learners' notebooks of the original guided project as they are, and adapted to the
stubs' contract only, to see what the checks take from code that does not deserve it.

    python -m tests.learner_notebooks FOLDER [--out DIR] [--json FILE] [--training]

For every ``.ipynb`` under FOLDER: (1) grade it as is; (2) write an adapted copy to DIR (default
FOLDER's sibling ``<name>-adapted``) that changes only what the stubs promise (signatures, the
seed, the model factory, the callback's constructor, the course's emoji tiles, the Keras 3 API)
and keeps the learner's logic, bugs included; (3) grade the copy; print per notebook the scores
and every lost check with its message. The training checks are skipped unless ``--training``
(the real budget, or ``--epochs``/``--steps``). The notebooks are read from FOLDER and never
copied into the repository.

Every adaptation is an AST rewrite written for any notebook of the original course's shape, from
the manifest's parts and stubs (``grader.assignment``), never for one notebook.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import json
import sys
from pathlib import Path
from typing import Any

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from grader.assignment import Assignment, Part, PartKind, resolve
from grader.ingest import NotebookError, ingest_notebook

COURSE = "object_localization"
#: The original course's PNG table -> what the course's set-up cell provides instead.
EMOJI_FIELDS = {"image": "emoji_tiles", "name": "CLASS_NAMES"}
EMOJI_TABLE = "emojis"
#: numpy's global-state draws -> the same draw from a Generator (same ranges and meaning).
RANDOM_CALLS = {
    "randint": "integers", "rand": "random", "random": "random", "random_sample": "random",
    "uniform": "uniform", "normal": "normal", "choice": "choice", "shuffle": "shuffle",
    "permutation": "permutation",
}  # fmt: skip
NOISY_CALLS = {"summary", "print", "display", "show", "plot_model"}


# --------------------------------------------------------------------------- stubs


def stub_function(part: Part) -> ast.FunctionDef | None:
    """The stub of a function part as a ``def`` (``create_example(rng=None)``)."""
    if part.kind in (PartKind.CLASS, PartKind.METRIC, PartKind.CALLBACK):
        return None
    node = ast.parse(f"def {part.stub}: pass").body[0]
    return node if isinstance(node, ast.FunctionDef) else None


def stub_init(assignment: Assignment, part: Part) -> ast.FunctionDef | None:
    """The ``__init__`` of a class part as the learner notebook's stub writes it."""
    nb = nbformat.read(assignment.learner, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or f"GRADED: {part.name}" not in cell.source:
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                return node
    return None


def course_cells(assignment: Assignment) -> list[nbformat.NotebookNode]:
    """The course's code cells before its first graded cell (imports, the set-up cells)."""
    nb = nbformat.read(assignment.learner, as_version=4)
    cells = []
    for cell in nb.cells:
        if "graded" in cell.metadata.get("tags", []):
            break
        if cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata=cell.metadata))
    return cells


# --------------------------------------------------------------------------- rewrites


def _name_of(node: ast.AST) -> str:
    return ast.unparse(node) if isinstance(node, ast.expr) else ""


class Adapter(ast.NodeTransformer):
    """The rewrites of one notebook's cells (see the module docstring)."""

    def __init__(self, assignment: Assignment, renames: dict[str, str]) -> None:
        self.assignment = assignment
        self.renames = renames
        self.parts = {p.name: p for p in assignment.parts}
        self.seeded = {
            p.name
            for p in assignment.parts
            if (stub := stub_function(p)) and "rng" in {a.arg for a in stub.args.args}
        }
        self.in_seeded: list[bool] = [False]
        self.class_kind: list[PartKind | str | None] = [None]  # None: not in a class
        self.weights: list[set[str]] = [set()]
        self.method: list[str] = [""]

    # names: a part defined under a near name takes the part's name everywhere
    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.renames.get(node.id, node.id)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.renames.get(node.name, node.name)
        part = self.parts.get(node.name) if self.class_kind[-1] is None else None
        stub = stub_function(part) if part else None
        if self.class_kind[-1] is not None:
            node = self._method(node)
        seeded = node.name in self.seeded and stub is not None
        self.in_seeded.append(seeded or self.in_seeded[-1])
        self.method.append(node.name)
        self.generic_visit(node)
        self.method.pop()
        self.in_seeded.pop()
        if stub is not None:
            self._take_signature(node, stub)
        if seeded and not _assigns(node, "rng"):
            node.body.insert(_after_docstring(node), _stmt("rng = np.random.default_rng(rng)"))
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.renames.get(node.name, node.name)
        part = self.parts.get(node.name)
        kind = part.kind if part else None
        self.class_kind.append(kind or "class")
        self.weights.append(_weights(node))
        self.generic_visit(node)
        self.weights.pop()
        self.class_kind.pop()
        if part is not None and kind in (PartKind.CLASS, PartKind.METRIC, PartKind.CALLBACK):
            self._take_init(node, part)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (  # np.random.randint(...) -> rng.integers(...) where the function takes rng
            self.in_seeded[-1]
            and isinstance(func, ast.Attribute)
            and _name_of(func.value) in ("np.random", "numpy.random")
            and func.attr in RANDOM_CALLS
        ):
            node.func = ast.Attribute(
                ast.Name("rng", ast.Load()), RANDOM_CALLS[func.attr], ast.Load()
            )
        if (  # create_example() inside data_generator -> create_example(rng=rng)
            self.in_seeded[-1]
            and isinstance(func, ast.Name)
            and func.id in self.seeded
            and "rng" not in {k.arg for k in node.keywords}
        ):
            node.keywords.append(ast.keyword("rng", ast.Name("rng", ast.Load())))
        called = func.attr if isinstance(func, ast.Attribute) else _name_of(func)
        for keyword in node.keywords:  # Keras 3: Adam(lr=...) -> Adam(learning_rate=...)
            if keyword.arg == "lr" and called[:1].isupper():
                keyword.arg = "learning_rate"
        if isinstance(func, ast.Attribute) and func.attr == "fit_generator":
            func.attr = "fit"
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        inner = node.value
        field = node.slice.value if isinstance(node.slice, ast.Constant) else None
        if (  # emojis[class_id]['image'] -> emoji_tiles[class_id]
            isinstance(inner, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _name_of(inner.value) == EMOJI_TABLE
            and field in EMOJI_FIELDS
        ):
            return ast.Subscript(ast.Name(EMOJI_FIELDS[field], ast.Load()), inner.slice, node.ctx)
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        target = node.targets[0] if len(node.targets) == 1 else None
        attribute = (
            target.attr
            if isinstance(target, ast.Attribute) and _name_of(target.value) == "self"
            else None
        )
        if attribute is None or attribute not in self.weights[-1] or self.method[-1] == "__init__":
            return node
        # Keras 3: a weight rebound to a tensor leaks out of the compiled step; assign it instead.
        if self.method[-1] == "reset_state" and "add_weight" in _name_of(node.value):
            return _stmt(f"self.{attribute}.assign(0.0)")
        return ast.Expr(
            ast.Call(
                ast.Attribute(target, "assign", ast.Load()), [node.value], []
            )  # self.iou = x -> self.iou.assign(x)
        )

    # helpers

    def _method(self, node: ast.FunctionDef) -> ast.FunctionDef:
        if self.class_kind[-1] == PartKind.METRIC and node.name == "reset_states":
            node.name = "reset_state"  # Keras 3 calls reset_state only
        return node

    def _take_signature(self, node: ast.FunctionDef, stub: ast.FunctionDef) -> None:
        """The stub's parameters; a learner's default the stub changed is restored from None in
        the body (``pred_coords=[]`` -> ``pred_coords=None`` and ``[]`` when None)."""
        theirs = dict(zip(_defaulted(node.args), node.args.defaults, strict=True))
        restore = []
        for name, default in zip(_defaulted(stub.args), stub.args.defaults, strict=True):
            mine = theirs.get(name)
            if (
                mine is not None
                and _name_of(mine) != _name_of(default)
                and _name_of(default) == "None"
            ):
                restore.append(f"{name} = {ast.unparse(mine)} if {name} is None else {name}")
        kept = [a for a in node.args.args if a.arg not in {s.arg for s in stub.args.args}]
        kept_defaults = [theirs[a.arg] for a in kept if a.arg in theirs]
        node.args = copy.deepcopy(stub.args)
        if len(kept) == len(kept_defaults):  # the learner's own optional extras stay
            node.args.args += kept
            node.args.defaults += kept_defaults
        for line in reversed(restore):
            node.body.insert(_after_docstring(node), _stmt(line))

    def _take_init(self, node: ast.ClassDef, part: Part) -> None:
        """The stub's ``__init__`` when the learner's cannot take the stub's call."""
        init = next(
            (m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None
        )
        stub = stub_init(self.assignment, part)
        if stub is None:
            return
        if init is None:
            if not any(isinstance(n, ast.Raise) for n in ast.walk(stub)):  # given code only
                node.body.insert(_after_docstring(node), copy.deepcopy(stub))
            return
        have = {a.arg for a in init.args.args + init.args.kwonlyargs}
        if init.args.kwarg is not None:
            return
        for arg, default in zip(_defaulted(stub.args), stub.args.defaults, strict=True):
            if arg not in have:
                init.args.args.append(ast.arg(arg))
                init.args.defaults.append(copy.deepcopy(default))


def _defaulted(args: ast.arguments) -> list[str]:
    names = [a.arg for a in args.args]
    return names[len(names) - len(args.defaults) :]


def _stmt(text: str) -> ast.stmt:
    return ast.parse(text).body[0]


def _after_docstring(node: ast.FunctionDef | ast.ClassDef) -> int:
    first = node.body[0] if node.body else None
    is_doc = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
    return 1 if is_doc else 0


def _assigns(node: ast.FunctionDef, name: str) -> bool:
    return any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
        for n in ast.walk(node)
    )


def _weights(node: ast.ClassDef) -> set[str]:
    """Attributes ``__init__`` creates with ``add_weight``/``add_variable``."""
    found = set()
    for method in node.body:
        if isinstance(method, ast.FunctionDef) and method.name == "__init__":
            for stmt in ast.walk(method):
                if (
                    isinstance(stmt, ast.Assign)
                    and isinstance(stmt.targets[0], ast.Attribute)
                    and any(w in _name_of(stmt.value) for w in ("add_weight", "add_variable"))
                ):
                    found.add(stmt.targets[0].attr)
    return found


# --------------------------------------------------------------------------- the model factory


def model_factory(trees: list[ast.Module | None], name: str, metric: str) -> ast.FunctionDef | None:
    """``def <name>():`` from the model a notebook builds and compiles at top level: the last
    ``X.compile(...)`` (of those using the graded ``metric``, if any), the cell that assigns
    ``X`` from a ``Model(...)``/``Sequential(...)`` call, and ``return X``."""
    compiles = []
    for tree in trees:
        for stmt in tree.body if tree else ():
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "compile"
                and isinstance(call.func.value, ast.Name)
            ):
                compiles.append((call.func.value.id, stmt))
    with_metric = [
        c for c in compiles if metric in {n.id for n in ast.walk(c[1]) if isinstance(n, ast.Name)}
    ]
    if not compiles:
        return None
    variable, compile_stmt = (with_metric or compiles)[-1]
    build = None
    for tree in trees:
        for index, stmt in enumerate(tree.body if tree else ()):
            if (
                isinstance(stmt, ast.Assign)
                and any(_name_of(t) == variable for t in stmt.targets)
                and any(w in _name_of(stmt.value) for w in ("Model(", "Sequential("))
            ):
                build = (tree, index)
    if build is None:
        return None
    tree, index = build
    after = [  # what the cell does to the model after making it (``model.add(...)``)
        stmt
        for stmt in tree.body[index + 1 :]
        if variable in {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        and ".compile(" not in ast.unparse(stmt)
    ]
    body = [copy.deepcopy(s) for s in [*tree.body[: index + 1], *after] if not _noisy(s)]
    body += [copy.deepcopy(compile_stmt), _stmt(f"return {variable}")]
    return ast.FunctionDef(name, ast.arguments([], [], None, [], [], None, []), body, [], None)


def _noisy(stmt: ast.stmt) -> bool:
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    called = func.attr if isinstance(func, ast.Attribute) else _name_of(func)
    return called in NOISY_CALLS


# --------------------------------------------------------------------------- the notebook


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def adapt(nb: nbformat.NotebookNode, assignment: Assignment) -> nbformat.NotebookNode:
    """A copy of ``nb`` adapted to the stubs' contract (see the module docstring)."""
    nb = copy.deepcopy(nb)
    renames = _renames(nb, assignment)
    adapter = Adapter(assignment, renames)
    trees = []
    for cell in nb.cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        if tree is not None:
            tree = ast.fix_missing_locations(adapter.visit(tree))
            cell.source = ast.unparse(tree)
        trees.append(tree)
    model = assignment.part_of_kind(PartKind.MODEL)
    defined = {
        n.name
        for tree in trees
        for n in (tree.body if tree else ())
        if isinstance(n, ast.FunctionDef)
    }
    metric = assignment.part_of_kind(PartKind.METRIC)
    factory = None if model in defined else model_factory(trees, model, metric)
    if factory is not None:
        last = max(
            i for i, t in enumerate(trees) if t and ast.unparse(factory.body[-2]) in ast.unparse(t)
        )
        source = f"# GRADED: {model}\n" + ast.unparse(ast.fix_missing_locations(factory))
        nb.cells.insert(last + 1, nbformat.v4.new_code_cell(source))
    nb.cells[0:0] = course_cells(assignment)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 0))
    for index, cell in enumerate(nb.cells):  # ids, required from nbformat 4.5
        cell.setdefault("id", f"cell-{index}")
    return nb


def _renames(nb: nbformat.NotebookNode, assignment: Assignment) -> dict[str, str]:
    """A missing part defined under a near name of its kind: that name -> the part's."""
    try:
        ingested = ingest_notebook(nb, assignment.ingest_rules())
    except NotebookError:
        return {}
    return {near[0].definition.name: part for part, near in ingested.near_names.items() if near}


# --------------------------------------------------------------------------- grading


def grade(path: Path, assignment: Assignment, training: bool, sandbox: str) -> dict[str, Any]:
    import grader.grade as grade_module
    from grader.checking import run_checks
    from grader.job import GradingJob

    parts = None if training else list(assignment.part_names)
    original = grade_module.run_checks
    grade_module.run_checks = functools.partial(run_checks, parts=parts)
    try:
        job = GradingJob.of_file(path, sandbox_mode=sandbox, assignment=assignment)
        result, material = grade_module.grade_in_detail(job)
    finally:
        grade_module.run_checks = original
    lost = [
        {
            "number": c.number,
            "name": c.name,
            "part": c.part,
            "score": c.score,
            "max_score": c.max_score,
            "message": c.message,
        }
        for c in result.checks
        if c.score < c.max_score
    ]
    return {
        "status": str(result.status),
        "score": round(sum(c.score for c in result.checks), 2),
        "max_score": round(sum(c.max_score for c in result.checks), 2),
        "lost": lost,
        "problems": list(material.artifacts.problems),
    }


def first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:200]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.learner_notebooks", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, help="where the adapted copies go")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--training", action="store_true", help="also run the training checks")
    parser.add_argument("--epochs", type=int, help="with --training: fewer epochs")
    parser.add_argument("--steps", type=int, help="with --training: fewer steps per epoch")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "landlock", "none"))
    parser.add_argument("--assignment", default=COURSE)
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    out = (args.out or folder.with_name(folder.name + "-adapted")).resolve()
    assignment = resolve(args.assignment)
    if args.training and (args.epochs or args.steps):
        from importlib import import_module

        training = import_module(f"{assignment.package}.checks.hidden.test_training")
        training.EPOCHS = args.epochs or training.EPOCHS
        training.STEPS_PER_EPOCH = args.steps or training.STEPS_PER_EPOCH
    found = sorted(p for p in folder.rglob("*.ipynb") if out not in p.parents)
    results = []
    for path in found:
        relative = path.relative_to(folder)
        adapted = out / relative
        adapted.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(adapt(nbformat.read(path, as_version=4), assignment), adapted)
        row = {"notebook": str(relative), "adapted": str(adapted)}
        for label, graded in (("as_is", path), ("adapted_grade", adapted)):
            row[label] = grade(graded, assignment, args.training, args.sandbox)
        results.append(row)
        print_row(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


def print_row(row: dict[str, Any]) -> None:
    as_is, adapted = row["as_is"], row["adapted_grade"]
    print(f"\n== {row['notebook']}")
    print(
        f"   as is: {as_is['score']:g}/{as_is['max_score']:g} ({as_is['status']})   "
        f"adapted: {adapted['score']:g}/{adapted['max_score']:g} ({adapted['status']})"
    )
    for label, graded in (("as is", as_is), ("adapted", adapted)):
        print(f"   lost {label}:")
        for lost in graded["lost"]:
            print(
                f"     {lost['number']:>5} {lost['score']:g}/{lost['max_score']:g} "
                f"{lost['name']}: {first_line(lost['message'])}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
