"""The one cost rule: what a model may cost per example to be trained within the grading budget.

Why one module: the model's cost check and the training's gate are one measure, computed once
(``Submission.model_audit``: the model rebuilt in the trusted process) and judged against one
limit, which the learner notebook states where the model is built. A model over the limit loses
the cost check's points; the training checks then say it was not trained, and why.
"""

from __future__ import annotations

# The cost limit, in millions of FLOPs per example (forward pass, as grader.checking.model_audit
# counts them): what the step budget can do within the train probe's wall-clock limit, with a
# margin. Training time grows about linearly with this figure (the original course's model, 3.5x
# the reference's FLOPs, trains 3-4x slower). Measured with benchmarks/bench_grading.py at -j 1 on
# a quiet 2-core machine: the reference (42.0 MFLOPs) trains its 1000 steps in 206 s with 2
# threads, 328 s with 1 thread (what `-j 2` gives each job); x4 on a loaded machine: ~830 s /
# ~1310 s, i.e. ~31 s per MFLOP at worst. At 100 MFLOPs that is ~3100 s, under
# grader.checking.probes.TRAIN_TIMEOUT (3600 s) with 1.15x to spare (1.8x with 2 threads).
# Refused above it: the reference without its input pooling (169.0) and the original course's
# architecture (146.1), with a hint to pool early.
MAX_MFLOPS_PER_EXAMPLE = 100.0

COST_HINT = (
    "shrink the image early (pooling or strides, as the notebook's model does) and keep the "
    "convolutions narrow where the feature maps are large"
)


def mflops(audit) -> float:
    return audit.flops_per_example / 1e6


def over_budget(audit) -> str | None:
    """None when the model is affordable; else the measure, the limit and the model's figure."""
    cost = mflops(audit)
    if cost <= MAX_MFLOPS_PER_EXAMPLE:
        return None
    return (
        f"your model costs {cost:.1f} million FLOPs per example ({audit.params:,} parameters); "
        f"the grader trains models of at most {MAX_MFLOPS_PER_EXAMPLE:g} million FLOPs per "
        "example within its budget (the notebook states this limit where the model is built)"
    )
