"""The course notebooks run offline on a CPU: the solution top to bottom, the learner's up to its stubs."""

import pytest
from nbclient.exceptions import CellExecutionError

from tests.notebook_runner import execute, result_line, stdout_of
from tests.objloc import LEARNER_NOTEBOOK, SOLUTION_NOTEBOOK


def test_solution_notebook_runs_top_to_bottom_with_a_short_training():
    nb = execute(SOLUTION_NOTEBOOK, "EPOCHS = 2\nSTEPS_PER_EPOCH = 15")
    out = stdout_of(nb)
    assert "MARGIN = 10  BOX_SIDE = 52" in out
    for case, value in [
        ("identical", "1.000"),
        ("disjoint", "0.000"),
        ("touching", "0.000"),
        ("half overlap", "0.333"),
    ]:
        assert f"{case}".ljust(13) + f" IoU = {value}" in out
    result = result_line(nb)
    assert result["epochs"] == 2
    assert 0.0 <= result["test_iou"] <= 1.0
    # The callback drew one figure per epoch: images appear in the training cell's outputs.
    training = next(c for c in nb.cells if "history = model.fit(" in c.source)
    pictures = [o for o in training.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2


def test_learner_notebook_runs_until_the_first_stub():
    with pytest.raises(CellExecutionError) as error:
        execute(LEARNER_NOTEBOOK)
    assert "NotImplementedError" in str(error.value)
    # It stopped in the first demo cell that calls a stub; the cells before it (emojis, box
    # measurement, the stub definitions themselves) ran without error.
    assert "image, class_id, row, col = create_example(rng=0)" in str(error.value)


@pytest.mark.slow
def test_full_training_reaches_the_course_figures():
    """What a learner sees with the default parameters (about 90 s on 2 cores)."""
    result = result_line(execute(SOLUTION_NOTEBOOK))
    assert result["test_accuracy"] >= 0.99
    assert result["test_iou"] >= 0.9
