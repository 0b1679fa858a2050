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
from grader.assignment import PartKind
from grader.checking.check_api import Incorrect
from grader.checking.model_audit import ModelAudit, ModelAuditError, audit_config


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

    def metric(
        self,
        steps: list[tuple],
        *,
        graph: bool = False,
        cls: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Drive the metric class ``cls`` (default: the assignment's metric part) through steps:
        ("update", y_true, y_pred), ("result",), ("reset",)."""
        reply = self.metric_scripts([steps], graph=graph, cls=cls, kwargs=kwargs)
        return {**reply, "results": reply["scripts"][0]}

    def metric_scripts(
        self,
        scripts: list[list[tuple]],
        *,
        graph: bool = False,
        cls: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Each script of steps on a fresh instance of the metric class ``cls(**kwargs)``, in
        one request: ``{"is_metric", "name" (the first instance's), "scripts": [[results]]}``.
        Fresh instances keep properties apart: one script's state cannot leak into another's."""
        cls = self._named(cls, PartKind.METRIC)
        self.require(cls)
        arrays: dict[str, np.ndarray] = {}
        encoded = [self._metric_steps(steps, arrays) for steps in scripts]
        return self.probe(
            "metric",
            {"class": cls, "scripts": encoded, "graph": graph, "kwargs": dict(kwargs or {})},
            arrays,
            doing=f"using your {cls} metric",
            part=cls,
        )

    def metric_fit(
        self,
        epochs: list[list[tuple[np.ndarray, np.ndarray]]],
        *,
        output: str,
        cls: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The metric inside ``model.fit``: compiled on ``output`` of a weightless model whose
        predictions are the ``y_pred`` sent, fitted on ``epochs`` of (y_true, y_pred) batches.
        Returns ``{"history": {key: [per-epoch values]}, "notes", "name"}``."""
        cls = self._named(cls, PartKind.METRIC)
        self.require(cls)
        arrays: dict[str, np.ndarray] = {}
        names = []
        for epoch in epochs:
            names.append([])
            for y_true, y_pred in epoch:
                t, p = f"s{len(arrays)}", f"s{len(arrays) + 1}"
                arrays[t], arrays[p] = (
                    np.asarray(y_true, np.float32),
                    np.asarray(y_pred, np.float32),
                )
                names[-1].append([t, p])
        return self.probe(
            "metric_fit",
            {"class": cls, "epochs": names, "output": output, "kwargs": dict(kwargs or {})},
            arrays,
            doing=f"fitting a model with your {cls} metric",
            part=cls,
        )

    @staticmethod
    def _metric_steps(steps: list[tuple], arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        script = []
        for step in steps:
            if step[0] == "update":
                names = [f"s{len(arrays)}", f"s{len(arrays) + 1}"]
                arrays[names[0]] = np.asarray(step[1], np.float32)
                arrays[names[1]] = np.asarray(step[2], np.float32)
                script.append({"op": "update", "y_true": names[0], "y_pred": names[1]})
            else:
                script.append({"op": step[0]})
        return script

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
            {"factory": factory, "seed": seed},
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
        targets: dict[str, np.ndarray],
        *,
        epochs: int,
        steps: int,
        kwargs: dict | None = None,
        cls: str | None = None,
        factory: str | None = None,
        epoch_images: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Fit with the learner's callback class ``cls``: on their model when ``factory()``
        works, else on the assignment's stand-in model (its ``stand_in`` hook: the callback is
        graded on its own). Keyword arguments the class does not take are left out and listed
        under ``dropped_kwargs``. By default, the assignment's callback and model parts. With
        ``epoch_images``, the reply's ``epoch_predictions`` holds what the model predicted on
        them after each epoch (after the learner's callback ran)."""
        cls = self._named(cls, PartKind.CALLBACK)
        factory = self._named(factory, PartKind.MODEL)
        self.require(cls)
        stand_in = self.assignment.hook("stand_in")
        wanted = dict(kwargs or {})
        given = self._bind(cls, (), wanted, optional=tuple(wanted))
        tree, arrays = wire.pack(given)
        arrays.update({"x": x, **targets})
        if epoch_images is not None:
            arrays["epoch_images"] = epoch_images
        args = {
            "class": cls,
            "factory": factory,
            "targets": list(targets),
            "stand_in": stand_in() if stand_in else None,
            "epochs": epochs,
            "steps": steps,
            "kwargs": tree,
            "seed": 0,
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
        batches: Callable[[int], tuple[np.ndarray, dict[str, np.ndarray]]],
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
        defines it; the worker gets the test images without labels. By default, the
        assignment's model part and its schedule part, if it has one."""
        factory = self._named(factory, PartKind.MODEL)
        if schedule is None and any(p.kind == PartKind.SCHEDULE for p in self.assignment.parts):
            schedule = self.assignment.part_of_kind(PartKind.SCHEDULE)
        self.require(factory)

        def answer(header: dict[str, Any], _: dict) -> tuple[dict, dict] | None:
            if header.get("need") != "batch":
                return None
            images, targets = batches(int(header.get("index", 0)))
            return {"ok": True}, {"images": images, **targets}

        args = {
            "factory": factory,
            "schedule": schedule,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "seed": seed,
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
