"""The sample that travels from the dataset through the model to the metric.

Box convention everywhere outside a head: ``bboxes`` float32 ``[N, 4]`` xyxy in absolute pixels of the
image the tensor was made from, ``labels`` int64 ``[N]`` in ``0..C-1``, ``scores`` float32 ``[N]``.
``metainfo`` carries ``img_id``, ``img_path``, ``ori_shape`` (h, w), ``img_shape`` (h, w after resize),
``scale_factor`` (sx, sy: resized / original) and, once batched, ``pad_shape`` / ``batch_input_shape``.
"""
from mmengine.structures import BaseDataElement, InstanceData


class DetDataSample(BaseDataElement):
    """Ground truth (``gt_instances``), ignored regions such as COCO ``iscrowd`` boxes
    (``ignored_instances``) and predictions (``pred_instances``) of one image."""

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData):
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self):
        del self._gt_instances

    @property
    def ignored_instances(self) -> InstanceData:
        return self._ignored_instances

    @ignored_instances.setter
    def ignored_instances(self, value: InstanceData):
        self.set_field(value, '_ignored_instances', dtype=InstanceData)

    @ignored_instances.deleter
    def ignored_instances(self):
        del self._ignored_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData):
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self):
        del self._pred_instances
