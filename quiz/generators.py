"""Parameterised questions: a registry of generators that an assignment fills with its own.

A bank question with ``generator: NAME`` is a template: its prompt, code and explanation are
formatted with the ``params`` the generator returns (so ``{iou:.2f}`` works; write ``{{`` for a
literal brace), and its answer or options come from the generator, never from the YAML. Each
generator declares the question type it produces, so the bank rejects a mismatch at load time.

Why a registry object and not a module of generators: the numbers of a question are the course's
(image sizes, the box it measures, its schedule), so the generators live in the assignment's
folder, given to the quiz by its ``quiz_generators`` hook (``assignments/AUTHORING.md``); this
module only says what a generator is and runs one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from quiz.model import Option


@dataclass(frozen=True)
class Generated:
    """What a generator returns: template parameters plus the computed answer or options."""

    params: dict[str, Any]
    answer: float | None = None
    tolerance: float | None = None
    options: tuple[Option, ...] = field(default=())


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    type: str  # the question type it makes
    func: Callable[..., Generated]  # (rng: random.Random, **params) -> Generated
    doc: str  # the first line of its docstring


class Generators(Mapping[str, GeneratorSpec]):
    """Generators by name. ``@generators.register("name", "numeric")`` adds one."""

    def __init__(self) -> None:
        self._specs: dict[str, GeneratorSpec] = {}

    def register(
        self, name: str, qtype: str
    ) -> Callable[[Callable[..., Generated]], Callable[..., Generated]]:
        """Register a generator under ``name``, producing questions of type ``qtype``."""

        def add(func: Callable[..., Generated]) -> Callable[..., Generated]:
            if name in self._specs:
                raise ValueError(f"generator {name!r} is registered twice")
            doc = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
            self._specs[name] = GeneratorSpec(name, qtype, func, doc)
            return func

        return add

    def run(self, name: str, rng: random.Random, params: dict[str, Any] | None = None) -> Generated:
        """Run generator ``name`` with ``rng``; ``params`` are the bank entry's keyword options."""
        return self._specs[name].func(rng, **(params or {}))

    def __getitem__(self, name: str) -> GeneratorSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    # A registry is one object (a Bank holds the one it was validated with), not a value.
    __eq__ = object.__eq__
    __hash__ = object.__hash__


#: For a bank without parameterised questions.
NO_GENERATORS = Generators()
