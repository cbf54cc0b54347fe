"""A generated detection dataset of coloured shapes on cluttered backgrounds, in COCO format.

It needs no download, so tests and learning checks can train on it. Each image holds 1-12 objects of
five classes (circle, square, triangle, star, cross) with random colours that contrast with what lies
beneath them, on a background of gradients, low-frequency texture, soft blobs and pixel noise, plus
distractors that are not objects (lines, scribbles, arcs, elongated ellipses). Object size, measured as
sqrt(box area), follows the tiers of :data:`SIZE_TIERS`: 30% in 8-16 px, 30% in 16-32, 30% in 32-96,
10% in 96-200. Everything derives from ``seed``: the same seed gives byte-identical json and images.
"""
import json
import math
import multiprocessing
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from det.registry import DATASETS

from .coco import CocoDataset

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')
SIZE_TIERS = ((8, 16, 0.3), (16, 32, 0.3), (32, 96, 0.3), (96, 200, 0.1))  # (min, max, fraction)
SPLITS = ('train', 'val')


def _unit_polygon(name: str) -> np.ndarray:
    """Outline ``[K, 2]`` of a class's shape centred at the origin, about unit radius."""
    if name == 'circle':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == 'square':
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    if name == 'triangle':
        t = np.deg2rad([-90, 30, 150])
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == 'star':
        t = np.deg2rad(np.arange(10) * 36 - 90)
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    a = 1 / 3  # cross: plus sign with arms of half-width a
    return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a],
                     [-1, a], [-1, -a], [-a, -a]], float)


_MAX_ROTATION = dict(circle=0, square=20, triangle=30, star=36, cross=20)  # degrees


def sample_layout(rng: np.random.Generator, img_size: int) -> list:
    """Object placement of one image, without pixels: list of ``(label, polygon [K, 2], bbox xyxy)``
    in continuous pixel coordinates, largest first (the drawing order, so small objects stay visible).

    The polygon is scaled so that sqrt(bbox area) equals a size drawn from :data:`SIZE_TIERS`; an object
    may hide at most 35% of an earlier (larger) one; objects that find no place after 30 tries are left out.
    """
    fractions = np.array([t[2] for t in SIZE_TIERS])
    sizes = []
    for _ in range(rng.integers(1, 13)):
        lo, hi, _ = SIZE_TIERS[rng.choice(len(SIZE_TIERS), p=fractions)]
        sizes.append(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    objects = []
    for size in sorted(sizes, reverse=True):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        name = SHAPE_CLASSES[label]
        stretch = math.exp(rng.uniform(-0.2, 0.2))
        poly = _unit_polygon(name) * [stretch, 1 / stretch]
        angle = np.deg2rad(rng.uniform(-1, 1) * _MAX_ROTATION[name])
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        poly = poly @ rot.T
        poly -= poly.min(0)
        extent = poly.max(0)
        poly *= size / math.sqrt(extent[0] * extent[1])
        w, h = poly.max(0)
        if w >= img_size or h >= img_size:
            continue
        for _ in range(30):
            x, y = rng.uniform(0, img_size - w), rng.uniform(0, img_size - h)
            box = np.array([x, y, x + w, y + h])
            if all(_overlap(prev_box, box) <= 0.35 for _, _, prev_box in objects):
                objects.append((label, poly + [x, y], box))
                break
    return objects


def _overlap(under: np.ndarray, over: np.ndarray) -> float:
    """Fraction of box ``under`` covered by box ``over`` (xyxy)."""
    iw = min(under[2], over[2]) - max(under[0], over[0])
    ih = min(under[3], over[3]) - max(under[1], over[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / ((under[2] - under[0]) * (under[3] - under[1]))


def _fixed(points: np.ndarray) -> np.ndarray:
    """Continuous pixel coordinates -> OpenCV's 4-bit fixed point, whose integers are pixel centres."""
    return np.round((points - 0.5) * 16).astype(np.int32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gradient + low-frequency texture + soft blobs, ``[size, size, 3]`` float32."""
    c1, c2 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    t = np.clip(0.5 + (ramp[None, :] - 0.5) * math.cos(theta) + (ramp[:, None] - 0.5) * math.sin(theta),
                0, 1)
    img = c1 + t[..., None] * (c2 - c1)
    cells = int(rng.integers(3, 9))
    img += cv2.resize(rng.normal(0, 30, (cells, cells, 3)).astype(np.float32), (size, size),
                      interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(2, 8)):
        center = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(int(v) for v in rng.integers(size // 20, size // 4, 2))
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=size / 60)


def _distractors(img: np.ndarray, rng: np.random.Generator):
    """Sharp clutter that is not an object: lines, scribbles, arcs and elongated ellipses."""
    size = img.shape[0]
    for _ in range(rng.integers(2, 9)):
        colour = rng.uniform(0, 255, 3).tolist()
        kind = rng.integers(4)
        if kind == 0:
            p, q = rng.uniform(0, size, (2, 2))
            cv2.line(img, _fixed(p), _fixed(q), colour, int(rng.integers(1, 4)), cv2.LINE_AA, 4)
        elif kind == 1:
            steps = rng.normal(0, size / 25, (int(rng.integers(4, 10)), 2))
            walk = np.cumsum(steps, 0) + rng.uniform(0, size, 2)
            cv2.polylines(img, [_fixed(walk)], False, colour, int(rng.integers(1, 3)), cv2.LINE_AA, 4)
        else:
            center = tuple(int(v) for v in rng.integers(0, size, 2))
            radius = int(rng.integers(size // 30, size // 6))
            angle = float(rng.uniform(0, 180))
            if kind == 2:  # filled ellipse, 3-6 times longer than wide (unlike a circle)
                axes = (radius, max(1, int(radius / rng.uniform(3, 6))))
                cv2.ellipse(img, center, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
            else:  # open arc
                start, end = sorted(rng.uniform(0, 360, 2).tolist())
                cv2.ellipse(img, center, (radius, radius), angle, start, end, colour,
                            int(rng.integers(1, 3)), cv2.LINE_AA)


def _contrasting_colour(rng: np.random.Generator, beneath: np.ndarray) -> list:
    """A random colour at least 130 (Euclidean, 0-255 BGR) away from the mean colour ``beneath``."""
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - beneath) >= 130:
            return colour.tolist()
    return np.where(beneath < 128, 235.0, 20.0).tolist()


def render_image(rng: np.random.Generator, objects: list, size: int) -> np.ndarray:
    """Pixels of one image: background, distractors, then the objects of :func:`sample_layout`."""
    img = _background(rng, size)
    _distractors(img, rng)
    for _, poly, box in objects:
        x1, y1, x2, y2 = (int(v) for v in box)
        beneath = img[y1:y2 + 1, x1:x2 + 1].reshape(-1, 3).mean(0)
        cv2.fillPoly(img, [_fixed(poly)], _contrasting_colour(rng, beneath), cv2.LINE_AA, 4)
    img += rng.standard_normal(img.shape, dtype=np.float32) * 6
    return np.clip(img, 0, 255).astype(np.uint8)


def _image_rngs(seed: int, split: str, index: int) -> tuple:
    """Independent (layout, render) generators of one image, so layouts can be drawn without pixels."""
    seq = np.random.SeedSequence([seed, SPLITS.index(split), index])
    return tuple(np.random.default_rng(s) for s in seq.spawn(2))


def _make_image(args) -> list:
    """Worker: draw and write image ``index`` of ``split``; returns its objects (label, bbox)."""
    folder, split, index, size, seed = args
    layout_rng, render_rng = _image_rngs(seed, split, index)
    objects = sample_layout(layout_rng, size)
    img = render_image(render_rng, objects, size)
    cv2.imwrite(osp.join(folder, f'{index:06d}.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return [(label, box) for label, _, box in objects]


def _coco_json(split: str, per_image: list, size: int, info: dict) -> dict:
    images, annotations = [], []
    for index, objects in enumerate(per_image):
        images.append(dict(id=index + 1, file_name=f'{index:06d}.jpg', width=size, height=size))
        for label, box in objects:
            x, y = round(float(box[0]), 2), round(float(box[1]), 2)
            w, h = round(float(box[2] - box[0]), 2), round(float(box[3] - box[1]), 2)
            annotations.append(dict(id=len(annotations) + 1, image_id=index + 1, category_id=label + 1,
                                    bbox=[x, y, w, h], area=round(w * h, 2), iscrowd=0))
    categories = [dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(SHAPE_CLASSES)]
    return dict(info=dict(info, split=split), images=images, annotations=annotations, categories=categories)


PROGRESS_FROM = 100  # images; smaller datasets are written in about a second, without a progress bar


def _counted(results, progress):
    """``results`` unchanged, updating ``progress`` (an mmengine ``ProgressBar`` or None) per item."""
    for result in results:
        if progress is not None:
            progress.update()
        yield result


def generate_shapes(root: str = 'data/shapes', num_train: int = 2000, num_val: int = 300,
                    img_size: int = 320, seed: int = 0, workers: int = 2):
    """Write ``root/{train,val}/*.jpg`` and ``root/annotations/{train,val}.json`` (COCO format).

    From :data:`PROGRESS_FROM` images on it says so and shows a progress bar. Crash-safe: everything is
    written into a temporary sibling folder that is renamed onto ``root`` at the end, so an interrupted
    run never leaves a dataset that looks complete. ``root`` must be absent or empty; if another process
    finished the same dataset meanwhile, its copy is kept.
    """
    root = osp.abspath(root)
    tmp = osp.join(osp.dirname(root), f'.{osp.basename(root)}.tmp-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    info = dict(generator='det.datasets.shapes', num_train=num_train, num_val=num_val, img_size=img_size,
                seed=seed)
    progress = None
    if num_train + num_val >= PROGRESS_FROM:
        print_log(f'generating the shapes dataset in {root} ({num_train} train + {num_val} val images, '
                  'once)', logger='current')
        progress = ProgressBar(num_train + num_val, file=sys.stdout)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        for split, count in zip(SPLITS, (num_train, num_val)):
            os.makedirs(osp.join(tmp, split))
            tasks = [(osp.join(tmp, split), split, i, img_size, seed) for i in range(count)]
            if workers > 1 and count > 64:
                # 'forkserver', not 'fork': a forked child inherits the state of OpenCV's and OpenMP's
                # thread pools without their threads and can hang in them. One OpenCV thread per
                # worker: the pool already uses the cores, more threads only contend.
                with multiprocessing.get_context('forkserver').Pool(workers, cv2.setNumThreads, (1,)) as pool:
                    per_image = list(_counted(pool.imap(_make_image, tasks, chunksize=16), progress))
            else:
                per_image = list(_counted(map(_make_image, tasks), progress))
            with open(osp.join(tmp, 'annotations', f'{split}.json'), 'w') as f:
                json.dump(_coco_json(split, per_image, img_size, info), f)
        if progress is not None:
            print(flush=True)  # end the progress bar's line
        try:
            os.replace(tmp, root)
        except OSError:
            if not all(osp.exists(osp.join(root, 'annotations', f'{s}.json')) for s in SPLITS):
                raise FileExistsError(f'{root} exists and is not a complete shapes dataset; remove it '
                                      'or choose another root') from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@DATASETS.register_module()
class ShapesDataset(CocoDataset):
    """The generated shapes dataset, created under ``data_root`` on first use and then loaded by
    :class:`CocoDataset` unchanged. Generation arguments must match those of an existing dataset.

    Args:
        split: 'train' or 'val'.
        num_train, num_val, img_size, seed: arguments of :func:`generate_shapes`.
    """

    METAINFO = dict(classes=SHAPE_CLASSES)

    def __init__(self, data_root: str = 'data/shapes', split: str = 'train', num_train: int = 2000,
                 num_val: int = 300, img_size: int = 320, seed: int = 0, **kwargs):
        ann_file = osp.join(data_root, 'annotations', f'{split}.json')
        params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed)
        if not osp.exists(ann_file):
            generate_shapes(data_root, **params)
        with open(ann_file) as f:
            info = json.load(f).get('info', {})
        found = {k: info.get(k) for k in params}
        if found != params:
            raise ValueError(f'{data_root} holds a shapes dataset generated with {found}, not {params}; '
                             'remove it or choose another data_root')
        super().__init__(ann_file=f'annotations/{split}.json', data_root=data_root,
                         data_prefix=dict(img=f'{split}/'), **kwargs)
