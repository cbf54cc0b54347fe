"""What the model tests share: a sample builder, the toy images and backbone of the short learning runs,
and their COCO scores computed by det's own ``evaluate_coco`` (on pycocotools, which tests/evaluation
checks it against), so each learning test states only its model and its bar.

Plain functions, imported as ``from tests.conftest import make_sample, toy_data, ap50``: they are called
from helpers as well as from tests, where fixtures cannot reach.
"""
import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import nn

from det.evaluation import evaluate_coco
from det.structures import DetDataSample

# Objects of the toy images, ((x1, y1, x2, y2) in 64 x 64 pixels, class) per image; class = colour.
TOY_LAYOUTS = ([([6, 8, 30, 34], 0)],
               [([30, 10, 56, 26], 1), ([8, 36, 24, 58], 0)],
               [([4, 4, 20, 18], 1), ([36, 30, 60, 60], 0), ([10, 40, 30, 52], 1)],
               [([20, 20, 48, 44], 1)],
               [([2, 30, 40, 62], 0), ([44, 4, 60, 22], 1)],
               [([12, 2, 34, 20], 0), ([40, 36, 54, 58], 1)])
# Normalised RGB of the classes: red 0, green 1, blue 2.
TOY_COLOURS = torch.tensor([[1.5, -1.0, -1.0], [-1.0, 1.5, -1.0], [-1.0, -1.0, 1.5]])


def make_sample(bboxes, labels, img_shape=(64, 64), scale_factor=(1.0, 1.0),
                batch_shape=None) -> DetDataSample:
    """A sample whose ``gt_instances`` (``bboxes`` float32 ``[N, 4]`` xyxy, ``labels`` int64 ``[N]``, given
    as lists or tensors) are in the pixels of the network input ``img_shape`` (h, w); ``ori_shape``
    follows from ``scale_factor`` (sx, sy: resized / original), and ``batch_shape`` is the padded batch's
    (h, w), default ``img_shape``."""
    sx, sy = scale_factor
    ori_shape = (round(img_shape[0] / sy), round(img_shape[1] / sx))
    sample = DetDataSample(metainfo=dict(img_shape=img_shape, ori_shape=ori_shape, scale_factor=scale_factor,
                                         batch_input_shape=batch_shape or img_shape,
                                         pad_shape=batch_shape or img_shape))
    sample.gt_instances = InstanceData(bboxes=torch.as_tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
                                       labels=torch.as_tensor(labels, dtype=torch.int64))
    return sample


def toy_data(layouts=TOY_LAYOUTS[:4], size: int = 64) -> tuple:
    """Images of filled rectangles on grey noise (seed 0), one per layout of ``((x1, y1, x2, y2), class)``
    objects in ``size`` pixels, and their samples: ``(float [B, 3, size, size], [DetDataSample])``."""
    gen = torch.Generator().manual_seed(0)
    images, samples = [], []
    for objects in layouts:
        img = 0.3 * torch.randn(3, size, size, generator=gen)
        for (x1, y1, x2, y2), label in objects:
            img[:, y1:y2, x1:x2] = TOY_COLOURS[label][:, None, None]
        images.append(img)
        samples.append(make_sample([b for b, _ in objects], [lab for _, lab in objects], (size, size)))
    return torch.stack(images), samples


class ToyBackbone(nn.Module):
    """The toy learning runs' backbone: five 3x3 convs (three with stride 2), one stride-8 output of
    ``width`` channels, ~60 px receptive field: enough to see the 10-30 px boxes of :func:`toy_data`."""

    def __init__(self, width=32):
        super().__init__()
        chans = [3, 16, width, width, width, width]
        layers = []
        for i, (stride, dilation) in enumerate([(2, 1), (2, 1), (2, 1), (1, 1), (1, 2)]):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride, padding=dilation, dilation=dilation),
                       nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_channels, self.strides = [width], [8]

    def forward(self, x):
        return (self.body(x),)


def coco_stats(samples, predictions, num_classes: int) -> np.ndarray:
    """The 12 numbers of ``COCOeval.summarize()`` (AP, AP50, AP75, ...) of ``predictions`` (one
    ``InstanceData`` or predicted ``DetDataSample`` per sample, boxes in the samples' pixels) against the
    samples' ``gt_instances``, classes ``0..num_classes-1``."""
    images, anns, rows = [], [], []
    for img_id, (sample, pred) in enumerate(zip(samples, predictions), start=1):
        h, w = sample.metainfo['img_shape'][:2]
        images.append(dict(id=img_id, height=h, width=w))
        gt = sample.gt_instances
        for (x1, y1, x2, y2), label in zip(gt.bboxes.tolist(), gt.labels.tolist()):
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=label + 1, iscrowd=0,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
        pred = getattr(pred, 'pred_instances', pred)
        boxes = pred.bboxes.detach().double().reshape(-1, 4)
        x1, y1, x2, y2 = boxes.unbind(1)
        columns = (torch.full_like(x1, img_id), x1, y1, x2 - x1, y2 - y1, pred.scores.detach(),
                   pred.labels.detach() + 1)  # evaluate_coco's [N, 7] rows, category id = label + 1
        rows.append(torch.stack([c.double() for c in columns], 1))
    gt = dict(images=images, annotations=anns,
              categories=[dict(id=c + 1, name=str(c)) for c in range(num_classes)])
    result = evaluate_coco(gt, torch.cat(rows).numpy(), backend='pycocotools')
    return np.array(list(result.stats.values()))


def ap50(samples, predictions, num_classes: int) -> float:
    """COCO AP at IoU 0.5 of ``predictions`` against the samples' ground truth (:func:`coco_stats`)."""
    return float(coco_stats(samples, predictions, num_classes)[1])
