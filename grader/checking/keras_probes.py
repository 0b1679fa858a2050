"""The probes of the Keras parts: drive the learner's metric, build their model, fit with their
callback, train with their schedule, all by part kind (``grader.assignment.PartKind``).

Why a module of its own: these are the probes that know Keras's shapes of things (a metric's
update/result/reset, a model's config, a fit); the core of the proxy (``submission``) only knows
calls. :class:`KerasProbes` is mixed into :class:`~grader.checking.submission.Submission`, whose
``require``, ``probe``, ``_bind``, ``contract`` and cache it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from grader import wire
from grader.assignment import AssignmentError, PartKind
from grader.checking.check_api import Incorrect
from grader.checking.model_audit import ModelAudit, ModelAuditError, audit_config

#: What a model is fitted on: one array (a single output), a list or a dict of arrays by name.
Targets = np.ndarray | list[np.ndarray] | tuple[np.ndarray, ...] | dict[str, np.ndarray]


def probe_images(shape: tuple[int, ...], n: int = 8) -> np.ndarray:
    """Fixed, label-free uint8 inputs of ``shape`` for structural probes of a model: it must run
    on them."""
    return np.random.default_rng(0).integers(0, 256, size=(n, *shape), dtype=np.uint8)


class KerasProbes:
    """Probes of the metric, model, callback and schedule parts (a mixin of ``Submission``)."""

    def _named(self, name: str | None, kind: PartKind) -> str:
        """``name``, or the assignment's graded part of ``kind``."""
        return name or self.assignment.part_of_kind(kind)

    def probe_images(self) -> np.ndarray:
        """The inputs every structural probe of the model runs on (the ``model_input`` hook)."""
        return probe_images(tuple(self.assignment.hook("model_input")))

    def input_scale(self) -> float | None:
        """What uint8 images are multiplied by before they reach the model (the ``input_scale``
        hook, e.g. 1/255); None: they reach it as float32 of the same values."""
        scale = self.assignment.hook("input_scale")
        return None if scale is None else float(scale)

    def model(
        self, images: np.ndarray | None = None, seed: int = 0, *, factory: str | None = None
    ) -> dict[str, Any]:
        """Build the learner's model with ``factory`` (default: the assignment's model part) and
        describe it, with its predictions on ``images`` (by default :meth:`probe_images`, so that
        every check, and :meth:`model_audit`, judges one build: its config and its predictions
        come from the same model)."""
        factory = self._named(factory, PartKind.MODEL)
        self.require(factory)
        arrays = {"images": self.probe_images() if images is None else images}
        return self.probe(
            "model",
            {"factory": factory, "seed": seed, "input_scale": self.input_scale()},
            arrays,
            doing=f"building your model with {factory}()",
            part=factory,
        )

    def model_audit(self) -> ModelAudit:
        """The model rebuilt in this process from its Keras config (see ``grader.checking.model_audit``).

        Cached. Raises :class:`Incorrect` when the config cannot be rebuilt safely (custom layers,
        Lambda layers, not a Keras model) and LearnerError/NotAttempted as :meth:`model` does.
        """
        cached = self._cache.get("model_audit")
        if cached is None:
            info = self.model()
            try:
                cached = audit_config(info.get("config_json") if isinstance(info, dict) else None)
            except ModelAuditError as error:
                notes = info.get("notes") if isinstance(info, dict) else None
                why = [n for n in notes or [] if isinstance(n, str) and n.startswith("config:")]
                cached = Incorrect(error.message + (f" ({why[0]})" if why else ""))
            self._cache["model_audit"] = cached
        if isinstance(cached, Incorrect):
            raise cached
        return cached

    def callback(
        self,
        x: np.ndarray,
        targets: Targets,
        *,
        epochs: int,
        steps: int,
        kwargs: dict | None = None,
        cls: str | None = None,
        factory: str | None = None,
        epoch_images: np.ndarray | None = None,
        stand_in: bool = False,
    ) -> dict[str, Any]:
        """Fit with the learner's callback class ``cls``: on their model when ``factory()``
        works, else on the assignment's stand-in model (its ``stand_in`` hook: the callback is
        graded on its own); with ``stand_in=True`` on the stand-in only (a property that needs a
        model the check knows). ``targets`` as the model's outputs take them: one array, a list
        or a dict of arrays by output name. Keyword arguments the class does not take are left
        out and listed under ``dropped_kwargs``. By default, the assignment's callback and model
        parts. With ``epoch_images``, the reply's ``epoch_predictions`` holds what the model
        predicted on them after each epoch (after the learner's callback ran)."""
        cls = self._named(cls, PartKind.CALLBACK)
        self.require(cls)
        if not stand_in:
            factory = self._named(factory, PartKind.MODEL)
        spec = self.assignment.hook("stand_in")
        if stand_in and spec is None:
            raise AssignmentError(
                f"assignment {self.assignment.name!r} has no stand_in hook: a callback check "
                "cannot ask for the stand-in model"
            )
        wanted = dict(kwargs or {})
        given = self._bind(cls, (), wanted, optional=tuple(wanted))
        tree, arrays = wire.pack(given)
        target_tree, arrays = wire.pack(targets, arrays)
        arrays["x"] = x
        if epoch_images is not None:
            arrays["epoch_images"] = epoch_images
        args = {
            "class": cls,
            "factory": factory,
            "targets": target_tree,
            "stand_in": spec() if spec else None,
            "model": "stand-in" if stand_in else "yours",
            "epochs": epochs,
            "steps": steps,
            "kwargs": tree,
            "seed": 0,
            "input_scale": self.input_scale(),
        }
        if epoch_images is not None:
            args["epoch_images"] = "epoch_images"
        report = self.probe(
            "callback", args, arrays, doing=f"training with your {cls} callback", part=cls
        )
        dropped = sorted(set(wanted) - set(given))
        if dropped and isinstance(report, dict):
            report = {
                **report,
                "dropped_kwargs": dropped,
                "signature_problem": self.contract.signature_message(
                    cls,
                    self.loaded_names().get(cls),
                    "its __init__ does not take " + ", ".join(f"`{k}`" for k in dropped),
                ),
            }
        return report

    def train(
        self,
        batches: Callable[[int], tuple[np.ndarray, Targets]],
        test_images: np.ndarray,
        *,
        epochs: int,
        steps_per_epoch: int,
        seed: int,
        factory: str | None = None,
        schedule: str | None = None,
    ) -> dict[str, Any]:
        """Exactly ``epochs x steps_per_epoch`` steps on batches made here (no time cut-off) of
        the model ``factory()`` builds, with the learning-rate ``schedule`` when the learner
        defines it; the worker gets the test images without labels. ``batches(index)`` returns
        (images, targets), the targets as the model's outputs take them: one array, a list or a
        dict of arrays by output name. By default, the assignment's model part and its schedule
        part, if it has one."""
        factory = self._named(factory, PartKind.MODEL)
        if schedule is None and any(p.kind == PartKind.SCHEDULE for p in self.assignment.parts):
            schedule = self.assignment.part_of_kind(PartKind.SCHEDULE)
        self.require(factory)

        def answer(header: dict[str, Any], _: dict) -> tuple[dict, dict] | None:
            if header.get("need") != "batch":
                return None
            images, targets = batches(int(header.get("index", 0)))
            tree, arrays = wire.pack(targets)
            return {"ok": True, "targets": tree}, {"images": images, **arrays}

        args = {
            "factory": factory,
            "schedule": schedule,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "seed": seed,
            "input_scale": self.input_scale(),
        }
        return self.probe(
            "train",
            args,
            {"test_images": test_images},
            doing="training your model",
            part=factory,
            cache_key=f"train:{factory}:{schedule}:{epochs}:{steps_per_epoch}:{seed}",
            on_message=answer,
        )
