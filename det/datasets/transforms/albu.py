"""Any albumentations augmentation, with boxes, labels and ignore flags following the geometry."""
import warnings

import albumentations as A
import cv2
import numpy as np

from det.registry import TRANSFORMS


def build_albu(cfg: dict):
    """``dict(type='HorizontalFlip', p=0.5)`` -> ``A.HorizontalFlip(p=0.5)``; container transforms
    (``Compose``, ``OneOf``, ``SomeOf``...) build their ``transforms`` list recursively."""
    cfg = dict(cfg)
    name = cfg.pop('type')
    cls = getattr(A, name, None)
    if not isinstance(cls, type):
        raise KeyError(f'albumentations has no transform named {name!r}')
    if 'transforms' in cfg:
        cfg['transforms'] = [build_albu(c) for c in cfg['transforms']]
    return cls(**cfg)


@TRANSFORMS.register_module()
class Albu:
    """Applies ``A.Compose([...], bbox_params=A.BboxParams(format='pascal_voc', ...))`` to ``img`` and
    ``gt_bboxes`` (xyxy pixels).

    The image is handed to albumentations as RGB (colour transforms such as HueSaturationValue assume
    it) and converted back to BGR. Boxes are clipped to the image; boxes that end up degenerate, outside
    or below ``min_visibility`` / ``min_area`` are dropped together with their label and ignore flag.
    When a transform changes the image size, ``img_shape`` is updated; ``scale_factor`` is left alone,
    so resizing that must be undone at prediction time belongs in :class:`Resize`.

    Args:
        transforms: list of albumentations configs, e.g. ``[dict(type='HorizontalFlip', p=0.5)]``.
        min_visibility: fraction of a box's area that must survive a crop for the box to be kept.
        min_area: minimum box area in pixels after the transform.
    """

    def __init__(self, transforms, min_visibility: float = 0.0, min_area: float = 0.0):
        self.transforms = [dict(t) for t in transforms]
        with warnings.catch_warnings():  # colour-only lists are fine: boxes then pass through unchanged
            warnings.filterwarnings('ignore', message='Got processor for bboxes')
            self.aug = A.Compose(
                [build_albu(t) for t in self.transforms],
                bbox_params=A.BboxParams(format='pascal_voc', label_fields=['box_ids'], clip=True,
                                         min_visibility=min_visibility, min_area=min_area))

    def __call__(self, results: dict) -> dict:
        # albumentations seeds itself from OS entropy; drawing its seed from NumPy's global generator
        # (seeded by mmengine's `randomness.seed` and per dataloader worker, and saved in det's
        # checkpoints) makes runs reproducible and lets --resume continue the same random stream.
        self.aug.set_random_seed(int(np.random.randint(2**31)))
        boxes = results.get('gt_bboxes', np.zeros((0, 4), np.float32))
        out = self.aug(image=cv2.cvtColor(results['img'], cv2.COLOR_BGR2RGB), bboxes=boxes,
                       box_ids=np.arange(len(boxes)))
        img = cv2.cvtColor(np.ascontiguousarray(out['image']), cv2.COLOR_RGB2BGR)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        if 'gt_bboxes' in results:
            keep = np.asarray(out['box_ids'], dtype=np.int64)
            results['gt_bboxes'] = np.asarray(out['bboxes'], dtype=np.float32).reshape(-1, 4)
            for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
                if key in results:
                    results[key] = results[key][keep]
        return results

    def __repr__(self):
        return f'{type(self).__name__}(transforms={self.transforms})'
