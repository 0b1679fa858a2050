"""The probes of a metric part: drive the learner's Keras metric through scripts of updates,
results and resets (each script on a fresh instance), or inside ``model.fit``.

Why a module of its own: a metric's properties are judged one at a time by comparing it with
itself (fresh instances for its value, its own eager run for its run inside fit), and these are
the requests that make that possible. :class:`MetricProbes` is mixed into
:class:`~grader.checking.submission.Submission`, whose ``require`` and ``probe`` it uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.assignment import PartKind


class MetricProbes:
    """Probes of the metric part (a mixin of ``Submission``)."""

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
        cls = cls or self.assignment.part_of_kind(PartKind.METRIC)
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
        cls = cls or self.assignment.part_of_kind(PartKind.METRIC)
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
