"""The model's fingerprint, for ``grader similarity`` (never a verdict): what the learner's model
is and what it predicts, recorded by a create_model check with ``Submission.fingerprint``.

The model is fingerprinted as built (untrained) under the cohort's seed, on the cohort's hidden
images (``Submission.cohort_rng``: the same for every submission of the course), not as trained:
grading trains each model on its own hidden seed, so two copies trained apart differ as any two
good models do, while the same layers built under one seed predict the same.
"""

import numpy as np

from grader.checking import CheckOutcome

from ... import reference as ref
from ..public.helpers import working_model

#: The model's fingerprint (``grader similarity``): its predictions on this many images, the
#: same for every submission of the course (``Submission.cohort_rng``): per image, its class
#: probabilities and its box, rounded. Two rows agree when every number differs by at most the
#: tolerance (for a box, a fraction of the image: a fifth of a pixel); the same model, built
#: twice, agrees on every image.
FINGERPRINT_IMAGES = 16
FINGERPRINT_TOLERANCE = 0.0015


#: The solution's fingerprint per (course seed, assignment), once per grading process.
_SOLUTION_PRINTS: dict[tuple, tuple | None] = {}


def model_fingerprint(submission) -> tuple[list[str], list[list[float]] | None] | None:
    """The model's layers and its predictions (None when it predicts nothing usable), as built
    (untrained) under the cohort's seed, on the cohort's images; None when it does not build or
    is no Keras model (its checks say why) or outside grading."""
    rng = submission.cohort_rng()
    if rng is None:  # not a grading (the self-check, the audit)
        return None
    try:
        audit = working_model(submission)
        images = ref.make_batch(FINGERPRINT_IMAGES, rng).images
        info = submission.model(images, seed=int(rng.integers(2**31)))
    except CheckOutcome:
        return None
    layers = [
        f"{layer.class_name} {tuple(layer.output_shape)} {layer.params}" for layer in audit.layers
    ]
    predictions = info.get("predictions") if isinstance(info, dict) else None
    probs = predictions.get("class_out") if isinstance(predictions, dict) else None
    boxes = predictions.get("box_out") if isinstance(predictions, dict) else None
    shapes = [getattr(a, "shape", ()) for a in (probs, boxes)]
    if shapes[0][:1] != (FINGERPRINT_IMAGES,) or shapes[1] != (FINGERPRINT_IMAGES, 2):
        return layers, None
    if not (np.isfinite(probs).all() and np.isfinite(boxes).all()):
        return layers, None
    rows = [[round(float(x), 4) for x in (*p, *b)] for p, b in zip(probs, boxes, strict=True)]
    return layers, rows


def solution_fingerprint(submission) -> tuple | None:
    """The solution's model fingerprint under this grading's seed (None: not available)."""
    key = (submission.course_seed, submission.assignment.name)
    if key not in _SOLUTION_PRINTS:
        try:
            solution = submission.solution()
            _SOLUTION_PRINTS[key] = model_fingerprint(solution) if solution else None
        except Exception:  # the solution is trusted; still, a fingerprint never fails a check
            _SOLUTION_PRINTS[key] = None
    return _SOLUTION_PRINTS[key]


def same_model(mine: tuple, theirs: tuple | None) -> bool:
    if theirs is None or mine[0] != theirs[0] or mine[1] is None or theirs[1] is None:
        return False
    return bool(np.all(np.abs(np.subtract(mine[1], theirs[1])) <= FINGERPRINT_TOLERANCE + 1e-9))


def record_fingerprint(submission) -> None:
    """Record the model's fingerprint (``model_fingerprint``) for ``grader similarity``, and
    whether it is the solution's model (the expected answer, which the notebook's guidance
    leads to: never evidence of copying). Untrained, because grading trains each model on its
    own hidden seed: two copies trained apart differ as any two good models do, while the same
    layers built under one seed predict the same. Never a verdict: a model that cannot be built
    or run records nothing here."""
    mine = model_fingerprint(submission)
    if mine is None:
        return
    submission.fingerprint(
        architecture=mine[0], expected=same_model(mine, solution_fingerprint(submission))
    )
    if mine[1] is not None:
        submission.fingerprint(predictions=mine[1], tolerance=FINGERPRINT_TOLERANCE)
