"""The learner's model as the trusted process sees it: rebuilt from its Keras config, never run.

Why: everything the sandboxed worker says about a model (its shapes, its parameter count) is data a
learner could forge. The model's Keras configuration can be rebuilt here in safe mode, where no
learner code runs: only Keras's own layers are accepted, so a custom layer, a ``Lambda`` or a
config that names any module outside Keras is refused with a clear message. The rebuilt model
gives the structure (input shape, named outputs, their activations, parameter count) and a cheap,
deterministic cost figure, the FLOPs per example, which the training check compares with what its
step budget can afford *before* training starts.

Rebuilding allocates no weights: it runs under ``keras.StatelessScope(initialize_variables=False)``,
so a config asking for a billion-unit ``Dense`` costs shapes, not memory.

What ``flops_per_example`` counts (one forward pass of one example; a multiply-add is 2 FLOPs;
training costs about 3x this, for every model alike, so the ratio between models is what matters):

- ``Conv1D/2D/3D``: 2 x kernel volume x input channels / groups x output elements, plus the bias;
  ``DepthwiseConv``: 2 x kernel volume x output elements; ``SeparableConv``: depthwise + pointwise;
  ``Conv*Transpose``: 2 x kernel volume x output channels x input elements;
- ``Dense`` / ``EinsumDense``: 2 x weights x positions (every dimension but the last), plus the bias;
- pooling: pool volume x output elements; global pooling: input elements;
- normalisation (``BatchNormalization``, ``LayerNormalization``, ...): 2 x output elements;
- activations (a layer's ``activation`` argument or an ``Activation``/``ReLU``/``Softmax`` layer),
  merges (``Add``, ``Concatenate``, ...), rescaling and resizing: 1 per output element;
- reshaping and regularisation layers (``Flatten``, ``Reshape``, ``Dropout``, ``InputLayer``...): 0;
- any other layer (recurrent, attention, embedding...): 2 x its weights x output positions plus
  its output elements, an upper-bound style estimate; such layers are listed in ``estimated``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int | None, ...]

# The largest Keras config the trusted process parses (the wire caps a header at 1 MB).
MAX_CONFIG_CHARS = 500_000
MAX_LAYERS = 2000

_REFUSED = {
    "Lambda": "a `Lambda` layer runs arbitrary code",
    "TFSMLayer": "a `TFSMLayer` loads a saved TensorFlow program",
    "TorchModuleWrapper": "it wraps PyTorch code",
    "JaxLayer": "it wraps JAX code",
    "FlaxLayer": "it wraps Flax code",
}
_FREE = {
    "InputLayer",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "Masking",
}
_PER_ELEMENT = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Rescaling",
    "Resizing",
    "CenterCrop",
    "Normalization",
}
_NORMALISATION = {
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "SpectralNormalization",
}


class ModelAuditError(Exception):
    """The config cannot be rebuilt safely; ``message`` says why, in the learner's terms."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class LayerCost:
    """One layer (one call of it) and what it costs per example."""

    name: str
    class_name: str
    output_shape: Shape
    params: int
    flops: int


@dataclass(frozen=True)
class ModelAudit:
    """The learner's model rebuilt in the trusted process; shapes exclude the batch dimension."""

    input_shape: Shape
    outputs: dict[str, Shape]
    activations: dict[str, str | None]  # output name -> activation of the layer producing it
    params: int
    trainable_params: int
    flops_per_example: int
    layers: tuple[LayerCost, ...] = field(repr=False, default=())
    estimated: tuple[str, ...] = ()  # layer classes costed by the generic rule
    input_names: tuple[str, ...] = ()  # what inputs fed as a dict are matched by

    def describe(self) -> str:
        return (
            f"input {self.input_shape}, outputs {self.outputs}, {self.params:,} parameters, "
            f"{self.flops_per_example / 1e6:.1f} MFLOPs per example"
        )


def trusted_keras() -> Any:
    """Keras with TensorFlow limited to one thread: the trusted process only builds shapes."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its settings
        pass
    import keras

    return keras


def _check_config(node: Any, found: list[str], depth: int = 0) -> None:
    """Refuse anything that would make deserialization import or run non-Keras code."""
    if depth > 200:
        raise ModelAuditError("the model's configuration is nested too deeply")
    if isinstance(node, list):
        for item in node:
            _check_config(item, found, depth + 1)
        return
    if not isinstance(node, dict):
        return
    class_name = node.get("class_name")
    if isinstance(class_name, str) and "config" in node:
        module = node.get("module")
        if class_name in _REFUSED:
            raise ModelAuditError(
                f"your model uses a `{class_name}` layer, which the grader does not rebuild "
                f"({_REFUSED[class_name]}): use Keras's built-in layers"
            )
        if class_name == "__lambda__" or (
            module is not None
            and not (
                isinstance(module, str)
                and (module == "keras" or module.startswith("keras.") or module == "builtins")
            )
        ):
            config = node.get("config")
            what = config if class_name == "function" and isinstance(config, str) else class_name
            raise ModelAuditError(
                f"your model uses `{what}` from `{module}`, which is not part of Keras: "
                "the grader rebuilds models made of Keras's built-in layers only (no custom "
                "layer classes, no Lambda layers)"
            )
        if class_name == "function" and module == "builtins":  # a plain function, by name
            found.append(f"function:{node.get('config')}")
        else:
            found.append(class_name)
    for value in node.values():
        _check_config(value, found, depth + 1)


def _tensorflow_activations_as_keras(node: Any, keras: Any, depth: int = 0) -> Any:
    """TensorFlow's own activation functions (``activation=tf.nn.softmax`` serialises as the
    function ``softmax_v2``) replaced by the Keras activation of the same name: valid code that
    Keras runs, rebuilt as Keras would."""
    if depth > 200:
        return node
    if isinstance(node, list):
        return [_tensorflow_activations_as_keras(v, keras, depth + 1) for v in node]
    if not isinstance(node, dict):
        return node
    name = node.get("config")
    if node.get("class_name") == "function" and isinstance(name, str):
        plain = name.removesuffix("_v2")
        if not callable(getattr(keras.activations, name, None)) and callable(
            getattr(keras.activations, plain, None)
        ):
            return plain
    return {k: _tensorflow_activations_as_keras(v, keras, depth + 1) for k, v in node.items()}


def _shape(tensor: Any) -> Shape:
    return tuple(None if d is None else int(d) for d in tuple(tensor.shape)[1:])


def _elements(shape: Shape) -> int:
    return math.prod(d or 1 for d in shape)


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value)


def _layer_flops(layer: Any, inputs: list[Shape], output: Shape) -> tuple[int, bool]:
    """(FLOPs per example, whether the generic estimate was used) for one call of a layer."""
    kind = type(layer).__name__
    out = _elements(output)
    params = int(layer.count_params()) if layer.built else 0
    first = inputs[0] if inputs else ()
    activation = getattr(layer, "activation", None)
    act = out if activation is not None and getattr(activation, "__name__", "") != "linear" else 0
    bias = out if getattr(layer, "use_bias", False) else 0
    if kind in _FREE:
        return 0, False
    if kind in _PER_ELEMENT:
        return out * max(1, len(inputs) - 1 if kind != "Concatenate" else 1), False
    if kind in _NORMALISATION:
        return 2 * out, False
    if "Pooling" in kind:
        if kind.startswith("Global"):
            return _elements(first), False
        rank = len(output) - 1
        return math.prod(_tuple(layer.pool_size, rank)) * out, False
    if kind.startswith(("Conv", "DepthwiseConv", "SeparableConv")):
        rank = len(output) - 1
        kernel = math.prod(_tuple(layer.kernel_size, rank))
        channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
        cin = (first[-1] if channels_last else first[0]) or 1
        cout = (output[-1] if channels_last else output[0]) or 1
        if kind.startswith("DepthwiseConv"):
            return 2 * kernel * out + bias + act, False
        if kind.startswith("SeparableConv"):
            depth = getattr(layer, "depth_multiplier", 1)
            positions = out // cout
            return 2 * kernel * cin * depth * positions + 2 * cin * depth * cout * positions + (
                bias + act
            ), False
        if kind.endswith("Transpose"):
            return 2 * kernel * cout * _elements(first) + bias + act, False
        groups = getattr(layer, "groups", 1) or 1
        return 2 * kernel * (cin // groups) * out + bias + act, False
    if kind in ("Dense", "EinsumDense"):
        positions = out // ((output[-1] if output else 1) or 1)
        weights = params - (output[-1] if bias else 0) if output else params
        return 2 * weights * positions + bias + act, False
    positions = out // ((output[-1] if output else 1) or 1)
    return 2 * params * positions + out, True


def _activation_name(layer: Any) -> str | None:
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax"
    if kind == "ReLU":
        return "relu"
    function = getattr(layer, "activation", None)
    if function is None:
        return None
    return getattr(function, "__name__", None) or type(function).__name__


def _walk(model: Any, costs: list[LayerCost], estimated: set[str]) -> None:
    for layer in model.layers:
        if hasattr(layer, "layers") and type(layer).__name__ in ("Functional", "Sequential"):
            _walk(layer, costs, estimated)
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            inputs = [_shape(t) for t in node.input_tensors]
            outputs = [_shape(t) for t in node.output_tensors]
            flops, generic = _layer_flops(layer, inputs, outputs[0] if outputs else ())
            flops += sum(_elements(s) for s in outputs[1:])  # extra outputs: 1 per element
            if generic:
                estimated.add(type(layer).__name__)
            costs.append(
                LayerCost(
                    name=layer.name,
                    class_name=type(layer).__name__,
                    output_shape=outputs[0] if outputs else (),
                    params=int(layer.count_params()) if layer.built else 0,
                    flops=int(flops),
                )
            )


def _outputs(model: Any) -> list[tuple[str, Any]]:
    output = model.output
    if isinstance(output, dict):
        return [(str(name), tensor) for name, tensor in output.items()]
    tensors = list(model.outputs)
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(tensors):
        names = [getattr(t, "name", f"output_{i}") for i, t in enumerate(tensors)]
    return list(zip(names, tensors, strict=True))


def audit_config(config_json: str) -> ModelAudit:
    """Rebuild a model from ``model.to_json()`` in safe mode (no weights) and measure it."""
    if not isinstance(config_json, str) or not config_json:
        raise ModelAuditError("the grader did not receive your model's Keras configuration")
    if len(config_json) > MAX_CONFIG_CHARS:
        raise ModelAuditError(
            f"your model's Keras configuration is {len(config_json):,} characters long "
            f"(the grader reads up to {MAX_CONFIG_CHARS:,})"
        )
    try:
        config = json.loads(config_json)
    except (ValueError, RecursionError) as error:
        raise ModelAuditError(
            f"your model's Keras configuration is not valid JSON: {error}"
        ) from None
    if not isinstance(config, dict):
        raise ModelAuditError("your model's Keras configuration is not an object")
    config.pop("compile_config", None)  # losses and metrics are checked elsewhere, not rebuilt
    keras = trusted_keras()
    config = _tensorflow_activations_as_keras(config, keras)
    classes: list[str] = []
    _check_config(config, classes)
    if len(classes) > MAX_LAYERS:
        raise ModelAuditError(f"your model has more than {MAX_LAYERS} layers")
    for entry in classes:
        name = entry.removeprefix("function:")
        if entry.startswith("function:") and not callable(getattr(keras.activations, name, None)):
            raise ModelAuditError(
                f"your model uses the function `{name}`, which is not one of Keras's "
                "activations: the grader rebuilds models made of Keras's built-in layers and "
                "activations only"
            )
    from keras.saving import deserialize_keras_object
    from keras.src.backend.common import global_state

    # Keras keeps deferred variables in a global list and initialises them when any later
    # StatelessScope exits: drop ours afterwards, or the next Keras call here would allocate them.
    pending = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = deserialize_keras_object(config, safe_mode=True)
            if not isinstance(model, keras.Model):
                raise ModelAuditError(
                    f"the configuration rebuilds a {type(model).__name__}, not a keras.Model"
                )
            inputs = list(model.inputs)
            pairs = _outputs(model)
            costs: list[LayerCost] = []
            estimated: set[str] = set()
            _walk(model, costs, estimated)
            params = int(model.count_params())
            trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    except ModelAuditError:
        raise
    except Exception as error:  # a config Keras cannot rebuild: the learner's model, not a bug
        raise ModelAuditError(
            f"the grader could not rebuild your model from its Keras configuration "
            f"({type(error).__name__}: {str(error)[:300]}); use Keras's built-in layers"
        ) from None
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)
    return ModelAudit(
        input_shape=_shape(inputs[0]) if len(inputs) == 1 else tuple(),
        outputs={name: _shape(tensor) for name, tensor in pairs},
        activations={
            name: _activation_name(tensor._keras_history[0])
            if getattr(tensor, "_keras_history", None)
            else None
            for name, tensor in pairs
        },
        params=params,
        trainable_params=trainable,
        flops_per_example=int(sum(cost.flops for cost in costs)),
        layers=tuple(costs),
        estimated=tuple(sorted(estimated)),
        input_names=tuple(str(getattr(tensor, "name", "")) for tensor in inputs),
    )
