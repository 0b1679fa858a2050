"""A made-up cohort for ``grader similarity``: notebooks built from the solution notebook (its
graded cells), typical mistakes from the course's catalogue, independent implementations of every
graded part written for these tests, and disguised copies (renamed, reordered, recommented).
No learner's notebook is used. The benchmark builds its larger cohorts here too."""

from __future__ import annotations

import ast
import copy
import random
import re
from pathlib import Path

import nbformat

from grader.checking import load_catalogue
from tests.objloc import COURSE, LEARNER_NOTEBOOK, SOLUTION_NOTEBOOK

CATALOGUE = {m.ident: m for m in load_catalogue(COURSE.folder)}

#: Three independent implementations of each graded part, written the way different learners
#: would (a different idea each, not the reference's text), with the stub's signature and given
#: code. ShowTestImages's constructor is given by the stub; only on_epoch_end is the learner's.
#: Each of the three sets is correct: graded in process, it passed all 37 checks of the course
#: (checked when they were written; training not included).
ALTERNATIVES: dict[str, tuple[str, str, str]] = {
    "create_example": (
        """
def create_example(rng=None):
    rng = np.random.default_rng(rng)
    label = rng.integers(NUM_CLASSES)
    top = rng.integers(MAX_OFFSET + 1)
    left = rng.integers(MAX_OFFSET + 1)
    canvas = np.ones((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8) * 255
    canvas[top:top + TILE, left:left + TILE, :] = emoji_tiles[label]
    return canvas, int(label), float(top + MARGIN) / IMAGE_SIZE, float(left + MARGIN) / IMAGE_SIZE
""",
        """
def create_example(rng=None):
    rng = np.random.default_rng(rng)
    cls = int(rng.integers(0, NUM_CLASSES))
    r, c = rng.integers(0, MAX_OFFSET + 1, size=2).tolist()
    img = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    img.fill(255)
    tile = np.asarray(emoji_tiles[cls])
    img[r:r + tile.shape[0], c:c + tile.shape[1]] = tile
    y0 = (r + MARGIN) / IMAGE_SIZE
    x0 = (c + MARGIN) / IMAGE_SIZE
    return img, cls, y0, x0
""",
        """
def create_example(rng=None):
    rng = np.random.default_rng(rng)
    which = int(rng.integers(0, NUM_CLASSES))
    offsets = rng.integers(0, MAX_OFFSET + 1, size=2)
    background = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), "white")
    background.paste(Image.fromarray(emoji_tiles[which]), (int(offsets[1]), int(offsets[0])))
    box = [(int(o) + MARGIN) / IMAGE_SIZE for o in offsets]
    return np.array(background), which, box[0], box[1]
""",
    ),
    "plot_bounding_box": (
        """
def plot_bounding_box(image, gt_coords, pred_coords=None, norm=False):
    arr = np.array(image, dtype=np.float32)
    if norm:
        arr = arr * 255.0
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    out = Image.fromarray(arr)
    pen = ImageDraw.Draw(out)

    def box_of(coords):
        y = float(coords[0]) * IMAGE_SIZE
        x = float(coords[1]) * IMAGE_SIZE
        return [x, y, x + BOX_SIDE, y + BOX_SIDE]

    pen.rectangle(box_of(gt_coords), outline="green", width=3)
    if pred_coords is not None:
        pen.rectangle(box_of(pred_coords), outline="red", width=3)
    return out
""",
        """
def plot_bounding_box(image, gt_coords, pred_coords=None, norm=False):
    data = np.copy(np.asarray(image))
    if norm:
        data = (data * 255).round().clip(0, 255)
    picture = Image.fromarray(data.astype("uint8"), mode="RGB")
    drawing = ImageDraw.Draw(picture)
    boxes = [("green", gt_coords)]
    if pred_coords is not None:
        boxes.append(("red", pred_coords))
    for color, (r, c) in boxes:
        r, c = r * IMAGE_SIZE, c * IMAGE_SIZE
        drawing.rectangle([(c, r), (c + BOX_SIDE, r + BOX_SIDE)], outline=color, width=3)
    return picture
""",
        """
def plot_bounding_box(image, gt_coords, pred_coords=None, norm=False):
    scale = 255.0 if norm else 1.0
    result = Image.fromarray(np.uint8(np.clip(np.asarray(image) * scale, 0, 255)))
    d = ImageDraw.Draw(result)
    gy, gx = gt_coords[0] * IMAGE_SIZE, gt_coords[1] * IMAGE_SIZE
    d.rectangle((gx, gy, gx + BOX_SIDE, gy + BOX_SIDE), outline="green", width=3)
    if pred_coords is not None:
        py, px = pred_coords[0] * IMAGE_SIZE, pred_coords[1] * IMAGE_SIZE
        d.rectangle((px, py, px + BOX_SIDE, py + BOX_SIDE), outline="red", width=3)
    return result
""",
    ),
    "data_generator": (
        """
def data_generator(batch_size=16, rng=None):
    rng = np.random.default_rng(rng)
    while True:
        xs, ys, boxes = [], [], []
        for _ in range(batch_size):
            img, label, r, c = create_example(rng)
            xs.append(img / 255.0)
            one_hot = np.zeros(NUM_CLASSES)
            one_hot[label] = 1
            ys.append(one_hot)
            boxes.append([r, c])
        yield {"image": np.array(xs, dtype="float32")}, {
            "class_out": np.array(ys, dtype="float32"),
            "box_out": np.array(boxes, dtype="float32"),
        }
""",
        """
def data_generator(batch_size=16, rng=None):
    rng = np.random.default_rng(rng)
    while True:
        examples = [create_example(rng) for _ in range(batch_size)]
        images = np.stack([e[0] for e in examples]).astype(np.float32) / 255.0
        labels = np.array([e[1] for e in examples])
        targets = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
        positions = np.array([[e[2], e[3]] for e in examples], dtype=np.float32)
        yield {"image": images}, {"class_out": targets, "box_out": positions}
""",
        """
def data_generator(batch_size=16, rng=None):
    rng = np.random.default_rng(rng)
    while True:
        batch_x = np.zeros((batch_size, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
        batch_y = np.zeros((batch_size, NUM_CLASSES), np.float32)
        batch_box = np.zeros((batch_size, 2), np.float32)
        n = 0
        while n < batch_size:
            picture, k, top, left = create_example(rng)
            batch_x[n] = picture / 255.0
            batch_y[n][k] = 1.0
            batch_box[n][0] = top
            batch_box[n][1] = left
            n += 1
        yield ({"image": batch_x}, {"class_out": batch_y, "box_out": batch_box})
""",
    ),
    "IoU": (
        """
class IoU(keras.metrics.Metric):
    def __init__(self, name="iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.iou_sum = self.add_variable(shape=(), initializer="zeros", name="iou_sum")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32") * IMAGE_SIZE
        y_pred = ops.cast(y_pred, "float32") * IMAGE_SIZE
        dy = BOX_SIDE - ops.abs(y_true[:, 0] - y_pred[:, 0])
        dx = BOX_SIDE - ops.abs(y_true[:, 1] - y_pred[:, 1])
        overlap = ops.relu(dy) * ops.relu(dx)
        scores = overlap / (2 * BOX_SIDE**2 - overlap)
        self.iou_sum.assign_add(ops.sum(scores))
        self.count.assign_add(ops.cast(ops.shape(scores)[0], "float32"))

    def result(self):
        return ops.divide_no_nan(self.iou_sum, self.count)

    def reset_state(self):
        for v in (self.iou_sum, self.count):
            v.assign(ops.zeros_like(v))
""",
        """
class IoU(keras.metrics.Metric):
    def __init__(self, name="iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sum_of_ious = self.add_variable(shape=(), initializer="zeros", name="sum")
        self.seen = self.add_variable(shape=(), initializer="zeros", name="seen")

    def update_state(self, y_true, y_pred, sample_weight=None):
        def to_corners(boxes):
            boxes = ops.cast(boxes, "float32")
            y1 = boxes[:, 0] * IMAGE_SIZE
            x1 = boxes[:, 1] * IMAGE_SIZE
            return x1, y1, x1 + BOX_SIDE, y1 + BOX_SIDE

        ax1, ay1, ax2, ay2 = to_corners(y_true)
        bx1, by1, bx2, by2 = to_corners(y_pred)
        width = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1), 0.0)
        height = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1), 0.0)
        inter = width * height
        area = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
        self.sum_of_ious.assign_add(ops.sum(inter / (area - inter)))
        self.seen.assign_add(ops.cast(ops.size(inter), "float32"))

    def result(self):
        return ops.where(self.seen > 0, self.sum_of_ious / ops.maximum(self.seen, 1.0), 0.0)

    def reset_state(self):
        self.sum_of_ious.assign(0.0)
        self.seen.assign(0.0)
""",
        """
class IoU(keras.metrics.Metric):
    def __init__(self, name="iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.n = self.add_variable(shape=(), initializer="zeros", name="n")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true_px = ops.cast(y_true, "float32") * IMAGE_SIZE
        pred_px = ops.cast(y_pred, "float32") * IMAGE_SIZE
        lo = ops.maximum(true_px, pred_px)
        hi = ops.minimum(true_px, pred_px) + BOX_SIDE
        sides = ops.maximum(hi - lo, 0.0)
        intersection = ops.prod(sides, axis=-1)
        iou = intersection / (2.0 * BOX_SIDE * BOX_SIDE - intersection)
        self.total.assign(self.total + ops.sum(iou))
        self.n.assign(self.n + ops.cast(ops.shape(y_true)[0], "float32"))

    def result(self):
        return self.total / ops.maximum(self.n, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.n.assign(0.0)
""",
    ),
    "create_model": (
        """
def create_model():
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    h = layers.MaxPooling2D(pool_size=2)(image)
    for n in [8, 16, 32, 64]:
        h = layers.Conv2D(n, kernel_size=3, activation="relu", padding="same")(h)
        h = layers.MaxPooling2D(pool_size=2)(h)
    h = layers.Flatten()(h)
    h = layers.Dense(128, activation="relu")(h)
    h = layers.Dropout(0.2)(h)
    classes = layers.Dense(NUM_CLASSES, activation="softmax", name="class_out")(h)
    box = layers.Dense(2, activation="sigmoid", name="box_out")(h)
    net = keras.Model(inputs=image, outputs={"class_out": classes, "box_out": box})
    net.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss={"class_out": "categorical_crossentropy", "box_out": "mse"},
        metrics={"class_out": "accuracy", "box_out": IoU(name="iou")},
    )
    return net
""",
        """
def create_model():
    def block(x, filters):
        x = layers.Conv2D(filters, (3, 3), padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        return layers.MaxPool2D()(x)

    inp = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = layers.AveragePooling2D(pool_size=(2, 2))(inp)
    x = block(x, 16)
    x = block(x, 32)
    x = block(x, 64)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    out_class = layers.Dense(NUM_CLASSES, activation="softmax", name="class_out")(x)
    out_box = layers.Dense(2, name="box_out")(x)
    model = keras.Model(inp, {"class_out": out_class, "box_out": out_box})
    model.compile(
        keras.optimizers.Adam(LEARNING_RATE),
        loss={
            "class_out": keras.losses.CategoricalCrossentropy(),
            "box_out": keras.losses.MeanSquaredError(),
        },
        loss_weights={"class_out": 1.0, "box_out": BOX_LOSS_WEIGHT},
        metrics={"class_out": ["accuracy"], "box_out": [IoU()]},
    )
    return model
""",
        """
def create_model():
    trunk = keras.Sequential(
        [
            layers.AveragePooling2D(2),
            layers.Conv2D(32, 5, strides=2, activation="relu", padding="same"),
            layers.Conv2D(64, 3, strides=2, activation="relu", padding="same"),
            layers.Conv2D(64, 3, strides=2, activation="relu", padding="same"),
            layers.Flatten(),
            layers.Dense(200, activation="relu"),
        ],
        name="trunk",
    )
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    features = trunk(images)
    head = keras.initializers.Constant(MEAN_BOX)
    outputs = {
        "class_out": layers.Dense(NUM_CLASSES, activation="softmax", name="class_out")(features),
        "box_out": layers.Dense(2, name="box_out", bias_initializer=head)(features),
    }
    model = keras.Model(images, outputs)
    opt = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
    model.compile(
        opt,
        loss={"class_out": "categorical_crossentropy", "box_out": "mse"},
        loss_weights={"class_out": 1.0, "box_out": BOX_LOSS_WEIGHT},
        metrics={"class_out": "accuracy", "box_out": IoU(name="iou")},
    )
    return model
""",
    ),
    "ShowTestImages": (
        """
    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.images, verbose=0)
        guesses = outputs["class_out"].argmax(axis=-1)
        fig = plt.figure(figsize=(12, 3))
        for k in range(len(self.images)):
            plt.subplot(1, len(self.images), k + 1)
            drawn = plot_bounding_box(
                self.images[k], self.true_boxes[k], outputs["box_out"][k], norm=True
            )
            plt.imshow(drawn)
            ok = guesses[k] == self.true_classes[k]
            plt.title(CLASS_NAMES[guesses[k]], color="green" if ok else "red")
            plt.xticks([])
            plt.yticks([])
        self.figures.append(fig)
        if self.show:
            plt.show()
        else:
            plt.close(fig)
""",
        """
    def on_epoch_end(self, epoch, logs=None):
        preds = self.model(self.images, training=False)
        boxes = np.asarray(preds["box_out"])
        classes = np.asarray(preds["class_out"]).argmax(1)
        n = len(self.images)
        figure, grid = plt.subplots(nrows=1, ncols=n, squeeze=False)
        for j, axis in enumerate(grid[0]):
            axis.imshow(plot_bounding_box(self.images[j], self.true_boxes[j], boxes[j], norm=True))
            colour = "green" if classes[j] == self.true_classes[j] else "red"
            axis.set_title(CLASS_NAMES[classes[j]], color=colour)
            axis.set_axis_off()
        figure.suptitle("after epoch %d" % (epoch + 1))
        self.figures.append(figure)
        plt.show() if self.show else plt.close(figure)
""",
        """
    def on_epoch_end(self, epoch, logs=None):
        result = self.model.predict_on_batch(self.images)
        picked = np.argmax(result["class_out"], axis=1)
        drawn = [
            plot_bounding_box(img, gt, pb, norm=True)
            for img, gt, pb in zip(self.images, self.true_boxes, result["box_out"])
        ]
        fig, axs = plt.subplots(1, len(drawn), figsize=(14, 2.5))
        axs = np.ravel(axs)
        for i in range(len(drawn)):
            axs[i].imshow(drawn[i])
            right = int(picked[i] == self.true_classes[i])
            axs[i].set_title(f"{CLASS_NAMES[picked[i]]}", color=("red", "green")[right])
            axs[i].axis("off")
        self.figures.append(fig)
        if not self.show:
            plt.close(fig)
            return
        plt.show()
""",
    ),
    "lr_schedule": (
        """
def lr_schedule(epoch, lr):
    if epoch >= HOLD_EPOCHS:
        lr = lr / 2
    return lr if lr > MIN_LR else MIN_LR
""",
        """
def lr_schedule(epoch, lr):
    new_lr = lr * (0.5 if epoch >= HOLD_EPOCHS else 1.0)
    return float(np.maximum(new_lr, MIN_LR))
""",
        """
def lr_schedule(epoch, lr):
    factor = 1.0
    if epoch > HOLD_EPOCHS - 1:
        factor = 0.5
    return max(MIN_LR, factor * lr)
""",
    ),
}

#: Typical mistakes, one notebook each (the solution with the catalogue's edit), and the
#: commonest ones made twice, by two learners who did not copy (the same edit, nothing else).
MISTAKES = (
    "create_example-swapped-labels",
    "create_example-no-margin",
    "create_example-exclusive-range",
    "plot_bounding_box-swapped",
    "plot_bounding_box-in-place",
    "data_generator-not-normalised",
    "data_generator-tuple-targets",
    "IoU-unclamped",
    "IoU-reset-half",
    "IoU-sum-not-mean",
    "create_model-no-softmax",
    "create_model-sparse-loss",
    "ShowTestImages-no-norm",
    "lr_schedule-no-floor",
    "lr_schedule-min-for-max",
)
SAME_MISTAKE_TWICE = ("IoU-unclamped", "create_example-no-margin")
TWO_MISTAKES = (
    ("create_example-not-normalised", "IoU-counts-batches"),
    ("data_generator-integer-labels", "lr_schedule-hold-two"),
    ("plot_bounding_box-colours-swapped", "create_model-two-classes"),
)


def graded_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """Part -> its graded cell (found by the ``# GRADED: <part>`` header)."""
    found = {}
    for cell in nb.cells:
        match = re.match(r"# GRADED: (\w+)", cell.source)
        if cell.cell_type == "code" and match:
            found[match[1]] = cell
    return found


def solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION_NOTEBOOK, as_version=4)


def with_mistakes(*idents: str) -> nbformat.NotebookNode:
    nb = solution()
    cells = graded_cells(nb)
    for ident in idents:
        mistake = CATALOGUE[ident]
        cells[mistake.part].source = mistake.changed(cells[mistake.part].source)
    return nb


def alternative(which: int) -> nbformat.NotebookNode:
    """The solution notebook with every graded part written the ``which``-th other way."""
    nb = solution()
    cells = graded_cells(nb)
    for part, versions in ALTERNATIVES.items():
        code = versions[which].strip("\n")
        if code.startswith("    def "):  # a method: the stub's class and constructor are given
            given = cells[part].source.split("    def on_epoch_end")[0]
            cells[part].source = given + code
        else:
            cells[part].source = f"# GRADED: {part}\n{code}"
    return nb


class _Renamer(ast.NodeTransformer):
    """Renames local variables, nested functions and attributes the code assigns on self."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.functions: list[ast.FunctionDef] = []

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            node.attr = self.names.get(node.attr, node.attr)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        nested = any(isinstance(child, ast.FunctionDef) for child in self.functions)
        self.functions.append(node)
        self.generic_visit(node)
        self.functions.pop()
        if nested:  # a helper's parameters are its own (a part's and a method's are the API)
            for arg in node.args.args:
                arg.arg = self.names.get(arg.arg, arg.arg)
        node.name = self.names.get(node.name, node.name)
        return node


def local_names(tree: ast.Module, part: str) -> list[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
        elif isinstance(node, ast.FunctionDef) and node.col_offset > 4:
            names.add(node.name)  # a helper nested in the part's function
    return sorted(names - {part})


def disguise(code: str, part: str, seed: int) -> str:
    """A copier's disguise of one cell: every local, nested helper and attribute of its own
    renamed, the methods of a class reordered, comments replaced, indentation and blank lines
    changed."""
    tree = ast.parse(code)
    names = local_names(tree, part)
    _Renamer({name: f"my_{name[::-1]}_{seed}" for name in names}).visit(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            node.body = node.body[:1] + node.body[1:][::-1]  # keep __init__ first
    lines = [f"# GRADED: {part}", "# my own work :)"]
    for number, line in enumerate(ast.unparse(tree).splitlines()):
        indent = len(line) - len(line.lstrip(" "))
        lines.append(" " * (indent // 2) + line.lstrip(" "))  # two-space indentation
        if number % 4 == 3:
            lines.append(" " * (indent // 2) + f"# step {number // 4 + 1}")
        if number % 5 == 0:
            lines.append("")
    return "\n".join(lines) + "\n"


def disguised_copy(nb: nbformat.NotebookNode, seed: int) -> nbformat.NotebookNode:
    """A disguised copy of ``nb``: each graded cell disguised, the graded cells in another order."""
    nb = copy.deepcopy(nb)
    cells = graded_cells(nb)
    parts = list(cells)
    order = parts[::-1] if seed % 2 else parts[1:] + parts[:1]
    sources = {part: disguise(cells[part].source, part, seed) for part in parts}
    for slot, part in zip(parts, order, strict=True):
        cells[slot].source = sources[part]  # the cell of one part now holds another's code
    return nb


def learner_stub() -> nbformat.NotebookNode:
    return nbformat.read(LEARNER_NOTEBOOK, as_version=4)


def partly_done(stub_parts: tuple[str, ...], *mistakes: str) -> nbformat.NotebookNode:
    """The solution with some parts left as the stub gives them (and some mistakes)."""
    nb = with_mistakes(*mistakes)
    stubs = graded_cells(learner_stub())
    for part, cell in graded_cells(nb).items():
        if part in stub_parts:
            cell.source = stubs[part].source
    return nb


#: (original, disguised copy) of the cohort: the only pairs that are copies.
COPIES = (
    ("alternative_1", "copy_of_1"),
    ("alternative_2", "copy_of_2"),
    ("alternative_3", "copy_of_3"),
)


def cohort() -> dict[str, nbformat.NotebookNode]:
    """30 notebooks: the solution, the untouched stub, 2 partly done, 3 alternatives, their 3
    disguised copies, 15 typical mistakes, 2 more learners with the commonest mistakes and 3 with
    two mistakes each."""
    notebooks = {"solution": solution(), "untouched": learner_stub()}
    notebooks["partly_done_1"] = partly_done(("IoU", "create_model", "ShowTestImages"))
    notebooks["partly_done_2"] = partly_done(("lr_schedule",), "data_generator-shared-buffers")
    for which in range(3):
        notebooks[f"alternative_{which + 1}"] = alternative(which)
        notebooks[f"copy_of_{which + 1}"] = disguised_copy(alternative(which), which + 1)
    for ident in MISTAKES:
        notebooks[f"mistake_{ident}"] = with_mistakes(ident)
    for ident in SAME_MISTAKE_TWICE:
        notebooks[f"again_{ident}"] = with_mistakes(ident)
    for idents in TWO_MISTAKES:
        notebooks["two_" + "_".join(idents)] = with_mistakes(*idents)
    return notebooks


def large_cohort(size: int, seed: int = 0) -> dict[str, nbformat.NotebookNode]:
    """``size`` notebooks for the benchmark: each graded part taken from the solution, one of the
    alternatives or a mistake, drawn at random (many pairs share parts, as a real cohort's do)."""
    rng = random.Random(seed)
    parts = list(graded_cells(solution()))
    choices = {part: [m for m in CATALOGUE.values() if m.part == part] for part in parts}
    notebooks = {}
    for number in range(size):
        nb = alternative(rng.randrange(3)) if rng.random() < 0.5 else solution()
        cells = graded_cells(nb)
        for part in rng.sample(parts, 2):
            mistake = rng.choice(choices[part])
            if all(old in cells[part].source for old, _ in mistake.edits):
                cells[part].source = mistake.changed(cells[part].source)
        notebooks[f"learner_{number:03d}"] = nb
    return notebooks


def write(notebooks: dict[str, nbformat.NotebookNode], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder
