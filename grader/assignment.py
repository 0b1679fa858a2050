"""What an assignment is to the engine: one folder, described by its manifest ``assignment.yaml``.

Why: the engine (ingest, sandbox, checking, results, batch, authoring) grades any assignment and
names nothing of any one of them. Everything that is one course project lives in its folder: the
manifest (title, the graded parts in notebook order with their kind and stub, the notebooks, the
files the learner bundle ships), the checks (``checks/public``, ``checks/hidden``), the trusted
reference and the optional hooks the engine calls by name (see :data:`HOOKS`). The folder is a
Python package, so its checks and hooks import its own modules.

An assignment is found by path (a folder holding ``assignment.yaml``), among the folders beside the
``grader`` package (``assignments/*/``: a checkout, a ``pip install .``, the learner bundle), or
through the entry-point group ``grader.assignments`` (a package installed on its own, whose entry
point names the assignment's package). See ``assignments/AUTHORING.md``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from grader import environment
from grader.parts import Part, PartKind
from grader.validation import problems

if TYPE_CHECKING:
    from grader.ingest import IngestRules

MANIFEST = "assignment.yaml"
ENTRY_POINT_GROUP = "grader.assignments"
#: The folder beside the ``grader`` package that holds the assignments shipped with it.
BUILT_IN = Path(__file__).resolve().parents[1] / "assignments"

#: The hooks an assignment may provide (manifest ``hooks:``, each "module:attribute" of its
#: package); every one is optional.
HOOKS = {
    "model_input": "the shape of one model input, e.g. [144, 144, 3]: the model probes' images",
    "input_scale": "a number uint8 images are multiplied by before they reach the model (e.g. "
    "1/255); without it they reach it as float32 of the same values",
    "stand_in": "() -> {'json', 'compile'}: the model a callback is tried on when the learner's "
    "model factory fails",
    "known_causes": "((regex, hint), ...): hints for learner errors whose text matches",
    "pictures": "(Artifacts) -> {name: PNG bytes}: the report's pictures (trusted side only)",
    "habits": "(Parsed, Resolver) -> (Habit, ...): another course's idioms found in a notebook",
    "habits_heading": "the report's heading over the table of habits found",
    "habits_intro": "the summary's opening line when a notebook shows two kinds of habit or more",
    "differences": "() -> str: the Markdown table of what differs from that other course",
    "dropped_advice": "(name, statement text) -> str: what to write instead of top-level code "
    "the grader does not run",
    "quiz_generators": "a quiz.generators.Generators: the generators of the parameterised "
    "questions of the assignment's quiz (its quiz/ folder)",
}


class AssignmentError(ValueError):
    """No such assignment, an ambiguous choice, or a malformed manifest; the message says which."""


_TEXT = {"type": "string"}
_PATHS = {"type": "array", "items": {"type": "string", "minLength": 1}}

#: What ``assignment.yaml`` may hold (checked with jsonschema; messages by grader.validation).
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "messages": {
        "type": "expected a mapping of settings",
        "required": "no graded part (parts: [...])",
    },
    "required": ["parts"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "title": _TEXT,
        "parts": {
            "type": "array",
            "minItems": 1,
            "messages": {"minItems": "is empty: list the graded parts (name, kind, stub)"},
            "items": {
                "type": "object",
                "required": ["name"],
                "messages": {"required": "needs a name (the learner's definition)"},
                "additionalProperties": False,
                "noun": "key",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "kind": {"enum": [kind.value for kind in PartKind]},
                    "stub": _TEXT,
                    "missing": _TEXT,
                },
            },
        },
        "groups_after": _PATHS,
        "solution": _TEXT,
        "learner": _TEXT,
        "credit": _TEXT,
        "bundle": _PATHS,
        "bundle_readme": _TEXT,
        "requirements": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "examples": _TEXT,
        "hooks": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "noun": "hook",
            "properties": {
                name: {
                    "type": "string",
                    "pattern": r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$",
                    "messages": {"pattern": "should be module:attribute of the folder's package"},
                }
                for name in HOOKS
            },
        },
    },
}


@dataclass(frozen=True)
class Assignment:
    """An assignment as its manifest declares it; paths are absolute."""

    name: str
    title: str
    folder: Path
    package: str  # the folder's import name
    import_root: Path  # the folder on sys.path that makes ``package`` importable
    parts: tuple[Part, ...]
    groups_after: tuple[str, ...]  # check groups graded after the parts (e.g. training)
    solution: Path | None
    learner: Path | None
    credit: str  # a line in every report's footer (licences of the material shown)
    bundle: tuple[str, ...]  # files of the folder the learner bundle ships, relative
    bundle_readme: Path | None  # the learner bundle's README (Markdown; {differences} is filled)
    #: What the bundle's requirements.txt installs (names take the project's tested ranges);
    #: None: the project's whole ``learner`` group. See grader.authoring.release.
    requirements: tuple[str, ...] | None
    examples: Path | None  # a folder of example submissions (``./dev grade``)
    hooks: tuple[tuple[str, str], ...]  # hook name -> "module:attribute"

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts)

    @property
    def check_order(self) -> tuple[str, ...]:
        """Check groups in report order: the parts as the notebook orders them, then the rest."""
        return (*self.part_names, *self.groups_after)

    @property
    def checks_dir(self) -> Path:
        return self.folder / "checks"

    @property
    def private_paths(self) -> tuple[Path, ...]:
        """What no sandbox may read: the whole folder (the reference, the hidden checks) and the
        solution notebook."""
        return tuple(p for p in (self.folder, self.solution) if p is not None)

    def part(self, name: str) -> Part | None:
        return next((part for part in self.parts if part.name == name), None)

    def stub(self, name: str) -> str:
        part = self.part(name)
        return part.stub if part else name

    def part_of_kind(self, kind: PartKind) -> str:
        """The name of the (first) part of ``kind``; AssignmentError when there is none."""
        for part in self.parts:
            if part.kind == kind:
                return part.name
        raise AssignmentError(f"assignment {self.name!r} has no graded part of kind {kind}")

    def ingest_rules(self) -> IngestRules:
        """What the ingestion stage needs of this assignment."""
        from grader.ingest import IngestRules  # here: this module stays a leaf the stages import

        return IngestRules(
            parts=self.part_names,
            specs=self.parts,
            dropped_advice=self.hook("dropped_advice"),
            habits=self.hook("habits"),
        )

    def hook(self, name: str, default: Any = None) -> Any:
        """The hook's object, imported on first use; ``default`` when the manifest has none."""
        if name not in HOOKS:
            raise AssignmentError(f"unknown hook {name!r}; hooks are: {', '.join(HOOKS)}")
        target = dict(self.hooks).get(name)
        if target is None:
            return default
        return _import_attribute(self.package, str(self.import_root), target)


@functools.cache
def _import_attribute(package: str, import_root: str, target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    _own_package(package.split(".")[0], Path(import_root))
    module = importlib.import_module(f"{package}.{module_name}")
    return getattr(module, attribute) if attribute else module


def _own_package(top: str, root: Path) -> None:
    """Make ``top`` the package in ``root`` before a hook is imported from it.

    Why: two assignment folders may share a package name (a copy of a course, two courses whose
    folders are both ``course``); importing by name alone would take the hook from whichever
    was imported or found first on ``sys.path``, and miss it or run the other course's."""
    init = root / top / "__init__.py"
    loaded = sys.modules.get(top)
    if loaded is not None and getattr(loaded, "__file__", None):
        if Path(loaded.__file__).resolve() == init.resolve():
            return
    elif loaded is None:
        found = importlib.util.find_spec(top)
        if found is not None and found.origin and Path(found.origin).resolve() == init.resolve():
            return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]  # another folder's package of that name: this one's from now on
    spec = importlib.util.spec_from_file_location(
        top, init, submodule_search_locations=[str(root / top)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    spec.loader.exec_module(module)


def _package_of(folder: Path) -> tuple[str, Path]:
    """The folder's dotted import name and the folder above its outermost package."""
    names = [folder.name]
    root = folder.parent
    while (root / "__init__.py").is_file():
        names.insert(0, root.name)
        root = root.parent
    return ".".join(names), root


def load(folder: Path | str) -> Assignment:
    """The assignment in ``folder`` (which holds ``assignment.yaml``)."""
    folder = Path(folder).resolve()
    manifest = folder / MANIFEST
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except OSError as error:
        raise AssignmentError(f"{manifest}: cannot read the manifest ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise AssignmentError(f"{manifest}: not valid YAML ({error})") from None
    if not (folder / "__init__.py").is_file():
        raise AssignmentError(f"{folder} is not a Python package: add an empty __init__.py")
    found = problems(MANIFEST_SCHEMA, data)
    if found:
        raise AssignmentError(f"{manifest}: " + "; ".join(found))
    parts = tuple(
        Part(
            name=str(p["name"]),
            kind=PartKind(p.get("kind", "function")),
            stub=str(p.get("stub", p["name"])),
            missing=" ".join(str(p.get("missing", "")).split()),
        )
        for p in data["parts"]
    )
    hooks = data.get("hooks") or {}
    package, import_root = _package_of(folder)

    def path(key: str) -> Path | None:
        value = data.get(key)
        return (folder / value).resolve() if value else None

    return Assignment(
        name=str(data.get("name") or folder.name),
        title=str(data.get("title") or folder.name),
        folder=folder,
        package=package,
        import_root=import_root,
        parts=parts,
        groups_after=tuple(data.get("groups_after") or ()),
        solution=path("solution"),
        learner=path("learner"),
        credit=str(data.get("credit", "")),
        bundle=tuple(data.get("bundle") or (MANIFEST, "__init__.py")),
        bundle_readme=path("bundle_readme"),
        requirements=(
            tuple(str(r) for r in data["requirements"]) if "requirements" in data else None
        ),
        examples=path("examples"),
        hooks=tuple(sorted((str(k), str(v)) for k, v in hooks.items())),
    )


def discover() -> dict[str, Assignment]:
    """Every assignment this install offers, by name: the folders beside the ``grader`` package,
    then the entry points of the group ``grader.assignments``."""
    found: dict[str, Assignment] = {}
    if BUILT_IN.is_dir():
        for manifest in sorted(BUILT_IN.glob(f"*/{MANIFEST}")):
            assignment = load(manifest.parent)
            found.setdefault(assignment.name, assignment)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        spec = importlib.util.find_spec(entry.value)
        if spec is None or not spec.submodule_search_locations:
            raise AssignmentError(
                f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) is not a package"
            )
        assignment = load(Path(next(iter(spec.submodule_search_locations))))
        found.setdefault(assignment.name, assignment)
    return found


def resolve(choice: Assignment | str | Path | None = None) -> Assignment:
    """The assignment a user named: a folder path, a discovered name, or (None) the one
    ``$GRADER_ASSIGNMENT`` names, else the only one; an Assignment is returned as it is."""
    if isinstance(choice, Assignment):
        return choice
    if choice is None:
        choice = environment.ASSIGNMENT.get()
    if choice is not None and (Path(choice) / MANIFEST).is_file():
        return load(Path(choice))
    offered = discover()
    if choice is None:
        if len(offered) == 1:
            return next(iter(offered.values()))
        if not offered:
            raise AssignmentError(
                f"no assignment found (looked in {BUILT_IN} and the entry points of "
                f"{ENTRY_POINT_GROUP}); give a folder holding {MANIFEST} with --assignment"
            )
        raise AssignmentError(
            f"this course has several assignments ({', '.join(sorted(offered))}): "
            f"choose one with --assignment NAME (or set ${environment.ASSIGNMENT.name})"
        )
    if str(choice) in offered:
        return offered[str(choice)]
    raise AssignmentError(
        f"no assignment {str(choice)!r}: offered are {', '.join(sorted(offered)) or 'none'}, "
        f"or give a folder holding {MANIFEST}"
    )
