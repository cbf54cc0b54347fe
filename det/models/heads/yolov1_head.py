"""YOLO v1's grid head (Redmon et al. 2016), fully convolutional so the grid follows the input size.

One feature level with stride ``s`` gives an ``S_h x S_w`` grid (``S = input / s``; non-square works).
Each cell predicts ``B`` boxes ``(x, y, sqrt w, sqrt h, confidence)`` and one class distribution:

- ``x, y``: the box centre's offset inside its cell, in [0, 1] (sigmoid);
- ``sqrt w, sqrt h``: square roots of the box size relative to the grid's extent ``S_w * s`` by
  ``S_h * s`` (the padded input size when it is a multiple of ``s``), in [0, 1] (sigmoid), because the
  paper's loss compares square roots so errors on small boxes weigh more;
- ``confidence``: Pr(object) * IoU, in [0, 1] (sigmoid; see ``YOLOV1Loss.conf_loss``);
- ``C`` class probabilities Pr(class | object) per cell (softmax).

Raw output channels are ``[B * 5 + C]``: box ``b`` holds channels ``5b .. 5b + 4`` in the order above, the
class logits come last. Predictors are ordered cell-major: ``index = (row * S_w + col) * B + b``.
"""
import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import nn
from torchvision.ops import batched_nms

from det.registry import MODELS, TASK_UTILS
from det.structures import rescale_to_original


@MODELS.register_module()
class YOLOV1Head(BaseModule):
    """``num_convs`` x (3x3 conv + BN + LeakyReLU 0.1) with ``feat_channels``, then a 1x1 conv to
    ``B * 5 + C`` channels, on the level ``in_index`` of the features the detector passes.

    ``conf_prior`` sets the output bias so every predictor starts with that confidence: a low start keeps
    the ``S_h * S_w * B`` no-object terms from swamping the first steps of training from scratch.
    ``predict`` scores each (predictor, class) by confidence x class probability, keeps scores above
    ``score_thr``, the ``nms_pre`` best, runs class-wise NMS at ``iou_thr`` and keeps ``max_per_img``.
    """

    def __init__(self, num_classes: int, in_channels: list, strides: list, in_index: int = -1,
                 num_boxes: int = 2, feat_channels: int = 256, num_convs: int = 2,
                 assigner: dict = None, loss: dict = None, conf_prior: float = 0.05,
                 score_thr: float = 0.01, nms_pre: int = 1000, iou_thr: float = 0.5,
                 max_per_img: int = 100, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.num_boxes = num_boxes
        self.in_index = in_index
        self.stride = strides[in_index]
        self.score_thr = score_thr
        self.nms_pre = nms_pre
        self.iou_thr = iou_thr
        self.max_per_img = max_per_img
        self.assigner = TASK_UTILS.build(assigner or dict(type='YOLOV1Assigner'))
        self.loss_fn = MODELS.build(loss or dict(type='YOLOV1Loss'))

        layers, channels = [], in_channels[in_index]
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, feat_channels, 3, padding=1, bias=False),
                       nn.BatchNorm2d(feat_channels), nn.LeakyReLU(0.1, inplace=True)]
            channels = feat_channels
        self.convs = nn.Sequential(*layers)
        self.out = nn.Conv2d(channels, num_boxes * 5 + num_classes, 1)
        self.conf_prior = conf_prior
        self._init_out()

    def _init_out(self):
        """Small output weights; biases give x, y, sqrt w, sqrt h = 0.5 and confidence = ``conf_prior``."""
        nn.init.normal_(self.out.weight, std=0.01)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[4:self.num_boxes * 5:5] = torch.logit(torch.tensor(self.conf_prior))

    def init_weights(self):
        """Apply ``init_cfg`` (the detector's too, which runs first), then restore the output prior."""
        super().init_weights()
        self._init_out()

    def forward(self, feats: tuple) -> torch.Tensor:
        """``feats[in_index]`` ``[N, C_in, S_h, S_w]`` -> raw logits ``[N, B * 5 + C, S_h, S_w]``."""
        return self.out(self.convs(feats[self.in_index]))

    def _decode(self, raw: torch.Tensor):
        """Raw logits -> (``boxes`` ``[N, S_h*S_w*B, 4]`` (x, y, sqrt w, sqrt h), ``conf`` ``[N, S_h*S_w*B]``,
        ``cls`` ``[N, S_h*S_w, C]`` probabilities)."""
        n, _, s_h, s_w = raw.shape
        box = raw[:, :self.num_boxes * 5].reshape(n, self.num_boxes, 5, s_h, s_w)
        box = box.permute(0, 3, 4, 1, 2).reshape(n, s_h * s_w * self.num_boxes, 5)
        cls = raw[:, self.num_boxes * 5:].permute(0, 2, 3, 1).reshape(n, s_h * s_w, -1).softmax(dim=-1)
        return box[..., :4].sigmoid(), box[..., 4].sigmoid(), cls

    def _cell_origins(self, grid_size: tuple, device) -> torch.Tensor:
        """``[S_h*S_w*B, 2]`` (col, row) of each predictor's cell."""
        s_h, s_w = grid_size
        rows, cols = torch.meshgrid(torch.arange(s_h, device=device), torch.arange(s_w, device=device),
                                    indexing='ij')
        origins = torch.stack([cols.flatten(), rows.flatten()], dim=1).float()
        return origins.repeat_interleave(self.num_boxes, dim=0)

    def boxes_to_xyxy(self, boxes: torch.Tensor, grid_size: tuple) -> torch.Tensor:
        """Encoded ``[..., S_h*S_w*B, 4]`` (x, y, sqrt w, sqrt h) -> xyxy input pixels."""
        s_h, s_w = grid_size
        centres = (self._cell_origins(grid_size, boxes.device) + boxes[..., :2]) * self.stride
        sizes = boxes[..., 2:] ** 2 * boxes.new_tensor([s_w * self.stride, s_h * self.stride])
        return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)

    def encode_targets(self, gt_bboxes: torch.Tensor, gt_inds: torch.Tensor, grid_size: tuple):
        """Box targets ``[S_h*S_w*B, 4]`` (x, y, sqrt w, sqrt h) of each predictor's assigned ground truth
        (``gt_bboxes`` ``[N, 4]`` xyxy input pixels); rows of unassigned predictors are zero."""
        s_h, s_w = grid_size
        targets = gt_bboxes.new_zeros(gt_inds.shape[0], 4)
        pos = gt_inds >= 0
        if not pos.any():
            return targets
        gt = gt_bboxes[gt_inds[pos]]
        centres = (gt[:, :2] + gt[:, 2:]) / 2 / self.stride - self._cell_origins(grid_size, gt.device)[pos]
        sizes = (gt[:, 2:] - gt[:, :2]) / gt.new_tensor([s_w * self.stride, s_h * self.stride])
        targets[pos] = torch.cat([centres.clamp(0, 1), sizes.clamp(0, 1).sqrt()], dim=1)
        return targets

    def loss(self, feats: tuple, data_samples: list) -> dict:
        """Assign each image's ``gt_instances`` (xyxy input pixels) and return the ``loss_*`` dict."""
        raw = self(feats).float()  # losses in fp32, also under bf16/fp16 autocast
        grid_size = tuple(raw.shape[-2:])
        boxes, conf, cls = self._decode(raw)
        pred_xyxy = self.boxes_to_xyxy(boxes.detach(), grid_size)
        box_targets, pos, ious, cls_targets = [], [], [], []
        for i, sample in enumerate(data_samples):
            gt = sample.gt_instances
            result = self.assigner.assign(pred_xyxy[i], gt.bboxes, gt.labels, grid_size, self.stride,
                                          self.num_classes)
            box_targets.append(self.encode_targets(gt.bboxes.to(raw), result.gt_inds, grid_size))
            pos.append(result.gt_inds >= 0)
            ious.append(result.ious)
            cls_targets.append(result.cls_targets)
        return self.loss_fn(boxes.flatten(0, 1), conf.flatten(), cls.flatten(0, 1), torch.cat(box_targets),
                            torch.cat(pos), torch.cat(ious), torch.cat(cls_targets), len(data_samples))

    @torch.no_grad()
    def predict(self, feats: tuple, data_samples: list) -> list:
        """-> one ``InstanceData(bboxes [K, 4] xyxy ORIGINAL pixels, scores [K], labels [K])`` per image."""
        raw = self(feats).float()
        grid_size = tuple(raw.shape[-2:])
        boxes, conf, cls = self._decode(raw)
        bboxes = self.boxes_to_xyxy(boxes, grid_size)
        # score[p, c] = conf[p] * Pr(c | object) of p's cell
        scores = conf[..., None] * cls.repeat_interleave(self.num_boxes, dim=1)
        return [self._predict_single(bboxes[i], scores[i], sample.metainfo)
                for i, sample in enumerate(data_samples)]

    def _predict_single(self, bboxes: torch.Tensor, scores: torch.Tensor, meta: dict) -> InstanceData:
        """``bboxes`` ``[P, 4]`` xyxy input pixels, ``scores`` ``[P, C]`` -> filtered, NMS-ed detections."""
        flat = scores.flatten()
        keep = (flat > self.score_thr).nonzero().squeeze(1)
        flat = flat[keep]
        if flat.numel() > self.nms_pre:
            flat, top = flat.topk(self.nms_pre)
            keep = keep[top]
        boxes, labels = bboxes[keep // self.num_classes], keep % self.num_classes
        keep = batched_nms(boxes, flat, labels, self.iou_thr)[:self.max_per_img]
        result = InstanceData()
        result.bboxes = rescale_to_original(boxes[keep], meta['scale_factor'], meta['ori_shape'])
        result.scores = flat[keep]
        result.labels = labels[keep]
        return result
