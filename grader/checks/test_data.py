"""create_example and data_generator: shapes, dtypes, ranges, labels that match the pixels."""

import numpy as np

from grader import reference as ref
from grader.check_api import Incorrect, PartialCredit, check, short
from grader.checks.helpers import as_array, as_float, diagnose_label


def example(submission, seed):
    value = submission.call("create_example", seed=seed)
    if not isinstance(value, list) or len(value) != 4:
        raise Incorrect(
            "create_example(rng) should return a tuple (image, class_id, row, col)",
            got=short(value) if not isinstance(value, list) else f"a tuple of {len(value)} items",
        )
    image = as_array(value[0], "the image", ndim=3)
    class_id = value[1]
    if isinstance(class_id, np.ndarray) and class_id.size == 1:
        class_id = class_id.reshape(()).item()
    if isinstance(class_id, float) and class_id.is_integer():
        class_id = int(class_id)
    if not isinstance(class_id, int) or isinstance(class_id, bool):
        raise Incorrect("class_id should be an integer", got=short(value[1]))
    return image, class_id, as_float(value[2], "row"), as_float(value[3], "col")


@check("create_example", 3, public=True)
def test_create_example_returns_an_image_and_labels(submission):
    """create_example returns a 144x144x3 uint8 image, a class id and a normalised box"""
    image, class_id, row, col = example(submission, 1)
    if image.shape != (144, 144, 3):
        raise Incorrect("the image has the wrong shape", expected=(144, 144, 3), got=image.shape)
    if image.dtype != np.uint8:
        raise Incorrect(
            "the image should be uint8 (0..255)",
            got=image.dtype,
            hint="build it with dtype=np.uint8",
        )
    if not 0 <= class_id < 9:
        raise Incorrect("class_id is out of range", expected="0..8", got=class_id)
    if not (0 <= row <= 1 and 0 <= col <= 1):
        raise Incorrect(
            "row and col should be normalised to [0, 1]", got=(row, col), hint="divide by 144"
        )


@check("create_example", 5, public=True)
def test_create_example_labels_match_the_pixels(submission):
    """the box and class describe the emoji actually drawn"""
    for seed in range(12):
        problem = diagnose_label(*example(submission, 100 + seed))
        if problem:
            raise Incorrect(f"For rng seed {100 + seed}, {problem}")


@check("create_example", 4)
def test_create_example_covers_classes_and_positions(submission):
    """classes and positions cover their whole ranges over many seeds"""
    margin = ref.measure_box_geometry().margin
    classes, rows, cols = set(), [], []
    for seed in range(150):
        _, class_id, row, col = example(submission, 1000 + seed)
        classes.add(class_id)
        rows.append(round(row * 144 - margin))
        cols.append(round(col * 144 - margin))
    problems = []
    if classes != set(range(9)):
        problems.append(
            f"only classes {sorted(classes)} appeared in 150 examples (expected all of 0..8)"
        )
    for name, values in (("row", rows), ("col", cols)):
        if min(values) > 4 or max(values) < 66:
            problems.append(
                f"tile {name}s ranged over {min(values)}..{max(values)} (expected 0..72)"
            )
        if min(values) < 0 or max(values) > 72:
            problems.append(
                f"tile {name}s went outside 0..72, so the emoji would not fit: {min(values)}..{max(values)}"
            )
    if np.corrcoef(rows, cols)[0, 1] > 0.95:
        problems.append("row and col are always equal or nearly so: draw them independently")
    if problems:
        raise Incorrect("; ".join(problems))


@check("create_example", 3)
def test_create_example_is_deterministic_for_a_seed(submission):
    """the same rng seed gives the same example; different seeds differ"""
    a, b, c = example(submission, 7), example(submission, 7), example(submission, 8)
    same = np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    if not same:
        raise Incorrect(
            "two calls with the same seed gave different examples",
            hint="draw every random number from the rng argument, not from np.random",
        )
    if np.array_equal(a[0], c[0]) and a[1:] == c[1:]:
        raise Incorrect("different seeds gave the same example", hint="use the rng argument")


def batches(submission, batch_size, seed=5, count=1):
    value = submission.call("data_generator", batch_size=batch_size, seed=seed, sample=count)
    if not isinstance(value, list) or len(value) < count:
        raise Incorrect(
            "data_generator should be a generator that yields batches forever", got=short(value)
        )
    out = []
    for item in value[:count]:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(x, dict) for x in item)
        ):
            raise Incorrect(
                "each batch should be a pair of dicts: ({'image': x}, {'class_out': y, 'box_out': box})",
                got=short(item),
            )
        inputs, targets = item
        if set(targets) != {"class_out", "box_out"}:
            raise Incorrect(
                "the targets dict has the wrong keys",
                expected="{'class_out', 'box_out'}",
                got=sorted(map(str, targets)),
                hint="the keys must match the model's output names, or Keras cannot pair targets with outputs",
            )
        if set(inputs) != {"image"}:
            raise Incorrect(
                "the inputs dict has the wrong keys",
                expected="{'image'}",
                got=sorted(map(str, inputs)),
            )
        out.append(
            (
                as_array(inputs["image"], "x", ndim=4),
                as_array(targets["class_out"], "class_out", ndim=2),
                as_array(targets["box_out"], "box_out", ndim=2),
            )
        )
    return out


@check("data_generator", 5, public=True)
def test_data_generator_yields_dicts_of_the_right_shapes(submission):
    """batches are ({'image': x}, {'class_out': y, 'box_out': box}) with the right shapes, x in [0, 1]"""
    for batch_size in (1, 4, 16):
        ((x, y, box),) = batches(submission, batch_size)
        for name, array, shape in (
            ("x", x, (batch_size, 144, 144, 3)),
            ("class_out", y, (batch_size, 9)),
            ("box_out", box, (batch_size, 2)),
        ):
            if array.shape != shape:
                raise Incorrect(
                    f"for batch_size={batch_size}, {name} has the wrong shape",
                    expected=shape,
                    got=array.shape,
                )
        if x.dtype.kind != "f":
            raise Incorrect(
                "images should be floats", got=x.dtype, hint="divide the uint8 image by 255"
            )
        if x.max() > 1.0 + 1e-6 or x.min() < 0:
            raise Incorrect(
                "images should lie in [0, 1]",
                got=f"{x.min():.1f}..{x.max():.1f}",
                hint="divide by 255",
            )


@check("data_generator", 3)
def test_data_generator_class_targets_are_one_hot(submission):
    """class_out is one-hot"""
    ((_, y, _),) = batches(submission, 16)
    if not (np.isin(y, (0, 1)).all() and np.all(y.sum(axis=1) == 1)):
        raise Incorrect("class_out should be one-hot: a single 1 per row", got=short(y[0].tolist()))


@check("data_generator", 4)
def test_data_generator_labels_match_the_pixels(submission):
    """every example's box and class describe its pixels"""
    ((x, y, box),) = batches(submission, 16, seed=9)
    for i in range(len(x)):
        image = np.round(np.clip(x[i], 0, 1) * 255).astype(np.uint8)
        problem = diagnose_label(image, int(np.argmax(y[i])), float(box[i, 0]), float(box[i, 1]))
        if problem:
            raise Incorrect(f"In example {i} of a batch: {problem}")


@check("data_generator", 3)
def test_data_generator_yields_fresh_batches(submission):
    """consecutive batches are different examples"""
    (first, second) = batches(submission, 8, count=2)
    if np.array_equal(first[0], second[0]):
        raise PartialCredit(
            0.0,
            "two consecutive batches were identical: create new examples in every loop iteration",
        )
