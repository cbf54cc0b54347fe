"""Packs a results dict into the model's input: an image tensor and a DetDataSample."""
import numpy as np
import torch
from mmengine.structures import InstanceData

from det.registry import TRANSFORMS
from det.structures import DetDataSample


@TRANSFORMS.register_module()
class PackDetInputs:
    """Results dict -> ``{'inputs': uint8 [3, H, W] BGR contiguous tensor, 'data_samples': DetDataSample}``.

    ``gt_instances`` holds the non-ignored boxes (``bboxes`` float32 [N, 4] xyxy pixels of ``inputs``,
    ``labels`` int64 [N]) and ``ignored_instances`` the ignored ones (e.g. COCO iscrowd); both are set
    only when the results carry ``gt_bboxes``. ``meta_keys`` found in the results go to the sample's
    metainfo; ``scale_factor`` defaults to (1.0, 1.0) when no Resize ran. ``instances`` is the dataset
    record's annotations as loaded (original pixels, untouched by the pipeline): the metric and the
    drawing hook read the ground truth there, not from the transformed ``gt_instances``.
    """

    def __init__(self, meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                  'pad_shape', 'instances')):
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        img = results['img']
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = DetDataSample()
        if 'gt_bboxes' in results:
            boxes = torch.from_numpy(np.asarray(results['gt_bboxes'], dtype=np.float32).reshape(-1, 4))
            labels = torch.from_numpy(np.asarray(results['gt_bboxes_labels'], dtype=np.int64))
            ignored = torch.from_numpy(np.asarray(
                results.get('gt_ignore_flags', np.zeros(len(boxes), bool)), dtype=bool))
            sample.gt_instances = InstanceData(bboxes=boxes[~ignored], labels=labels[~ignored])
            sample.ignored_instances = InstanceData(bboxes=boxes[ignored], labels=labels[ignored])
        meta = {'scale_factor': (1.0, 1.0)}
        meta.update({k: results[k] for k in self.meta_keys if k in results})
        sample.set_metainfo(meta)
        return {'inputs': inputs, 'data_samples': sample}

    def __repr__(self):
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
