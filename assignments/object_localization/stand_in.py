"""The stand-in model: what the callback is fitted on when the learner's model is missing or broken.

The callback is graded on its own, so the worker needs a model that meets the course's model
contract (input "image" of the course's image size, a softmax "class_out" over the classes and a
sigmoid "box_out" of 2, compiled) when the learner's factory fails. The sandboxed worker knows no
course: the model is built here, in the trusted process, from :mod:`.course`, and sent as
Keras JSON with its compile settings (:func:`stand_in_request`); the worker rebuilds it with
``keras.models.model_from_json`` (plain Keras layers, no custom objects, no learner code).

Deliberately not the reference solution's architecture: this module is shipped to learners. The
callback checks only need a model that fits and predicts.
"""

from __future__ import annotations

import functools
from typing import Any

from grader.checking import trusted_keras

from .course import IMAGE_SIZE, NUM_CLASSES

#: The stand-in's compile settings, by name (the worker compiles the rebuilt model with them).
STAND_IN_COMPILE: dict[str, Any] = {
    "optimizer": "adam",
    "loss": {"box_out": "mse", "class_out": "categorical_crossentropy"},
    "metrics": {"class_out": "accuracy"},
}


@functools.lru_cache(maxsize=1)
def stand_in_json() -> str:
    """The stand-in model's Keras JSON (built once, a few thousand weights never used here)."""
    keras = trusted_keras()
    layers = keras.layers
    side = IMAGE_SIZE
    inputs = keras.Input(shape=(side, side, 3), name="image")
    x = layers.Flatten()(layers.AveragePooling2D(12)(inputs))
    outputs = {
        "class_out": layers.Dense(NUM_CLASSES, activation="softmax", name="class_out")(x),
        "box_out": layers.Dense(2, activation="sigmoid", name="box_out")(x),
    }
    return keras.Model(inputs, outputs).to_json()


def stand_in_request() -> dict[str, Any]:
    """The callback request's ``stand_in``: the model's JSON and its compile settings."""
    return {"json": stand_in_json(), "compile": STAND_IN_COMPILE}
