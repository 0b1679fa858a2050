"""The mutation operators: the standard small mistakes, applied to one definition's syntax tree.

Why our own operators on Python's ``ast`` rather than a mutation library's: cosmic-ray's operators
(on parso trees) would bring thirteen run-time dependencies (its session database, HTTP and git
clients among them) for half of the list below, and its binary-operator replacement offers every
other operator for each one (``+`` into ``@`` or ``>>``), which multiplies grading time without
modelling a learner's mistake; mutmut's are tied to its own runner. The operators here are the
usual ones (arithmetic, comparison and boundary swaps, boolean swaps, constants, removed
statements, swapped arguments, keyword values, calls swapped for their counterpart, in place vs
copy, a dropped ``rng``, range and slice bounds, a call's result ignored), one replacement each
where the literature offers several, and the solution's formatting is not kept (``ast.unparse``).

:func:`edits` lists every :class:`Edit` of a definition; :func:`apply` makes the mutated copy.
An edit's ``what`` names the mistake without quoting the code it changed.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: Where a node sits: (field, index within that field's list or None) steps from the root.
Path = tuple[tuple[str, int | None], ...]

ARITHMETIC = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.MatMult: ast.Mult,
}
COMPARISON = {
    ast.Lt: ast.Gt,
    ast.Gt: ast.Lt,
    ast.LtE: ast.GtE,
    ast.GtE: ast.LtE,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BOUNDARY = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
SYMBOL = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.MatMult: "@", ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">=",
    ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
    ast.NotIn: "not in",
}  # fmt: skip
#: Calls swapped for their counterpart (a function's or method's last name).
COUNTERPART = {
    "max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum",
    "argmax": "argmin", "argmin": "argmax", "floor": "ceil", "ceil": "floor",
    "sum": "mean", "mean": "sum", "zeros": "ones", "ones": "zeros",
    "assign_add": "assign", "assign": "assign_add",
}  # fmt: skip
#: String values (and attribute names such as ``np.uint8``) with the usual wrong alternatives:
#: activations, losses, metrics, padding, initialisers, dtypes, colours, optimizers.
ALTERNATIVES = {
    "softmax": ("sigmoid", "linear"), "sigmoid": ("softmax", "linear"), "relu": ("linear",),
    "linear": ("relu",), "tanh": ("relu",),
    "categorical_crossentropy": ("sparse_categorical_crossentropy", "binary_crossentropy", "mse"),
    "sparse_categorical_crossentropy": ("categorical_crossentropy",),
    "binary_crossentropy": ("categorical_crossentropy",),
    "mse": ("mae",), "mae": ("mse",), "mean_squared_error": ("mean_absolute_error",),
    "accuracy": ("mse",), "same": ("valid",), "valid": ("same",),
    "zeros": ("ones", "glorot_uniform"), "ones": ("zeros",), "glorot_uniform": ("zeros",),
    "he_normal": ("zeros",), "float32": ("float16", "int32"), "float64": ("float32",),
    "uint8": ("int8", "float32"), "int32": ("float32",), "int64": ("float32",),
    "green": ("red",), "red": ("green",), "blue": ("red",), "adam": ("sgd",), "sgd": ("adam",),
}  # fmt: skip


@dataclass(frozen=True)
class Context:
    """What an operator may need to know about a node's surroundings."""

    functions: tuple[str, ...] = ()  # enclosing function names, outermost first
    local_names: frozenset[str] = frozenset()  # parameters and names bound in the innermost one
    in_fstring: bool = False


@dataclass(frozen=True)
class Edit:
    """One mutation: the node at ``path`` replaced by ``replacement`` (a list: statements in
    place of one statement)."""

    operator: str
    what: str
    path: Path
    functions: tuple[str, ...]  # the functions it sits in, outermost first
    replacement: ast.AST | list[ast.stmt] = field(compare=False)


Offer = Iterator[tuple[str, ast.AST | list[ast.stmt]]]


def _num(value: float | int) -> ast.expr:
    return ast.UnaryOp(ast.USub(), ast.Constant(-value)) if value < 0 else ast.Constant(value)


def _plus(node: ast.expr, k: int) -> ast.expr:
    return ast.BinOp(copy.deepcopy(node), ast.Add() if k > 0 else ast.Sub(), ast.Constant(abs(k)))


def _is_number(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


def _last_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


# -- expression operators: (node, context) -> (what, replacement node)


def arithmetic(node: ast.AST, ctx: Context) -> Offer:
    if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in ARITHMETIC:
        new = copy.copy(node)
        new.op = ARITHMETIC[type(node.op)]()
        aug = "=" if isinstance(node, ast.AugAssign) else ""
        yield f"a `{SYMBOL[type(node.op)]}{aug}` turned into `{SYMBOL[type(new.op)]}{aug}`", new
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "a minus sign removed", node.operand


def comparison(node: ast.AST, ctx: Context) -> Offer:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            new = copy.copy(node)
            new.ops = [*node.ops[:i], COMPARISON[type(op)](), *node.ops[i + 1 :]]
            yield f"a `{SYMBOL[type(op)]}` turned into `{SYMBOL[type(new.ops[i])]}`", new


def boundary(node: ast.AST, ctx: Context) -> Offer:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in BOUNDARY:
                new = copy.copy(node)
                new.ops = [*node.ops[:i], BOUNDARY[type(op)](), *node.ops[i + 1 :]]
                yield f"a `{SYMBOL[type(op)]}` turned into `{SYMBOL[type(new.ops[i])]}`", new
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        args = node.args
        if len(args) == 1 and not node.keywords:
            yield "a range ends one earlier", ast.Call(node.func, [_plus(args[0], -1)], [])
            yield "a range starts at 1", ast.Call(node.func, [ast.Constant(1), args[0]], [])
        elif len(args) == 2 and not node.keywords:
            yield "a range ends one earlier", ast.Call(node.func, [args[0], _plus(args[1], -1)], [])
            yield "a range starts one later", ast.Call(node.func, [_plus(args[0], 1), args[1]], [])
    if isinstance(node, ast.Slice) and node.step is None:
        if node.upper is not None:
            yield "a slice ends one earlier", ast.Slice(node.lower, _plus(node.upper, -1))
        if node.lower is not None:
            yield "a slice starts one later", ast.Slice(_plus(node.lower, 1), node.upper)
            if node.upper is None:
                yield "a slice leaves out the last element", ast.Slice(node.lower, _num(-1))
        elif node.upper is not None:
            yield "a slice starts at 1", ast.Slice(ast.Constant(1), node.upper)


def boolean(node: ast.AST, ctx: Context) -> Offer:
    if isinstance(node, ast.BoolOp):
        new = copy.copy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        names = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        yield f"`{names[0]}` turned into `{names[1]}`", new
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield f"`{node.value}` turned into `{not node.value}`", ast.Constant(not node.value)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "a `not` removed", node.operand
    elif isinstance(node, ast.If | ast.While | ast.IfExp):
        new = copy.copy(node)
        new.test = ast.UnaryOp(ast.Not(), node.test)
        yield "a condition negated", new


def constant(node: ast.AST, ctx: Context) -> Offer:
    if not _is_number(node) or ctx.in_fstring:
        return
    value = node.value
    if isinstance(value, int) or abs(value) >= 1 or value == 0:
        changes = (("increased by 1", value + 1), ("decreased by 1", value - 1))
    else:  # a small float: +-1 is not a small change, doubling and halving are
        changes = (("doubled", value * 2), ("halved", value / 2))
    for what, new in changes:
        yield f"a number {what}", _num(new)


def strings(node: ast.AST, ctx: Context) -> Offer:
    """String values: the usual wrong alternative, else a plural turned singular or back."""
    if isinstance(node, ast.Attribute) and node.attr in ALTERNATIVES:
        for other in ALTERNATIVES[node.attr]:
            yield (
                "a dtype or attribute swapped for a similar one",
                ast.Attribute(node.value, other, node.ctx),
            )
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or ctx.in_fstring:
        return
    text = node.value
    if text in ALTERNATIVES:
        for other in ALTERNATIVES[text]:
            yield "a string value swapped for a similar one", ast.Constant(other)
    elif text.isidentifier():
        yield (
            "a string value changed",
            ast.Constant(text[:-1] if text.endswith("s") else text + "s"),
        )


def keywords(node: ast.AST, ctx: Context) -> Offer:
    """A keyword argument dropped (its default then applies)."""
    if isinstance(node, ast.Call):
        for i, keyword in enumerate(node.keywords):
            if keyword.arg is not None and keyword.arg != "rng":
                new = copy.copy(node)
                new.keywords = node.keywords[:i] + node.keywords[i + 1 :]
                yield f"the `{keyword.arg}=` argument of a call dropped", new


def counterpart(node: ast.AST, ctx: Context) -> Offer:
    if isinstance(node, ast.Call) and _last_name(node.func) in COUNTERPART:
        name = _last_name(node.func)
        func = copy.copy(node.func)
        if isinstance(func, ast.Name):
            func.id = COUNTERPART[name]
        else:
            func.attr = COUNTERPART[name]
        yield (
            f"a call to `{name}` turned into `{COUNTERPART[name]}`",
            ast.Call(func, node.args, node.keywords),
        )


def swap(node: ast.AST, ctx: Context) -> Offer:
    """Two neighbours swapped: call arguments, tuple or list elements, dict values."""
    if isinstance(node, ast.Call):
        seq, what = node.args, "two arguments of a call swapped"
    elif isinstance(node, ast.Tuple | ast.List):
        seq, what = node.elts, "two elements of a tuple or list swapped"
    elif isinstance(node, ast.Dict):
        seq, what = node.values, "two values of a dict swapped"
    else:
        return
    for i in range(len(seq) - 1):
        a, b = seq[i], seq[i + 1]
        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred):
            continue
        if ast.dump(a) == ast.dump(b) or (
            isinstance(a, ast.Constant) and isinstance(b, ast.Constant)
        ):
            continue
        items = [*seq[:i], b, a, *seq[i + 2 :]]
        new = copy.copy(node)
        if isinstance(node, ast.Call):
            new.args = items
        elif isinstance(node, ast.Dict):
            new.values = items
        else:
            new.elts = items
        yield what, new


def copies(node: ast.AST, ctx: Context) -> Offer:
    """A copy made into a view of (or the same object as) its input."""
    if not isinstance(node, ast.Call):
        return
    name = _last_name(node.func)
    if name == "array" and isinstance(node.func, ast.Attribute) and node.args:
        func = ast.Attribute(node.func.value, "asarray", ast.Load())
        yield (
            "a copying array call turned into one that may share memory",
            ast.Call(func, node.args, node.keywords),
        )
        if len(node.args) == 1 and not node.keywords:
            yield "a copy of an array replaced by the array itself", node.args[0]
    elif name == "copy" and not node.keywords:
        if isinstance(node.func, ast.Attribute) and not node.args:
            yield "a copy of an object replaced by the object itself", node.func.value
        elif len(node.args) == 1:
            yield "a copy of an object replaced by the object itself", node.args[0]


def rng_argument(node: ast.AST, ctx: Context) -> Offer:
    if not isinstance(node, ast.Call):
        return
    for i, arg in enumerate(node.args):
        if isinstance(arg, ast.Name) and arg.id == "rng":
            yield (
                "the `rng` argument of a call dropped",
                ast.Call(node.func, node.args[:i] + node.args[i + 1 :], node.keywords),
            )
    for i, keyword in enumerate(node.keywords):
        if keyword.arg == "rng":
            yield (
                "the `rng` argument of a call dropped",
                ast.Call(node.func, node.args, node.keywords[:i] + node.keywords[i + 1 :]),
            )


def break_continue(node: ast.AST, ctx: Context) -> Offer:
    if isinstance(node, ast.Break):
        yield "a `break` turned into `continue`", ast.Continue()
    elif isinstance(node, ast.Continue):
        yield "a `continue` turned into `break`", ast.Break()


# -- statement operators: (statement, context) -> (what, statements in its place)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def removal(stmt: ast.stmt, ctx: Context) -> Offer:
    if isinstance(stmt, ast.Pass | ast.Global | ast.Nonlocal) or _is_docstring(stmt):
        return
    if isinstance(stmt, ast.Return):
        if stmt.value is not None and not (
            isinstance(stmt.value, ast.Constant) and stmt.value.value is None
        ):
            yield "a return value replaced by None", [ast.Return(ast.Constant(None))]
        return
    kind = {
        ast.For: "a loop removed", ast.While: "a loop removed", ast.If: "an `if` block removed",
        ast.FunctionDef: "a method or inner function removed", ast.With: "a `with` block removed",
    }.get(type(stmt), "a statement removed")  # fmt: skip
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Yield | ast.YieldFrom):
        kind = "a `yield` removed"
    yield kind, [ast.Pass()]


def ignored_result(stmt: ast.stmt, ctx: Context) -> Offer:
    """``x = f(x, ...)`` -> ``f(x, ...)``: the call's result thrown away, ``x`` unchanged."""
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Call)
    ):
        target = stmt.targets[0].id
        if any(isinstance(n, ast.Name) and n.id == target for n in ast.walk(stmt.value)):
            yield "a call's result not kept (its input used instead)", [ast.Expr(stmt.value)]


def in_place(stmt: ast.stmt, ctx: Context) -> Offer:
    """``y = f(x * k)`` -> ``x *= k; y = f(x)``: an operation done in place on a local's value
    (an array argument is then changed for the caller)."""
    if not isinstance(stmt, ast.Assign | ast.AugAssign | ast.Return | ast.Expr):
        return
    for node in _expression_nodes(stmt):
        if (
            isinstance(node, ast.BinOp)
            and type(node.op) in ARITHMETIC
            and isinstance(node.left, ast.Name)
            and node.left.id in ctx.local_names
        ):
            name = node.left.id
            update = ast.AugAssign(ast.Name(name, ast.Store()), node.op, node.right)
            replaced = _replace_node(stmt, node, ast.Name(name, ast.Load()))
            yield "an operation done in place on its operand", [update, replaced]


def _expression_nodes(stmt: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of a simple statement's expressions, not inside lambdas or comprehensions."""
    stack = [c for c in ast.iter_child_nodes(stmt)]
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.Lambda | ast.comprehension | ast.ListComp | ast.GeneratorExp):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _replace_node(root: ast.AST, old: ast.AST, new: ast.AST) -> ast.AST:
    class Swap(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            return new if node is old else self.generic_visit(node)

    return Swap().visit(copy.deepcopy(root, memo={id(old): old}))


EXPRESSION_OPERATORS: dict[str, Callable[[ast.AST, Context], Offer]] = {
    "arithmetic": arithmetic,
    "comparison": comparison,
    "boundary": boundary,
    "boolean": boolean,
    "constant": constant,
    "string": strings,
    "keyword": keywords,
    "counterpart": counterpart,
    "swap": swap,
    "copy": copies,
    "rng": rng_argument,
    "break_continue": break_continue,
}
STATEMENT_OPERATORS: dict[str, Callable[[ast.stmt, Context], Offer]] = {
    "removal": removal,
    "ignored_result": ignored_result,
    "in_place": in_place,
}
#: Every operator's name: the ``operator`` of a mutant and of an equivalents-file entry.
OPERATORS = (*EXPRESSION_OPERATORS, *STATEMENT_OPERATORS)


def _bound_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    args = function.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return frozenset(names)


def _walk(node: ast.AST, path: Path, ctx: Context) -> Iterator[tuple[ast.AST, Path, Context]]:
    yield node, path, ctx
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        inner = Context((*ctx.functions, node.name), _bound_names(node), ctx.in_fstring)
    elif isinstance(node, ast.JoinedStr):
        inner = Context(ctx.functions, ctx.local_names, True)
    else:
        inner = ctx
    for name, value in ast.iter_fields(node):
        # a default or decorator belongs to the enclosing scope, but for naming the place, the
        # function it sits on is near enough
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield from _walk(item, (*path, (name, i)), inner)
        elif isinstance(value, ast.AST):
            yield from _walk(value, (*path, (name, None)), inner)


def edits(definition: ast.AST) -> Iterator[Edit]:
    """Every mutation of ``definition`` (a function or class definition), in source order."""
    for node, path, ctx in _walk(definition, (), Context()):
        if not path:
            continue  # the definition itself is never removed
        if isinstance(node, ast.stmt) and path[-1][1] is not None:
            for name, operator in STATEMENT_OPERATORS.items():
                for what, statements in operator(node, ctx):
                    yield Edit(name, what, path, ctx.functions, statements)
        for name, operator in EXPRESSION_OPERATORS.items():
            for what, replacement in operator(node, ctx):
                yield Edit(name, what, path, ctx.functions, replacement)


def apply(definition: ast.AST, edit: Edit) -> ast.AST:
    """A mutated deep copy of ``definition``; the original is left as it is."""
    root = copy.deepcopy(definition)
    parent: ast.AST = root
    for name, index in edit.path[:-1]:
        value = getattr(parent, name)
        parent = value[index] if index is not None else value
    name, index = edit.path[-1]
    replacement = copy.deepcopy(edit.replacement)
    if index is None:
        setattr(parent, name, replacement)
    else:
        items = list(getattr(parent, name))
        items[index : index + 1] = replacement if isinstance(replacement, list) else [replacement]
        setattr(parent, name, items)
    return ast.fix_missing_locations(root)


def node_at(root: ast.AST, path: Path) -> ast.AST:
    node = root
    for name, index in path:
        value = getattr(node, name)
        node = value[index] if index is not None else value
    return node
