"""Repairs invalid annotation boxes so that one bad box never crashes or silently skews training.

Boxes are xyxy in absolute pixels. A box is clipped to the image ``[0, w] x [0, h]``; it is dropped when
a coordinate is NaN/inf or when it is degenerate after clipping (``x2 <= x1`` or ``y2 <= y1``, which also
covers boxes lying fully outside the image). Datasets collect the counts with :class:`BoxSanityLog` and
emit a single warning per dataset instead of one per box.
"""
import math
import warnings


def sanitize_instances(instances: list, width: int, height: int) -> tuple:
    """Clip each instance's ``bbox`` to the image and drop the invalid ones.

    Args:
        instances: dicts with ``bbox`` = [x1, y1, x2, y2] (absolute pixels) plus any other keys.
        width, height: image size in pixels.

    Returns:
        (kept instances with clipped float boxes, number clipped, number dropped).
    """
    kept, n_clipped, n_dropped = [], 0, 0
    for inst in instances:
        box = [float(v) for v in inst['bbox']]
        if not all(math.isfinite(v) for v in box):
            n_dropped += 1
            continue
        x1, y1, x2, y2 = box
        clipped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height),
                   min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            n_dropped += 1
            continue
        n_clipped += clipped != box
        kept.append({**inst, 'bbox': clipped})
    return kept, n_clipped, n_dropped


class BoxSanityLog:
    """Counts clipped / dropped boxes over a dataset and reports them in one warning."""

    def __init__(self, dataset_name: str, max_examples: int = 2):
        self.dataset_name = dataset_name
        self.max_examples = max_examples
        self.n_clipped = 0
        self.n_dropped = 0
        self.examples = []

    def sanitize(self, instances: list, width: int, height: int, source: str) -> list:
        """:func:`sanitize_instances` that records the counts and the file name as an example."""
        kept, n_clipped, n_dropped = sanitize_instances(instances, width, height)
        self.n_clipped += n_clipped
        self.n_dropped += n_dropped
        if (n_clipped or n_dropped) and len(self.examples) < self.max_examples:
            self.examples.append(source)
        return kept

    def drop(self, source: str) -> None:
        """Count one annotation of ``source`` dropped before it became a box (e.g. a VOC object without
        ``<bndbox>``, a malformed YOLO label line)."""
        self.n_dropped += 1
        if len(self.examples) < self.max_examples and source not in self.examples:
            self.examples.append(source)

    def warn(self):
        """Issue the dataset's single warning, if any box was repaired."""
        if self.n_clipped or self.n_dropped:
            warnings.warn(
                f'{self.dataset_name}: {self.n_clipped} boxes clipped to the image and {self.n_dropped} '
                f'invalid boxes dropped (NaN/inf, empty or outside the image), e.g. in '
                f'{", ".join(self.examples)}', stacklevel=3)
