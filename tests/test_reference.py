"""The trusted course code: emoji rendering, labels that match pixels, IoU edge cases."""

import numpy as np
import pytest

from assignments.object_localization import reference as ref


def test_font_ships_with_the_package():
    assert ref.font_path().name == "glyf_colr0.ttf"
    assert ref.font_path().stat().st_size > 100_000


def test_tiles_are_nine_distinct_colour_faces():
    tiles = ref.emoji_tiles().astype(np.int32)
    assert tiles.shape == (9, 72, 72, 3)
    # Each face covers a good part of its tile, but not all of it (white corners).
    ink = (tiles < 250).any(axis=-1).mean(axis=(1, 2))
    assert np.all((ink > 0.30) & (ink < 0.70)), ink
    corners = tiles[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.all(corners == 255)
    # OpenMoji faces are yellow: in the middle of the forehead red and green are high, blue low.
    forehead = tiles[:, 18:24, 30:42].reshape(9, -1, 3).mean(axis=1)
    assert (
        np.all(forehead[:, 0] > 200)
        and np.all(forehead[:, 1] > 150)
        and np.all(forehead[:, 2] < 120)
    ), forehead
    # Colour glyphs, not black outlines: many distinct colours per tile.
    assert all(len(np.unique(t.reshape(-1, 3), axis=0)) > 50 for t in tiles)
    # No two classes look alike.
    diffs = [np.abs(tiles[i] - tiles[j]).mean() for i in range(9) for j in range(i + 1, 9)]
    assert min(diffs) > 3.0


def test_faces_are_centred_and_the_box_geometry_is_measured():
    boxes = ref.ink_boxes()
    top, left, bottom, right = np.median(boxes, axis=0)
    assert abs((top + bottom) / 2 - 35.5) <= 0.5 and abs((left + right) / 2 - 35.5) <= 0.5
    geometry = ref.measure_box_geometry()
    # The measured face is 48 px with 12 px of white around it; 2 px padding -> the course's 10/52.
    assert (geometry.margin, geometry.side) == (10, 52)
    # The labelled box encloses every round face (laughing's tears and puking's hand stick out).
    for name, (top, left, bottom, right) in zip(ref.CLASS_NAMES, boxes, strict=True):
        if name not in ("laughing", "puking", "sad"):
            assert geometry.margin <= top and bottom < geometry.margin + geometry.side
            assert geometry.margin <= left and right < geometry.margin + geometry.side


def test_same_seed_same_batch_and_different_seed_differs():
    a, b, c = ref.make_batch(8, 3), ref.make_batch(8, 3), ref.make_batch(8, 4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.images, c.images)


def test_labels_match_pixels():
    batch = ref.make_batch(64, 11)
    tiles = ref.emoji_tiles()
    for image, class_id, (row, col), box in zip(
        batch.images, batch.class_ids, batch.positions, batch.boxes, strict=True
    ):
        assert np.array_equal(image[row : row + 72, col : col + 72], tiles[class_id])
        outside = image.copy()
        outside[row : row + 72, col : col + 72] = 255
        assert np.all(outside == 255)
        np.testing.assert_allclose(box, (np.array([row, col]) + 10) / 144, rtol=1e-6)


def test_positions_and_classes_cover_their_ranges():
    batch = ref.make_batch(4000, 5)
    assert set(batch.class_ids.tolist()) == set(range(9))
    assert batch.positions.min() == 0 and batch.positions.max() == ref.MAX_OFFSET == 72
    # Rows and columns are drawn independently (a swapped or shared draw would correlate them).
    assert abs(np.corrcoef(batch.positions.T)[0, 1]) < 0.1


def test_create_example_matches_the_course_signature():
    image, class_id, row, col = ref.create_example(np.random.default_rng(0))
    assert image.shape == (144, 144, 3) and image.dtype == np.uint8
    assert 0 <= class_id < 9 and isinstance(class_id, int)
    assert 10 / 144 <= row <= 82 / 144 and 10 / 144 <= col <= 82 / 144


def test_model_inputs_are_float_and_one_hot():
    images, targets = next(ref.training_batches(5, 1))
    assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() == 1.0
    assert targets["class_out"].shape == (5, 9) and np.all(targets["class_out"].sum(1) == 1)
    assert targets["box_out"].shape == (5, 2)


SIDE = 52 / 144


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0.2, 0.2), (0.2, 0.2), 1.0),  # identical
        ((0.0, 0.0), (0.6, 0.6), 0.0),  # disjoint, far apart (the original course said ~0.74)
        ((0.1, 0.1), (0.1 + SIDE, 0.1), 0.0),  # touching along an edge
        ((0.1, 0.1), (0.1 + SIDE, 0.1 + SIDE), 0.0),  # touching at a corner
        ((0.2, 0.2), (0.2, 0.2 + SIDE / 2), 1 / 3),  # half overlap along columns
        ((0.2, 0.2), (0.2 + SIDE / 2, 0.2 + SIDE / 2), 1 / 7),  # a quarter overlap
    ],
)
def test_course_iou_cases(a, b, expected):
    assert ref.iou(np.array([a]), np.array([b]))[0] == pytest.approx(expected, abs=1e-9)
    assert ref.iou(np.array([b]), np.array([a]))[0] == pytest.approx(expected, abs=1e-9)


def test_corner_iou_nested_and_degenerate():
    outer, inner = np.array([0, 0, 10, 10]), np.array([2, 2, 7, 7])
    assert ref.iou_corners(outer, inner) == pytest.approx(25 / 100)
    assert ref.iou_corners(inner, inner) == 1.0
    empty = np.array([5, 5, 5, 5])
    assert ref.iou_corners(empty, empty) == 0.0  # no area, no overlap: not NaN
    # Far-apart disjoint boxes: the unclamped formula gives a positive "intersection".
    assert ref.iou_corners(np.array([0, 0, 52, 52]), np.array([90, 90, 142, 142])) == 0.0


def test_iou_is_bounded_and_symmetric_on_random_boxes():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 0.7, (1000, 2)), rng.uniform(0, 0.7, (1000, 2))
    values = ref.iou(a, b)
    assert np.all((values >= 0) & (values <= 1))
    np.testing.assert_allclose(values, ref.iou(b, a))
    # Brute force on a pixel grid agrees for boxes on whole pixels.
    pa, pb = np.round(a * 144), np.round(b * 144)
    for (r1, c1), (r2, c2), got in list(zip(pa, pb, ref.iou(pa / 144, pb / 144), strict=True))[:50]:
        grid_a = np.zeros((250, 250), bool)
        grid_b = np.zeros((250, 250), bool)
        grid_a[int(r1) : int(r1) + 52, int(c1) : int(c1) + 52] = True
        grid_b[int(r2) : int(r2) + 52, int(c2) : int(c2) + 52] = True
        assert got == pytest.approx((grid_a & grid_b).sum() / (grid_a | grid_b).sum())


def test_draw_boxes_draws_green_truth_and_red_prediction_without_touching_input():
    image = np.full((144, 144, 3), 255, np.uint8)
    before = image.copy()
    drawn = ref.draw_boxes(image, (20 / 144, 30 / 144), (60 / 144, 70 / 144))
    assert np.array_equal(image, before)
    green = (drawn == ref.GREEN).all(-1)
    red = (drawn == ref.RED).all(-1)
    rows, cols = np.nonzero(green)
    assert (rows.min(), cols.min(), rows.max(), cols.max()) == (20, 30, 72, 82)
    rows, cols = np.nonzero(red)
    assert (rows.min(), cols.min()) == (60, 70)
