"""Keras probes that need no training: drive the learner's metric, describe and run its model.

``metric`` scripts update/result/reset steps on the learner's Metric (eagerly or in a
``tf.function``). ``model`` builds the learner's model with the factory the request names and
describes it as data (inputs, outputs
with their layers and activations, parameter counts, compile settings, the config JSON that the
trusted side audits) and predicts on the images sent. The model helpers here are shared with the
fitting probes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .channel import Channel
from .encoding import Encoder, _qualname, _short_repr, history_floats
from .state import (
    BadRequest,
    LearnerFailure,
    _graded,
    _isinstance,
    _keras,
    _len,
    _named,
    _restore,
    _type,
)
from .tracebacks import _exc_message, learner_code


def _metric_name(metric: Any) -> Any:
    name = getattr(metric, "name", None)
    return str.__str__(name) if _isinstance(name, str) else None


def _run_script(metric: Any, steps: list, arrays: dict, graph: bool, encoder: Encoder) -> list:
    """One update/result/reset script on ``metric``; the results in order. In graph mode the
    update is one ``tf.function`` whose batch dimension is unknown, as inside ``model.fit``."""
    import tensorflow as tf

    update: Callable = metric.update_state
    result: Callable = metric.result
    if graph:
        update = tf.function(lambda a, b: metric.update_state(a, b), reduce_retracing=True)
        result = tf.function(lambda: metric.result())
    results = []
    for i, step in enumerate(steps):
        kind = step.get("op") if _isinstance(step, dict) else None
        with learner_code(f"step {i} ({kind})"):
            if kind == "update":
                try:
                    y_true = tf.convert_to_tensor(arrays[step["y_true"]])
                    y_pred = tf.convert_to_tensor(arrays[step["y_pred"]])
                except KeyError as exc:
                    raise BadRequest(f"step {i}: missing array {exc}") from None
                update(y_true, y_pred)
            elif kind == "result":
                results.append(encoder.encode(result()))
            elif kind == "reset":
                metric.reset_state()
            else:
                raise BadRequest(f"step {i}: unknown op {kind!r}")
    return results


def op_metric(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Drive the learner's Metric class (``args["class"]``) through scripts of
    update/result/reset steps: ``steps`` (one script) or ``scripts`` (each on a fresh instance,
    so one script's state cannot leak into another's), made with ``kwargs``."""
    name = _named(args, "class")
    keras = _keras()
    cls = _graded(name)
    scripts = args.get("scripts")
    if scripts is None:
        scripts = [args.get("steps", [])]
    if not _isinstance(scripts, list) or not all(_isinstance(x, list) for x in scripts):
        raise BadRequest("'scripts' must be a list of step lists")
    kwargs = args.get("kwargs") or {}
    if not _isinstance(kwargs, dict):
        raise BadRequest("'kwargs' must be an object")
    encoder = Encoder()
    graph = bool(args.get("graph"))
    all_results, is_metric, given_name = [], True, None
    for index, steps in enumerate(scripts):
        with learner_code(f"creating {name}()"):
            metric = cls(**dict(kwargs))
        is_metric = is_metric and _isinstance(metric, keras.metrics.Metric)
        if index == 0:
            given_name = _metric_name(metric)
        all_results.append(_run_script(metric, steps, arrays, graph, encoder))
    result: dict[str, Any] = {"is_metric": is_metric, "name": given_name}
    if args.get("scripts") is None:
        result["results"] = all_results[0]
    else:
        result["scripts"] = all_results
    return {"result": result}, encoder.arrays


def op_metric_fit(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """The learner's Metric inside ``model.fit``, as Keras runs it: compiled into a model (a
    weightless identity of the predictions, so the predictions are the ones sent), updated in a
    compiled train step with an unknown batch size, reset by Keras at each epoch's start.

    ``epochs``: per epoch, a list of [y_true, y_pred] array names (each epoch as many batches);
    ``output``: the output name the metric is compiled on. Returns the history Keras logged.
    """
    import warnings

    name = _named(args, "class")
    keras = _keras()
    cls = _graded(name)
    epochs = args.get("epochs")
    output = args.get("output")
    if not _isinstance(output, str) or not output:
        raise BadRequest("metric_fit needs 'output': the name to compile the metric on")
    if (
        not _isinstance(epochs, list)
        or not epochs
        or not all(_isinstance(e, list) and e for e in epochs)
        or _len({_len(e) for e in epochs}) != 1
    ):
        raise BadRequest("'epochs' must be a non-empty list of equally long batch lists")
    try:
        batches = [
            [(arrays[t].astype(np.float32), arrays[p].astype(np.float32)) for t, p in epoch]
            for epoch in epochs
        ]
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRequest(f"metric_fit: bad batch {exc}") from None
    width = batches[0][0][1].shape[-1]
    with learner_code(f"creating {name}()"):
        metric = cls(**dict(args.get("kwargs") or {}))
    inputs = keras.Input(shape=(width,), name="predictions")
    identity = keras.Model(inputs, {output: keras.layers.Identity(name=output)(inputs)})
    identity.compile(optimizer="sgd", loss={output: "mse"}, metrics={output: [metric]})

    def feed():
        for epoch in batches:
            for y_true, y_pred in epoch:
                yield y_pred, {output: y_true}

    with learner_code("fitting a model with the metric"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no trainable weights": the model is an identity
        history = identity.fit(
            feed(), epochs=_len(batches), steps_per_epoch=_len(batches[0]), verbose=0
        )
    notes: list[str] = []
    logged = history_floats(history, notes)
    return {"result": {"history": logged, "notes": notes, "name": _metric_name(metric)}}, {}


def _name_of(obj: Any) -> Any:
    if obj is None or _isinstance(obj, str):
        return obj
    if _isinstance(obj, dict):
        config = obj.get("config")
        if _isinstance(config, dict) and _isinstance(config.get("name"), str):
            return config["name"]
        if _isinstance(config, str):
            return config
        return obj.get("class_name")
    name = getattr(obj, "name", None)
    if _isinstance(name, str):
        return name
    return getattr(obj, "__name__", None) or _type(obj).__name__


def _per_output(spec: Any, outputs: list[str], many: bool) -> dict[str, Any]:
    """Normalise a loss/metrics compile argument to {output name: name or [names]}."""

    def one(x: Any) -> Any:
        if many:
            if _isinstance(x, list | tuple):
                return [_name_of(v) for v in x]
            return [_name_of(x)] if x is not None else []
        return _name_of(x)

    if spec is None:
        return {}
    if _isinstance(spec, dict):
        return {str(k): one(v) for k, v in spec.items()}
    if _isinstance(spec, list | tuple):
        if many and all(not _isinstance(v, list | tuple | dict) for v in spec):
            return {o: one(list(spec)) for o in outputs}
        if _len(spec) == _len(outputs):
            return {o: one(v) for o, v in zip(outputs, spec, strict=True)}
        return {"*": one(list(spec))}
    return {o: one(spec) for o in outputs}


def _producing_layer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _activation_name(layer: Any) -> Any:
    if layer is None:
        return None
    fn = getattr(layer, "activation", None)
    if fn is None:
        return _type(layer).__name__.lower()
    return getattr(fn, "__name__", None) or _type(fn).__name__


def _model_outputs(model: Any) -> list[tuple[str, Any]]:
    output = model.output
    if _isinstance(output, dict):
        return [(str(k), v) for k, v in output.items()]
    tensors = list(model.outputs)
    names = list(getattr(model, "output_names", []) or [])
    if _len(names) != _len(tensors):
        names = [getattr(t, "name", f"output_{i}") for i, t in enumerate(tensors)]
    return list(zip(names, tensors, strict=True))


def _summarise_model(model: Any, notes: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {"type": _qualname(model)}
    try:
        info["inputs"] = [
            {"name": getattr(t, "name", None), "shape": list(t.shape)} for t in model.inputs
        ]
    except Exception as exc:
        notes.append(f"inputs: {_exc_message(exc)}")
    outputs: list[str] = []
    try:
        pairs = _model_outputs(model)
        outputs = [name for name, _ in pairs]
        info["outputs"] = []
        for name, tensor in pairs:
            layer = _producing_layer(tensor)
            info["outputs"].append(
                {
                    "name": name,
                    "shape": list(tensor.shape),
                    "layer": _type(layer).__name__ if layer is not None else None,
                    "layer_name": getattr(layer, "name", None),
                    "activation": _activation_name(layer),
                }
            )
    except Exception as exc:
        notes.append(f"outputs: {_exc_message(exc)}")
    try:
        info["params"] = int(model.count_params())
        info["trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    except Exception as exc:
        notes.append(f"params: {_exc_message(exc)}")
    info["compiled"] = bool(getattr(model, "compiled", False)) or (
        getattr(model, "optimizer", None) is not None and getattr(model, "loss", None) is not None
    )
    optimizer = getattr(model, "optimizer", None)
    info["optimizer"] = _type(optimizer).__name__ if optimizer is not None else None
    config: dict[str, Any] = {}
    try:
        config = model.get_compile_config() or {}
    except Exception as exc:
        notes.append(f"compile config: {_exc_message(exc)}")
    loss = config.get("loss", getattr(model, "loss", None))
    info["loss"] = _per_output(loss, outputs, many=False)
    info["loss_weights"] = Encoder().encode(config.get("loss_weights"))
    info["metrics"] = _per_output(config.get("metrics"), outputs, many=True)
    enc = Encoder(prefix="c")
    info["compile_config"] = enc.encode(config)
    if enc.arrays:  # compile configs hold no arrays in practice; keep the header self-contained
        info["compile_config"] = {"$type": "dict", "repr": _short_repr(config)}
    return info


def _as_float_images(arr: np.ndarray, scale: Any = None) -> np.ndarray:
    """Images as the model takes them: float32, uint8 images multiplied by the assignment's
    ``scale`` (its ``input_scale`` hook, e.g. 1/255) when it declares one; float images as sent."""
    if arr.dtype == np.uint8 and scale is not None:
        if not _isinstance(scale, int | float) or not np.isfinite(scale):
            raise BadRequest("'input_scale' must be a finite number")
        return np.multiply(arr, np.float32(scale), dtype=np.float32)  # one pass, one allocation
    return arr.astype(np.float32)


def _predict(model: Any, images: np.ndarray, encoder: Encoder, scale: Any = None) -> Any:
    raw = model.predict(_as_float_images(images, scale), verbose=0, batch_size=32)
    if _isinstance(raw, list | tuple):
        try:
            names = [name for name, _ in _model_outputs(model)]
        except Exception:
            names = [f"output_{i}" for i in range(_len(raw))]
        if _len(names) == _len(raw):
            raw = dict(zip(names, raw, strict=True))
    return encoder.encode(raw)


def _build_model(seed: Any, factory: str) -> Any:
    """The model that the learner's function ``factory`` returns, built under ``seed``."""
    keras = _keras()
    if seed is not None:
        keras.utils.set_random_seed(int(seed) % 2**32)
    fn = _graded(factory)
    with learner_code(f"calling {factory}()"):
        model = fn()
    if not _isinstance(model, keras.Model):
        raise LearnerFailure(
            "learner_error",
            f"{factory}() returned {_qualname(model)}, not a keras.Model",
            "",
        )
    return model


MAX_CONFIG_JSON = (
    500_000  # = grader.checking.model_audit.MAX_CONFIG_CHARS; fits a wire header (1 MB)
)


def _model_config_json(model: Any, notes: list[str]) -> str | None:
    """``model.to_json()``: the trusted side rebuilds it in safe mode (``grader.checking.model_audit``)."""
    try:
        text = model.to_json()
    except Exception as exc:
        notes.append(f"config: {_exc_message(exc)}")
        return None
    _restore()
    if not _isinstance(text, str) or _len(text) > MAX_CONFIG_JSON:
        notes.append("config: not a string or longer than the grader reads")
        return None
    return str.__str__(text)


def op_model(args: dict, arrays: dict, chan: Channel) -> tuple[dict, dict]:
    """Build the learner's model (``args["factory"]``) and describe it; predict on the images
    sent, if any."""
    model = _build_model(args.get("seed"), _named(args, "factory"))
    notes: list[str] = []
    with learner_code("inspecting the model"):
        info = _summarise_model(model, notes)
    info["config_json"] = _model_config_json(model, notes)
    encoder = Encoder(prefix="m")
    if "images" in arrays:
        with learner_code("predicting with the model"):
            info["predictions"] = _predict(
                model, arrays["images"], encoder, args.get("input_scale")
            )
    info["notes"] = notes
    return {"result": info}, encoder.arrays
