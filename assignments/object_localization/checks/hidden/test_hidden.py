"""Hidden checks of the data parts: create_example, plot_bounding_box, data_generator.

Never shipped to learners; only their messages reach the report. Inputs come from the grading's
hidden seed. Each check tests one property and compares the learner's part with itself or with
the task's statement: the data generator is judged against the learner's own create_example, so a
mistake in create_example costs create_example's checks only.
"""

import numpy as np

from grader.checking import CheckOutcome, Incorrect, check, short, where_it_returns

from ... import course
from ..public.helpers import (
    MARGIN,
    as_array,
    as_uint8_image,
    close,
    colour_mask,
    examples,
    generate,
    generated,
    locate_tiles,
    read_example,
)
from ..public.problems import label_problem, pixels_of
from .helpers import drawing_cases, hidden_seeds

# -- create_example

#: Examples drawn to see every class and every position: with a uniform draw, the chance that
#: one of the 73 positions of an axis never shows in 2000 examples is 73 * (72/73)^2000 ~ 1e-10.
COVERAGE_EXAMPLES = 2000


EXCLUSIVE_BOUND = (
    "the tile never reaches position 72: rng.integers(low, high) excludes high, so draw with "
    "rng.integers(0, MAX_OFFSET + 1)"
)


@check("create_example", 4)
def test_create_example_covers_classes_and_positions(submission):
    """every class and every tile position 0..72 can be drawn, row and col independently"""
    seeds = hidden_seeds(COVERAGE_EXAMPLES, 11)
    images = np.stack([e.image for e in examples(submission, seeds) if e.image.ndim == 3])
    located = locate_tiles(images)
    found = located.found()
    if found.sum() < len(seeds) // 2:
        raise Incorrect(
            "most images show no emoji tile on white, so where emojis are drawn cannot be "
            "checked (see the check of the image)"
        )
    classes, rows, cols = located.classes[found], located.rows[found], located.cols[found]
    problems, hints = [], []
    shown = sorted(set(classes.tolist()))
    if shown != list(range(course.NUM_CLASSES)):
        problems.append(
            f"only classes {shown} were drawn in {found.sum()} examples (expected all of 0..8)"
        )
        if shown == list(range(course.NUM_CLASSES - 1)):
            hints.append(
                "class 8 is never drawn: rng.integers(0, 8) excludes 8; draw "
                "rng.integers(0, NUM_CLASSES)"
            )
        elif shown == list(range(1, course.NUM_CLASSES)):
            hints.append("class 0 is never drawn: draw rng.integers(0, NUM_CLASSES)")
    for name, values in (("row", rows), ("col", cols)):
        seen = set(values.tolist())
        missing = sorted(set(range(course.MAX_OFFSET + 1)) - seen)
        if not missing:
            continue
        problems.append(
            f"tile {name}s ranged over {values.min()}..{values.max()} in {found.sum()} "
            f"examples, and {len(missing)} of the positions 0..72 never appeared "
            f"(e.g. {missing[:5]})"
        )
        step = int(np.gcd.reduce(values - values.min())) if len(seen) > 1 else 0
        for observed, hint in (
            (values.max() == course.MAX_OFFSET - 1, EXCLUSIVE_BOUND),
            (
                values.min() == 1,
                "the tile never starts at position 0: draw from 0, rng.integers(0, MAX_OFFSET + 1)",
            ),
            (
                step > 1,
                f"only every {step}th position is drawn: draw each position 0..72 itself, "
                "rng.integers(0, MAX_OFFSET + 1)",
            ),
        ):
            if observed and hint not in hints:
                hints.append(hint)
    if np.std(rows) > 0 and np.std(cols) > 0 and abs(np.corrcoef(rows, cols)[0, 1]) > 0.9:
        problems.append("row and col go together: draw them independently")
        if np.array_equal(rows, cols):
            hints.append("row and col are the same number: draw each from rng on its own")
    if problems:
        raise Incorrect("; ".join(problems), hint="; ".join(hints))


def _same_example(a, b) -> bool:
    return (
        a.image.shape == b.image.shape
        and np.array_equal(a.image, b.image)
        and short(a.class_id) == short(b.class_id)
        and close([a.row, a.col], [b.row, b.col], 0)
    )


@check("create_example", 3)
def test_create_example_is_deterministic_for_a_seed(submission):
    """the same rng seed gives the same example, different seeds differ; rng may be a seed or a Generator"""
    problem = submission.signature_problem("create_example", keyword="rng")
    if problem:
        raise Incorrect(problem)
    seeds = hidden_seeds(6, 12)

    def twice(seed):
        return examples(submission, [seed])[0], examples(submission, [seed])[0]

    returned = where_it_returns(seeds, twice)  # what it raises on is the coverage check's
    for seed, (a, b) in returned:
        if not _same_example(a, b):
            raise Incorrect(
                f"two calls with rng seed {seed} gave different examples",
                hint="draw every random number from the rng argument, not from np.random",
            )
    first = [a for _, (a, _) in returned]
    if len(first) > 1 and all(_same_example(first[0], other) for other in first[1:]):
        raise Incorrect(
            f"{len(first)} different rng seeds gave the same example",
            hint="draw the class and the position from rng",
        )
    seed = returned[0][0]
    as_seed = read_example(submission.call("create_example", rng=seed))
    if not _same_example(as_seed, first[0]):
        raise Incorrect(
            "create_example(rng=<a seed>) should give what create_example(rng=<a Generator of "
            "that seed>) gives",
            hint="start with rng = np.random.default_rng(rng), as the stub does",
        )


# -- plot_bounding_box


@check("plot_bounding_box", 2)
def test_plot_bounding_box_does_not_modify_its_input(submission):
    """the caller's image is not changed, with norm=True or not"""
    cases = [
        (image, box, norm)
        for image, box in drawing_cases(3)
        for image, norm in ((image, False), (image.astype(np.float32) / 255.0, True))
    ]

    def after_the_call(case):
        image, box, norm = case
        after = submission.call_returning_args("plot_bounding_box", image, box, None, norm)
        return as_array(after[0] if after else None, "the image argument after the call")

    for (image, _, norm), changed in where_it_returns(cases, after_the_call):
        if changed.shape != image.shape or not np.array_equal(changed, image):
            hint = (
                "`image *= 255` scales the caller's array in place; compute a new array instead"
                if norm and np.allclose(changed, image * 255, atol=1)
                else "draw on a copy of the image"
            )
            raise Incorrect(
                f"plot_bounding_box changed the image it was given (norm={norm})", hint=hint
            )


@check("plot_bounding_box", 2)
def test_plot_bounding_box_scales_normalised_images(submission):
    """with norm=True a [0, 1] image is drawn as its 0..255 picture would be"""

    def both_ways(case):
        image, box = case
        as_bytes = pixels_of(
            submission.call("plot_bounding_box", image, box, None, False), "the picture"
        )
        floats = image.astype(np.float32) / 255.0
        scaled = pixels_of(
            submission.call("plot_bounding_box", floats, box, None, True), "the returned picture"
        )
        return as_bytes, scaled

    for _, (as_bytes, scaled) in where_it_returns(drawing_cases(4), both_ways):
        differ = (np.abs(scaled.astype(int) - as_bytes.astype(int)) > 2).any(-1).mean()
        if differ <= 0.01:
            continue
        if scaled.shape == as_bytes.shape:
            plain = ~(colour_mask(as_bytes, "green") | colour_mask(as_bytes, "red"))
            if scaled[plain].max() <= 1:  # each pixel 0 or 1: the floats drawn as they are
                raise Incorrect(
                    "with norm=True the picture is nearly black: the [0, 1] image was not "
                    "scaled back to 0..255",
                    hint="multiply by 255 when norm=True",
                )
            white = plain & (as_bytes == 255).all(-1)
            if white.any() and (scaled[white].max(-1) < 8).mean() > 0.5:
                raise Incorrect(
                    "with norm=True the white background came out black while the emoji is "
                    "drawn: values above 255 wrap around when they are converted to uint8",
                    hint="clip to 0..255 before the conversion: np.clip(image * 255, 0, 255)",
                )
        raise Incorrect(
            "with norm=True the picture differs from the same image given as 0..255 with "
            "norm=False",
            got=f"{differ:.0%} of the pixels differ",
        )


@check("plot_bounding_box", 1)
def test_plot_bounding_box_shows_the_image_it_is_given(submission):
    """the picture shows the image under the boxes (pred_coords=None, as the stub's default)"""

    def picture(case):
        image, box = case
        return pixels_of(submission.call("plot_bounding_box", image, box), "the returned picture")

    for (image, _), drawn in where_it_returns(drawing_cases(5), picture):
        kept = (np.abs(drawn.astype(int) - image.astype(int)) <= 2).all(-1).mean()
        if kept < 0.9:
            raise Incorrect(
                "the returned picture does not show the image it was given under the boxes",
                got=f"{kept:.0%} of the pixels kept",
                hint="draw on the image itself: Image.fromarray(image), then draw the boxes"
                if kept < 0.5
                else "",
            )


# -- data_generator


@check("data_generator", 3)
def test_data_generator_class_targets_are_one_hot(submission):
    """class_out is one-hot"""
    (batch,) = generated(submission, 16, seed=hidden_seeds(1, 20)[0])
    if batch.encoding:
        raise Incorrect("class_out should be one-hot: a single 1 per row", hint=batch.encoding)
    y = batch.class_out
    good = np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)
    if good.all():
        return
    bad = np.flatnonzero(~good)
    raise Incorrect(
        f"class_out should be one-hot: a single 1 per row; row {bad[0]} is "
        f"{np.round(y[bad[0]], 3).tolist()}"
        + (f" ({len(bad)} rows are wrong)" if len(bad) > 1 else ""),
        hint=_unfilled_hint(bad, len(y)) if not y[bad].any() else "",
    )


def _unfilled_hint(rows, size: int) -> str:
    """When only the last rows of a batch are empty: the loop stopped short."""
    rows = list(rows)
    if rows and rows == list(range(size - len(rows), size)):
        return (
            f"the last {len(rows)} example(s) of the batch were never filled: fill every one, "
            "for i in range(batch_size)"
        )
    return ""


def _as_examples(batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 images, class ids, labels) of a generator batch."""
    images = np.stack([as_uint8_image(x) for x in batch.x])
    return images, np.argmax(batch.class_out, axis=1), np.asarray(batch.box_out, float)


@check("data_generator", 4)
def test_data_generator_labels_match_the_pixels(submission):
    """every example's class and box describe its pixels, or are what your create_example returns"""
    seed = hidden_seeds(1, 21)[0]
    (batch,) = generated(submission, 16, seed=seed)
    images, classes, labels = _as_examples(batch)
    located = locate_tiles(images)
    want = (np.stack([located.rows, located.cols], axis=1) + MARGIN) / 144
    right = located.found() & (located.classes == classes)
    right &= np.all(np.abs(labels - want) <= 0.5 / 144, axis=1)
    if right.all():
        return
    # Your create_example's mistakes are charged to create_example: a generator that yields
    # exactly what it returns for the same rng is right.
    own = submission.call_shared("create_example", len(images), seed)
    try:
        made = [read_example(value) for value in own]
        same = all(
            np.array_equal(as_uint8_image(e.image), images[i])
            and e.class_id == classes[i]
            and close([e.row, e.col], labels[i], 1e-6)
            for i, e in enumerate(made)
        )
    except Incorrect:
        same = False
    if same:
        return
    i = int(np.flatnonzero(~right)[0])
    if not located.found()[i]:
        blank = np.flatnonzero((images == 255).all(axis=(1, 2, 3)))
        if i in blank:
            raise Incorrect(
                f"example {i} of a batch is blank (white): every example must show an emoji",
                hint=_unfilled_hint(blank, len(images)),
            )
        raise Incorrect(f"example {i} of a batch shows no emoji tile on white")
    if located.classes[i] != classes[i]:
        drawn = int(located.classes[i])
        raise Incorrect(
            f"in example {i} of a batch the image shows class {drawn} "
            f"({course.CLASS_NAMES[drawn]}) but class_out says {classes[i]}",
            hint="set y[i, class_id] = 1 for the class_id of the example in images[i]",
        )
    shown = located.found() & (located.classes == classes)
    rows, cols = located.rows[shown], located.cols[shown]

    def measure(other):
        (theirs,) = generated(other, 16, seed=seed)
        return np.asarray(theirs.box_out, float)[shown]

    places = [f"in example {i} of a batch" for i in np.flatnonzero(shown)]
    raise Incorrect(
        label_problem(submission, "data_generator", places, rows, cols, labels[shown], measure)
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays; NaN equals NaN here (a generator yielding NaN yields nothing new)."""
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


@check("data_generator", 2)
def test_data_generator_yields_fresh_batches(submission):
    """each batch holds new examples, and a batch does not change when the next one is drawn"""
    seed = hidden_seeds(1, 22)[0]
    made = generate(submission, 8, seed=seed, count=2)
    first, second = made.batches
    if made.changed:
        raise Incorrect(
            "a batch changed when the next one was drawn: the generator refills the same arrays",
            hint="make new arrays for every batch inside the loop (np.zeros(...) there), so "
            "a batch Keras still holds is not overwritten",
        )
    if _same(first.x, second.x):
        raise Incorrect(
            "two consecutive batches were identical",
            hint="create new examples in every loop iteration",
        )
    from_int = generate(submission, 8, seed=seed, count=2, as_int=True).batches
    if _same(from_int[0].x, from_int[1].x):
        raise Incorrect(
            "with an integer seed (data_generator(8, rng=0), as the notebook calls it) two "
            "consecutive batches were identical",
            hint="rng = np.random.default_rng(rng) once, before the loop, and pass that "
            "Generator on: made again in the loop, every batch starts the same sequence",
        )
    distinct = len({first.x[i].tobytes() for i in range(len(first.x))})
    if distinct < len(first.x) // 2:
        raise Incorrect(
            f"a batch of {len(first.x)} held only {distinct} different images",
            hint="pass the Generator itself to create_example(rng), not the seed: a seed "
            "starts the same sequence again for every example",
        )


def _create_example_repeats(submission) -> bool:
    """Whether the learner's create_example gives the same example for the same rng seed (when it
    does not, neither can a generator built on it: that is create_example's mistake)."""
    try:
        seeds = hidden_seeds(3, 24)
        return all(
            _same_example(a, b)
            for a, b in zip(examples(submission, seeds), examples(submission, seeds), strict=True)
        )
    except CheckOutcome:
        return True  # no create_example to blame


@check("data_generator", 1)
def test_data_generator_is_deterministic_for_a_seed(submission):
    """the same rng seed gives the same batches, different seeds differ"""
    seed, other = hidden_seeds(2, 23)
    a = generated(submission, 4, seed=seed)[0]
    b = generated(submission, 4, seed=seed)[0]
    c = generated(submission, 4, seed=other)[0]
    if not (_same(a.x, b.x) and _same(a.box_out, b.box_out)):
        if not _create_example_repeats(submission):
            return  # your create_example gives other examples for one seed: charged there
        differ = [
            i
            for i in range(min(len(a.x), len(b.x)))
            if not (_same(a.x[i], b.x[i]) and _same(a.box_out[i], b.box_out[i]))
        ]
        hint = (
            "every example differs: the draws do not come from the Generator made from rng "
            "alone (np.random, or default_rng() without the seed)"
            if len(differ) == len(a.x)
            else ""
        )
        raise Incorrect(
            "two generators with the same rng seed yielded different batches (examples "
            f"{differ} differ)",
            hint=hint,
        )
    if _same(a.x, c.x):
        raise Incorrect("generators with different rng seeds yielded the same batch")
