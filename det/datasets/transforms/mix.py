"""Transforms that mix several images: Mosaic (Bochkovskiy et al., YOLOv4, 2020) and MixUp (Zhang et al.
2018, for detection as in YOLOX / YOLOv5).

They need other samples than the one being transformed, so they run inside
:class:`~det.datasets.MultiImageMixDataset`: each exposes ``get_indexes(dataset) -> list[int]``, the
wrapper loads those samples through the wrapped dataset's own pipeline and hands them over as
``results['mix_results']`` (a list of results dicts with ``img`` [H, W, 3] uint8 BGR, ``gt_bboxes``
float32 [N, 4] xyxy pixels, ``gt_bboxes_labels`` int64 [N], ``gt_ignore_flags`` bool [N]).

Random numbers come from NumPy's global generator, which mmengine seeds per run and per dataloader
worker (as det's ``Albu`` does), so runs repeat.
"""
import cv2
import numpy as np

from det.registry import TRANSFORMS


def _boxes_of(results: dict) -> tuple:
    """``(bboxes [N, 4] float32, labels [N] int64, ignore [N] bool)`` of a results dict (N may be 0)."""
    boxes = np.asarray(results.get('gt_bboxes', np.zeros((0, 4))), dtype=np.float32).reshape(-1, 4)
    labels = np.asarray(results.get('gt_bboxes_labels', np.zeros(len(boxes))), dtype=np.int64)
    ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(len(boxes))), dtype=bool)
    return boxes, labels, ignore


def _clip_and_filter(boxes: np.ndarray, region, min_bbox_size: float, min_area_ratio: float) -> tuple:
    """Clip xyxy ``boxes`` [N, 4] to ``region = (x1, y1, x2, y2)`` (the part of the output image the
    source image is visible in); returns the clipped boxes and the keep mask [N]: a box survives when
    both sides are at least ``min_bbox_size`` pixels and at least ``min_area_ratio`` of its area is
    still visible (tiny remnants of cut objects teach nothing and look like background)."""
    x1, y1, x2, y2 = region
    clipped = boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(x1, x2)
    clipped[:, 1::2] = clipped[:, 1::2].clip(y1, y2)
    wh = clipped[:, 2:] - clipped[:, :2]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (wh >= min_bbox_size).all(axis=1) & (wh.prod(axis=1) >= min_area_ratio * np.maximum(area, 1e-6))
    return clipped, keep


def _resize(img: np.ndarray, ratio: float) -> np.ndarray:
    h, w = img.shape[:2]
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


def _set_boxes(results: dict, boxes, labels, ignore):
    results['gt_bboxes'] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    results['gt_bboxes_labels'] = np.asarray(labels, dtype=np.int64)
    results['gt_ignore_flags'] = np.asarray(ignore, dtype=bool)


def _check_scale(img_scale) -> tuple:
    scale = tuple(int(v) for v in img_scale)
    if len(scale) != 2 or min(scale) <= 0:
        raise ValueError(f'img_scale must be a positive (w, h), got {img_scale!r}')
    return scale


class _MixTransform:
    """What both mixing transforms share: the canvas fill ``pad_val``, the box filter of
    :func:`_clip_and_filter` (``min_bbox_size`` pixels, ``min_area_ratio`` of a box left visible) and the
    probability ``prob`` of mixing at all."""

    def __init__(self, pad_val: int, min_bbox_size: float, min_area_ratio: float, prob: float):
        if not 0 <= prob <= 1:
            raise ValueError(f'{type(self).__name__}: prob must lie in [0, 1], got {prob}')
        self.pad_val = pad_val
        self.min_bbox_size = min_bbox_size
        self.min_area_ratio = min_area_ratio
        self.prob = prob

    def _keep(self, boxes: np.ndarray, region) -> tuple:
        """:func:`_clip_and_filter` with this transform's filter."""
        return _clip_and_filter(boxes, region, self.min_bbox_size, self.min_area_ratio)


@TRANSFORMS.register_module()
class Mosaic(_MixTransform):
    """Four images on one ``img_scale = (w, h)`` canvas, one per quadrant around a random centre.

    The current sample and three more (``get_indexes``) are each resized, keeping their aspect ratio, to
    fit ``(w, h) * s`` with ``s`` drawn from ``scale_range`` per image, then placed so that a corner
    touches the centre ``(cx, cy)``, drawn as fractions ``center_ratio_range`` of the canvas: the
    top-left image with its bottom-right corner there, and so on. Each image shows only the part that
    falls in its quadrant; its boxes move with it, are clipped to that visible part and dropped when
    less than ``min_bbox_size`` pixels wide or high or less than ``min_area_ratio`` of them is left.
    Uncovered canvas is ``pad_val``. With probability ``1 - prob`` the sample passes through unchanged.

    Sets ``img`` [h, w, 3], ``img_shape`` (h, w), ``gt_bboxes`` (xyxy canvas pixels), labels and ignore
    flags; other keys (``img_id``, ``img_path``...) stay those of the current sample, and
    ``scale_factor`` is reset to (1, 1) since the canvas has no single original image.
    """

    def __init__(self, img_scale=(320, 320), center_ratio_range=(0.25, 0.75), scale_range=(0.5, 1.0),
                 pad_val: int = 114, min_bbox_size: float = 2.0, min_area_ratio: float = 0.2,
                 prob: float = 1.0):
        self.img_scale = _check_scale(img_scale)
        if not 0 <= center_ratio_range[0] <= center_ratio_range[1] <= 1:
            raise ValueError(f'center_ratio_range must lie in [0, 1], got {center_ratio_range!r}')
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f'scale_range must be positive (lo, hi), got {scale_range!r}')
        super().__init__(pad_val, min_bbox_size, min_area_ratio, prob)
        self.center_ratio_range = tuple(center_ratio_range)
        self.scale_range = tuple(scale_range)

    def get_indexes(self, dataset) -> list:
        """Three random indexes of ``dataset`` (the other quadrants)."""
        return [int(np.random.randint(len(dataset))) for _ in range(3)]

    def __call__(self, results: dict) -> dict:
        mix = results.get('mix_results')
        if not mix or len(mix) != 3:
            raise ValueError('Mosaic needs results["mix_results"] with 3 samples: run it inside '
                             'MultiImageMixDataset, which loads them through get_indexes')
        if np.random.rand() >= self.prob:
            return results
        width, height = self.img_scale
        cx = int(np.random.uniform(*self.center_ratio_range) * width)
        cy = int(np.random.uniform(*self.center_ratio_range) * height)
        canvas = np.full((height, width, 3), self.pad_val, dtype=np.uint8)
        all_boxes, all_labels, all_ignore = [], [], []
        for quadrant, sample in enumerate([results, *mix]):
            ratio = min(width / sample['img'].shape[1], height / sample['img'].shape[0])
            ratio *= np.random.uniform(*self.scale_range)
            img = _resize(sample['img'], ratio)
            h, w = img.shape[:2]
            right, bottom = quadrant in (1, 3), quadrant in (2, 3)
            # Canvas region of this image and the matching crop of the image.
            x1, x2 = (cx, min(cx + w, width)) if right else (max(cx - w, 0), cx)
            y1, y2 = (cy, min(cy + h, height)) if bottom else (max(cy - h, 0), cy)
            if x2 <= x1 or y2 <= y1:
                continue
            # Left images show their right part, top images their bottom part.
            crop_x1 = 0 if right else w - (x2 - x1)
            crop_y1 = 0 if bottom else h - (y2 - y1)
            canvas[y1:y2, x1:x2] = img[crop_y1:crop_y1 + y2 - y1, crop_x1:crop_x1 + x2 - x1]
            boxes, labels, ignore = _boxes_of(sample)
            boxes = boxes * ratio + np.array([x1 - crop_x1, y1 - crop_y1] * 2, dtype=np.float32)
            boxes, keep = self._keep(boxes, (x1, y1, x2, y2))
            all_boxes.append(boxes[keep])
            all_labels.append(labels[keep])
            all_ignore.append(ignore[keep])
        results = {k: v for k, v in results.items() if k not in ('mix_results', 'pad_shape')}
        results.update(img=canvas, img_shape=(height, width), scale_factor=(1.0, 1.0))
        _set_boxes(results, np.concatenate(all_boxes or [np.zeros((0, 4))]),
                   np.concatenate(all_labels or [np.zeros(0)]), np.concatenate(all_ignore or [np.zeros(0)]))
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(img_scale={self.img_scale}, center_ratio_range='
                f'{self.center_ratio_range}, scale_range={self.scale_range}, prob={self.prob})')


@TRANSFORMS.register_module()
class MixUp(_MixTransform):
    """Blends a second sample into the current one: ``img = lam * current + (1 - lam) * other`` with
    ``lam ~ Beta(alpha, alpha)`` (32: close to 0.5, as YOLOv5), and keeps the boxes of both.

    The other sample (``get_indexes``) is resized, keeping its aspect ratio, to fit the current image
    times a factor drawn from ``ratio_range``, flipped horizontally with probability ``flip_ratio``,
    placed at the top-left of a ``pad_val`` canvas at least as large as the current image, and a window
    of the current image's size is cut from it at a random offset. Its boxes follow, are clipped to the
    window and filtered like :class:`Mosaic`'s. With probability ``1 - prob`` the sample passes unchanged.
    """

    def __init__(self, ratio_range=(0.5, 1.5), flip_ratio: float = 0.5, alpha: float = 32.0,
                 pad_val: int = 114, min_bbox_size: float = 2.0, min_area_ratio: float = 0.2,
                 prob: float = 1.0):
        if not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError(f'ratio_range must be positive (lo, hi), got {ratio_range!r}')
        if alpha <= 0 or not 0 <= flip_ratio <= 1:
            raise ValueError(f'MixUp needs alpha > 0 and flip_ratio in [0, 1]; got alpha={alpha}, '
                             f'flip_ratio={flip_ratio}')
        super().__init__(pad_val, min_bbox_size, min_area_ratio, prob)
        self.ratio_range = tuple(ratio_range)
        self.flip_ratio = flip_ratio
        self.alpha = alpha

    def get_indexes(self, dataset) -> list:
        """One random index of ``dataset``."""
        return [int(np.random.randint(len(dataset)))]

    def __call__(self, results: dict) -> dict:
        mix = results.get('mix_results')
        if not mix:
            raise ValueError('MixUp needs results["mix_results"] with 1 sample: run it inside '
                             'MultiImageMixDataset, which loads it through get_indexes')
        if np.random.rand() >= self.prob:
            return results
        other = mix[0]
        height, width = results['img'].shape[:2]
        ratio = min(width / other['img'].shape[1], height / other['img'].shape[0])
        ratio *= np.random.uniform(*self.ratio_range)
        img = _resize(other['img'], ratio)
        boxes, labels, ignore = _boxes_of(other)
        boxes = boxes * ratio
        if np.random.rand() < self.flip_ratio:
            img = img[:, ::-1]
            flipped_x = img.shape[1] - boxes[:, [2, 0]]
            boxes = np.stack([flipped_x[:, 0], boxes[:, 1], flipped_x[:, 1], boxes[:, 3]], 1)
        h, w = img.shape[:2]
        padded = np.full((max(h, height), max(w, width), 3), self.pad_val, dtype=np.uint8)
        padded[:h, :w] = img
        off_x = int(np.random.randint(padded.shape[1] - width + 1))
        off_y = int(np.random.randint(padded.shape[0] - height + 1))
        window = padded[off_y:off_y + height, off_x:off_x + width]
        boxes = boxes - np.array([off_x, off_y, off_x, off_y], dtype=np.float32)
        boxes, keep = self._keep(boxes, (0, 0, width, height))

        lam = np.random.beta(self.alpha, self.alpha)
        blended = lam * results['img'].astype(np.float32) + (1 - lam) * window.astype(np.float32)
        own_boxes, own_labels, own_ignore = _boxes_of(results)
        results = {k: v for k, v in results.items() if k != 'mix_results'}
        results['img'] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        _set_boxes(results, np.concatenate([own_boxes, boxes[keep]]),
                   np.concatenate([own_labels, labels[keep]]), np.concatenate([own_ignore, ignore[keep]]))
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(ratio_range={self.ratio_range}, flip_ratio={self.flip_ratio}, '
                f'alpha={self.alpha}, prob={self.prob})')
