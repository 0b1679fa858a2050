"""Probes that fit a model: the learner's callback on a short fit, and the training run.

``callback`` fits briefly with the learner's callback class and reports the figures it drew (on
the learner's model, or on the trusted side's stand-in model when that one is missing or broken).
``train`` runs exactly the steps asked for on batches pulled from the trusted side, seeded and
deterministic, then predicts on the test images. The learner's names (classes, functions) and the
stand-in model come in the request: nothing here knows the course.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from grader import wire

from .channel import Channel
from .encoding import Encoder, history_floats
from .probes_keras import _as_float_images, _build_model, _predict
from .state import (
    LEARNER_MODULE,
    STATE,
    BadRequest,
    LearnerFailure,
    _graded,
    _isinstance,
    _keras,
    _len,
    _named,
    _seed_everything,
    _type,
)
from .tracebacks import _exc_message, learner_code


def _batches(x: np.ndarray, targets: Any):
    while True:
        yield x, targets


def _rgb(colour: Any) -> list[float] | None:
    from matplotlib.colors import to_rgb

    try:
        return [float(c) for c in to_rgb(colour)]
    except (ValueError, TypeError):
        return None


#: At most this many panels per figure, and figures, are described (the wire caps arrays).
MAX_PANELS, MAX_FIGURES = 16, 8


def _panel(ax: Any, encoder: Encoder) -> dict[str, Any]:
    """One axes as data: the image it shows (as drawn by imshow), its title and the title's
    colour, and the rectangles drawn over it (data coordinates, edge colour)."""
    from matplotlib.patches import Rectangle

    panel: dict[str, Any] = {"title": str(ax.get_title())[:100], "title_colour": None}
    panel["title_colour"] = _rgb(ax.title.get_color())
    if ax.images:
        image = np.asarray(ax.images[0].get_array())
        if image.dtype.kind in "biuf" and image.ndim in (2, 3) and image.size <= 512 * 512 * 4:
            panel["image"] = encoder.encode(
                image.astype(np.float32) if image.dtype == np.float64 else image
            )
    panel["rectangles"] = [
        [
            *(float(v) for v in (p.get_x(), p.get_y(), p.get_width(), p.get_height())),
            _rgb(p.get_edgecolor()),
        ]
        for p in ax.patches[:32]
        if _isinstance(p, Rectangle)
    ]
    return panel


def _figure_summary(fig: Any, encoder: Encoder | None = None) -> dict[str, Any]:
    from matplotlib.patches import Rectangle

    axes = list(fig.axes)
    summary = {
        "axes": _len(axes),
        "rectangles": sum(1 for ax in axes for p in ax.patches if _isinstance(p, Rectangle)),
        "lines": sum(_len(ax.lines) for ax in axes),
        "images": sum(_len(ax.images) for ax in axes),
        "titles": [ax.get_title()[:100] for ax in axes][:32],
    }
    if encoder is not None:
        summary["panels"] = [_panel(ax, encoder) for ax in axes[:MAX_PANELS]]
    return summary


def _render(fig: Any, max_width: int = 1200, max_height: int = 1600) -> np.ndarray:
    """The figure as (h, w, 3) uint8 pixels at its own resolution, so that its titles stay
    legible in the report; a figure larger than ``max_width`` x ``max_height`` is drawn again at
    a lower dpi (never decimated: dropped rows and columns make text unreadable). At most
    1200 x 1600 x 3 bytes, about 5.8 MB, well within one message of the wire."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    width, height = (float(v) for v in fig.get_size_inches() * fig.dpi)
    scale = min(1.0, max_width / max(width, 1.0), max_height / max(height, 1.0))
    if scale < 1.0:
        fig.set_dpi(fig.dpi * scale)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    return np.ascontiguousarray(rgb[:max_height, :max_width])


COMPILE_KEYS = ("optimizer", "loss", "metrics", "loss_weights")


def _stand_in_model(keras: Any, spec: Any, seed: Any) -> Any:
    """The trusted side's stand-in model, so that the callback is graded on its own when the
    learner's model is missing or broken: ``spec`` holds the model's Keras JSON (``"json"``,
    plain Keras layers, rebuilt without custom objects) and its compile settings
    (``"compile"``: optimizer, loss and metrics by name)."""
    if not _isinstance(spec, dict) or not _isinstance(spec.get("json"), str):
        raise BadRequest("'stand_in' needs the model's Keras JSON under 'json'")
    settings = spec.get("compile") or {}
    if not _isinstance(settings, dict) or any(k not in COMPILE_KEYS for k in settings):
        raise BadRequest(f"'stand_in' compile settings may only be {', '.join(COMPILE_KEYS)}")
    keras.utils.set_random_seed(int(seed or 0) % 2**32)
    stand_in = keras.models.model_from_json(spec["json"])
    stand_in.compile(**settings)
    return stand_in


def _targets(tree: Any, arrays: dict, what: str) -> Any:
    """The targets to fit on, as the model's outputs take them: one array (a single-output
    model), a list of arrays (a list-output model) or a dict of arrays by output name. ``tree``
    is their wire tree (``grader.wire.pack``) over the arrays sent."""
    try:
        targets = wire.resolve(tree, arrays)
    except wire.WireError as error:
        raise BadRequest(f"{what}: bad targets ({error})") from None
    if _isinstance(targets, np.ndarray):
        return targets
    values = list(targets.values()) if _isinstance(targets, dict) else targets
    if (
        not _isinstance(values, list)
        or not values
        or not all(_isinstance(v, np.ndarray) for v in values)
    ):
        raise BadRequest(f"{what}: targets must be an array, a list or a dict of arrays")
    # a generator's list is not a structure tf.data takes: a tuple is, one array per output
    return tuple(values) if _isinstance(targets, list) else targets


def _fit_with_callback(
    keras: Any,
    model: Any,
    args: dict,
    arrays: dict,
    plt: Any,
    figure_cls: Any,
    encoder: Encoder,
) -> dict[str, Any]:
    """One short fit of ``model`` with a fresh instance of the learner's callback class."""
    name = _named(args, "class")
    cls = _graded(name)
    with learner_code(f"creating {name}()"):
        cb = cls(**dict(wire.resolve(args.get("kwargs", {}), arrays)))
    is_callback = _isinstance(cb, keras.callbacks.Callback)
    x = _as_float_images(arrays["x"], args.get("input_scale"))
    targets = _targets(args.get("targets"), arrays, "callback")
    created: list[Any] = []
    original_init = figure_cls.__init__

    def tracking_init(self: Any, *a: Any, **kw: Any) -> None:
        original_init(self, *a, **kw)
        created.append(self)

    predictions: list[Any] = []
    watched = args.get("epoch_images")  # what the model predicts after each epoch, for the checks
    callbacks = [cb] if is_callback else []
    if watched is not None:
        if not _isinstance(watched, str) or watched not in arrays:
            raise BadRequest("'epoch_images' must name an array sent with the request")

        class Predictions(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                predictions.append(
                    _predict(self.model, arrays[watched], encoder, args.get("input_scale"))
                )

        callbacks.append(Predictions())
    before = set(plt.get_fignums())
    figure_cls.__init__ = tracking_init
    model.run_eagerly = True  # a few steps: tracing the train and predict functions costs more
    try:
        with learner_code("fitting with the callback"):
            history = model.fit(
                _batches(x, targets),
                epochs=int(args.get("epochs", 1)),
                steps_per_epoch=int(args.get("steps", 1)),
                callbacks=callbacks,
                verbose=0,
                shuffle=False,  # a generator is not shuffled: Keras would warn in the output
            )
    finally:
        figure_cls.__init__ = original_init
        open_new = [n for n in plt.get_fignums() if n not in before]
    listed = []
    for attr, value in list(getattr(cb, "__dict__", {}).items()):
        if _isinstance(value, list) and any(_isinstance(v, figure_cls) for v in value):
            listed.append(attr)
            created.extend(v for v in value if _isinstance(v, figure_cls) and v not in created)
    notes: list[str] = []
    floats = history_floats(history, notes)
    with learner_code("describing the figures"):
        figures = [
            _figure_summary(f, encoder if i < MAX_FIGURES else None)
            for i, f in enumerate(created[:64])
        ]
    return {
        "is_callback": is_callback,
        "figures_created": _len(created),
        "figures_open": _len(open_new),
        "figure_list_attributes": listed,
        "figures": figures,
        "epoch_predictions": predictions,
        "history": floats,
        "history_notes": notes,
        "_created": created,
    }


def op_callback(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Fit briefly with the learner's callback class (``args["class"]``) and report the figures
    it drew.

    The learner's model is used when their factory (``args["factory"]``) builds one and the fit
    succeeds with it; otherwise the callback runs again on the stand-in model the request sends
    (``args["stand_in"]``), so that a missing or broken model (or metric compiled into it) never
    costs the callback's points. Without a stand-in, the model's failure is the probe's. With
    ``args["model"] == "stand-in"`` only the stand-in is used (a check whose property needs a
    model it knows, e.g. the metrics it logs). ``args["targets"]`` is the targets' wire tree: one
    array, a list or a dict of arrays, as the model's outputs take them.
    """
    keras = _keras()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.figure
    import matplotlib.pyplot as plt

    if "x" not in arrays:
        raise BadRequest("callback needs an 'x' batch and target arrays")
    _targets(args.get("targets"), arrays, "callback")
    seed = args.get("seed")
    on_stand_in = args.get("model") == "stand-in"  # the check asks for it, whatever the learner's
    if on_stand_in and args.get("stand_in") is None:
        raise BadRequest("'model': 'stand-in' needs the stand-in model under 'stand_in'")
    result: dict[str, Any] | None = None
    problem: LearnerFailure | None = None
    model_problem = ""
    encoder = Encoder(prefix="f")
    if not on_stand_in:
        try:
            model = _build_model(seed, _named(args, "factory"))
        except LearnerFailure as failure:
            model_problem, problem = failure.message, failure
        else:
            try:
                result = _fit_with_callback(
                    keras, model, args, arrays, plt, matplotlib.figure.Figure, encoder
                )
            except LearnerFailure as failure:
                model_problem, problem = f"with your model: {failure.message}", failure
            plt.close("all")
    if result is None:
        if args.get("stand_in") is None and problem is not None:
            raise problem
        encoder = Encoder(prefix="f")  # nothing of the failed fit's arrays is sent
        model = _stand_in_model(keras, args["stand_in"], seed)
        result = _fit_with_callback(
            keras, model, args, arrays, plt, matplotlib.figure.Figure, encoder
        )
    result["model"] = "stand-in" if on_stand_in or model_problem else "yours"
    result["model_problem"] = model_problem
    created = result.pop("_created")
    if created:
        try:
            result["last_figure"] = encoder.encode(_render(created[-1], 1200, 1600))
        except Exception as exc:
            result["render_error"] = _exc_message(exc)
    for f in created:
        plt.close(f)
    plt.close("all")
    return {"result": result}, encoder.arrays


def _learner_metric(metric: Any) -> bool:
    """A metric object (or class) defined by the learner's code."""
    kind = metric if _isinstance(metric, type) else _type(metric)
    return getattr(kind, "__module__", None) == LEARNER_MODULE


def _without_learner_metrics(spec: Any) -> Any:
    """A compile ``metrics`` argument without the learner's own metric objects."""
    if _isinstance(spec, dict):
        return {k: _without_learner_metrics(v) for k, v in spec.items()}
    if _isinstance(spec, list | tuple):
        return [m for m in spec if not _learner_metric(m)]
    return None if _learner_metric(spec) else spec


def _recompiled_without_learner_metrics(built: Any) -> bool:
    """Compile the ``built`` model again with its own settings but none of the learner's metric
    objects; False when it had none (or its settings cannot be read back)."""
    settings = getattr(getattr(built, "_compile_config", None), "config", None)
    if not _isinstance(settings, dict):
        return False
    metrics = settings.get("metrics")
    weighted = settings.get("weighted_metrics")
    kept, kept_weighted = _without_learner_metrics(metrics), _without_learner_metrics(weighted)
    if repr(kept) == repr(metrics) and repr(kept_weighted) == repr(weighted):
        return False
    built.compile(**{**settings, "metrics": kept, "weighted_metrics": kept_weighted})
    return True


def _guarded(schedule: Any, failed: list[str]) -> Any:
    """The learner's schedule as the training uses it: its value as a float (the schedule's own
    checks judge its type), and, once it raises, the rate kept as it is (``failed`` says why), so
    a broken schedule costs the schedule's checks, not the training."""

    def scheduled(epoch: int, lr: float) -> float:
        if failed:
            return float(lr)
        try:
            with learner_code(f"calling the schedule for epoch {epoch}"):
                return float(schedule(epoch, lr))
        except LearnerFailure as failure:
            failed.append(failure.message)
            return float(lr)

    return scheduled


def _fit_counted(
    keras: Any, model: Any, chan: Channel, args: dict, counter: dict, callbacks: list
) -> Any:
    """``model.fit`` on batches pulled from the trusted side, counting the steps run."""
    counter.update(steps=0, asked=0)

    def batches():
        while True:
            header, batch = chan.ask({"need": "batch", "index": counter["asked"]})
            counter["asked"] += 1
            if "images" not in batch:
                raise BadRequest("a batch needs 'images'")
            images = _as_float_images(batch.pop("images"), args.get("input_scale"))
            # the targets' structure when the answer gives one; else the other arrays by name
            tree = header.get("targets", {name: {"$array": name} for name in batch})
            yield images, _targets(tree, batch, "a training batch")

    class StepCounter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            counter["steps"] += 1

    return model.fit(
        batches(),
        epochs=int(args.get("epochs", 1)),
        steps_per_epoch=int(args.get("steps_per_epoch", 1)),
        callbacks=[StepCounter(), *callbacks],
        verbose=0,
    )


def op_train(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Exactly ``epochs x steps_per_epoch`` steps on batches pulled from the trusted side (no time
    cut-off: the trusted side's wall-clock limit ends the grading instead), then unlabelled
    predictions. Seeded, with deterministic ops, so the same submission trains the same way. The
    model comes from the learner's ``args["factory"]``, with their ``args["schedule"]`` (a
    function name, optional) as a learning-rate scheduler when they define it.

    Metrics do not change what a model learns: when the fit fails inside one of the learner's own
    metric objects, the model is built again and trained without them (``metric_dropped`` says
    why), so a broken metric costs the metric's checks, not the training's.
    """
    keras = _keras()
    import tensorflow as tf

    seed = int(args.get("seed", 0))
    factory = _named(args, "factory")
    with contextlib.suppress(Exception):  # unavailable in very old TF: seeds alone then
        tf.config.experimental.enable_op_determinism()
    counter: dict[str, int] = {}
    callbacks: list[Any] = []
    schedule_name = args.get("schedule")  # the learner's learning-rate schedule, if any
    if schedule_name is not None and not _isinstance(schedule_name, str):
        raise BadRequest("'schedule' must be the name of a function")
    schedule = STATE.module.__dict__.get(schedule_name) if STATE.module and schedule_name else None
    schedule_failed: list[str] = []
    if callable(schedule):
        callbacks.append(keras.callbacks.LearningRateScheduler(_guarded(schedule, schedule_failed)))
    _seed_everything(seed)
    model = _build_model(seed, factory)
    dropped = ""
    t0 = time.perf_counter()
    try:
        with learner_code("training the model"):
            history = _fit_counted(keras, model, chan, args, counter, callbacks)
    except LearnerFailure as failure:
        _seed_everything(seed)
        model = _build_model(seed, factory)
        with learner_code("compiling the model without your metric"):
            recompiled = _recompiled_without_learner_metrics(model)
        if not recompiled:
            raise
        dropped = failure.message
        t0 = time.perf_counter()
        with learner_code("training the model"):
            history = _fit_counted(keras, model, chan, args, counter, callbacks)
    seconds = time.perf_counter() - t0
    encoder = Encoder(prefix="t")
    result: dict[str, Any] = {
        "history": history_floats(history, notes := []),
        "history_notes": notes,
        "steps": counter["steps"],
        "epochs": _len(next(iter(history.history.values()), [])),
        "train_seconds": seconds,  # for the benchmark and the timings only, never for a score
        "metric_dropped": dropped,
        "schedule_failed": schedule_failed[0] if schedule_failed else "",
    }
    if "test_images" in arrays:
        with learner_code("predicting on the test images"):
            result["predictions"] = _predict(
                model, arrays["test_images"], encoder, args.get("input_scale")
            )
    return {"result": result}, encoder.arrays
