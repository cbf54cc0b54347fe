"""The sample that travels from the dataset through the model to the metric.

Box convention everywhere outside a head: ``bboxes`` float32 ``[N, 4]`` xyxy in absolute pixels of the
image the tensor was made from, ``labels`` int64 ``[N]`` in ``0..C-1``, ``scores`` float32 ``[N]``.
``metainfo`` carries ``img_id``, ``img_path``, ``ori_shape`` (h, w), ``img_shape`` (h, w after resize),
``scale_factor`` (sx, sy: resized / original) and, once batched, ``pad_shape`` / ``batch_input_shape``.
"""
from mmengine.structures import BaseDataElement, InstanceData


def _instances_field(name: str, doc: str) -> property:
    """A typed ``InstanceData`` field of a sample, stored as mmengine's ``_<name>`` data field (the
    accessor mmengine's own samples write out once per field)."""
    key = f'_{name}'

    def set_value(self, value: InstanceData):
        self.set_field(value, key, dtype=InstanceData)

    return property(lambda self: getattr(self, key), set_value, lambda self: delattr(self, key), doc)


class DetDataSample(BaseDataElement):
    """Ground truth, ignored regions and predictions of one image, each an ``InstanceData``."""

    gt_instances = _instances_field('gt_instances', 'Ground-truth boxes and labels.')
    ignored_instances = _instances_field('ignored_instances',
                                         'Regions neither positive nor negative, such as COCO iscrowd boxes.')
    pred_instances = _instances_field('pred_instances', 'Predicted boxes, scores and labels.')
