"""YOLO v1's grid head (Redmon et al. 2016), fully convolutional so the grid follows the input size.

One feature level with stride ``s`` gives an ``S_h x S_w`` grid (``S = input / s``; non-square works).
Each cell predicts ``B`` boxes ``(x, y, sqrt w, sqrt h, confidence)`` and one class distribution:

- ``x, y, sqrt w, sqrt h``: the box in :class:`YOLOV1BBoxCoder`'s encoding, each in [0, 1] (sigmoid);
- ``confidence``: Pr(object) * IoU, a logit (sigmoid at use);
- ``C`` class probabilities Pr(class | object) per cell (softmax).

Predictors are ordered cell-major: ``index = (row * S_w + col) * B + b``.
"""
import torch
from torch import nn

from det.models.losses.cross_entropy_loss import CrossEntropyLoss
from det.registry import MODELS, TASK_UTILS

from .base_dense_head import BaseDenseHead


@MODELS.register_module()
class YOLOV1Head(BaseDenseHead):
    """``num_convs`` x (3x3 conv + BN + LeakyReLU 0.1) with ``feat_channels``, then a 1x1 conv to
    ``B * 5 + C`` channels, on ``feats[in_index]``.

    ``forward`` returns ``(box_raw [N, B*5, S_h, S_w], cls_logits [N, C, S_h, S_w])``; box ``b`` holds
    channels ``5b .. 5b + 4`` of ``box_raw`` as logits of (x, y, sqrt w, sqrt h, confidence).

    Losses, each its own config, summed over predictors and divided by the number of images (the paper's
    eq. 3 term by term): ``loss_xy`` and ``loss_wh`` (squared error of the responsible predictors'
    encodings, lambda_coord = 5), ``loss_obj`` (confidence of responsible predictors against their IoU,
    or 1 with ``iou_target=False``), ``loss_noobj`` (confidence of the others against 0, lambda_noobj =
    0.5), ``loss_cls`` (squared error of the class distribution in cells holding an object, as the paper;
    ``dict(type='CrossEntropyLoss')`` scores the cell's class logits against that distribution instead,
    whose gradient does not shrink with the softmax's slope and so learns the classes sooner). The
    confidence terms default to binary cross-entropy on the logit: with thousands of predictors the
    paper's squared error on a sigmoid saturates and stops learning (its gradient on the logit,
    ``(C - C*) C (1 - C)``, vanishes); ``dict(type='MSELoss', use_sigmoid=True)`` restores it.

    ``loss_bbox=dict(type='GIoULoss', loss_weight=...)`` replaces ``loss_xy`` and ``loss_wh`` (leave them
    unset) by the GIoU loss of the responsible predictors' decoded boxes (xyxy input pixels) against their
    ground truth, summed and divided by the number of images like every other term: it scores the box
    as the metric does, instead of its encoding coordinate by coordinate.

    ``ignored_instances`` (crowd / difficult boxes): predictors of cells whose centre lies inside one
    get no no-object loss (see :class:`YOLOV1Assigner`).

    ``conf_prior`` sets the output bias so every predictor starts with that confidence, so that the
    ``S_h * S_w * B`` no-object terms do not swamp the first steps of training from scratch.
    ``predict``: score = confidence x class probability for every (predictor, class), then ``test_cfg``.
    """

    default_test_cfg = dict(score_thr=0.01, nms=dict(iou_thr=0.5), max_per_img=100, topk=1000)

    def __init__(self, num_classes: int, in_channels, strides, in_index: int = 0, num_boxes: int = 2,
                 feat_channels: int = 256, num_convs: int = 2, conf_prior: float = 0.05,
                 iou_target: bool = True, assigner: dict = None, bbox_coder: dict = None,
                 loss_xy: dict = None, loss_wh: dict = None, loss_obj: dict = None, loss_noobj: dict = None,
                 loss_cls: dict = None, loss_bbox: dict = None, test_cfg: dict = None, init_cfg=None):
        super().__init__(num_classes, in_channels, strides, in_index, test_cfg, init_cfg)
        self.num_boxes = num_boxes
        self.conf_prior = conf_prior
        self.iou_target = iou_target
        self.assigner = TASK_UTILS.build(assigner or dict(type='YOLOV1Assigner'))
        self.bbox_coder = TASK_UTILS.build(bbox_coder or dict(type='YOLOV1BBoxCoder'))
        self.with_giou = loss_bbox is not None
        if self.with_giou and (loss_xy is not None or loss_wh is not None):
            raise ValueError('YOLOV1Head: loss_bbox (GIoU on decoded boxes) replaces loss_xy and loss_wh; '
                             'set either loss_bbox or loss_xy / loss_wh, not both')
        if self.with_giou:
            self.loss_bbox = MODELS.build(loss_bbox)
        else:
            self.loss_xy = MODELS.build(loss_xy or dict(type='MSELoss', loss_weight=5.0))
            self.loss_wh = MODELS.build(loss_wh or dict(type='MSELoss', loss_weight=5.0))
        self.loss_obj = MODELS.build(loss_obj or dict(type='BinaryCrossEntropyLoss', loss_weight=1.0))
        self.loss_noobj = MODELS.build(loss_noobj or dict(type='BinaryCrossEntropyLoss', loss_weight=0.5))
        self.loss_cls = MODELS.build(loss_cls or dict(type='MSELoss', loss_weight=1.0))
        self.cls_loss_on_logits = isinstance(self.loss_cls, CrossEntropyLoss)

        layers, channels = [], self.in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, feat_channels, 3, padding=1, bias=False),
                       nn.BatchNorm2d(feat_channels), nn.LeakyReLU(0.1, inplace=True)]
            channels = feat_channels
        self.convs = nn.Sequential(*layers)
        self.out = nn.Conv2d(channels, num_boxes * 5 + num_classes, 1)
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

    def forward(self, feats: tuple) -> tuple:
        """``feats[in_index]`` ``[N, C_in, S_h, S_w]`` -> ``(box_raw, cls_logits)`` (see class doc)."""
        out = self.out(self.convs(feats[self.in_index]))
        return out[:, :self.num_boxes * 5], out[:, self.num_boxes * 5:]

    def _flatten(self, box_raw: torch.Tensor, cls_logits: torch.Tensor) -> tuple:
        """Raw maps -> (``boxes`` ``[N, P, 4]`` encodings in [0, 1], ``conf_logits`` ``[N, P]``,
        ``cls_logits`` ``[N, S_h*S_w, C]``) with ``P = S_h * S_w * B`` predictors, cell-major."""
        n, _, s_h, s_w = box_raw.shape
        box = box_raw.float().reshape(n, self.num_boxes, 5, s_h, s_w).permute(0, 3, 4, 1, 2)
        box = box.reshape(n, s_h * s_w * self.num_boxes, 5)
        cls_logits = cls_logits.float().permute(0, 2, 3, 1).reshape(n, s_h * s_w, -1)
        return box[..., :4].sigmoid(), box[..., 4], cls_logits

    def loss_by_feat(self, box_raw, cls_logits, batch_gt_instances: list, batch_img_metas: list,
                     batch_gt_instances_ignore: list = None) -> dict:
        """Assign each image's ground truth (xyxy input pixels; ``batch_gt_instances_ignore``: one
        ``InstanceData`` of ignored ``bboxes`` or None per image) and return the ``loss_*`` terms
        (``loss_xy`` and ``loss_wh``, or ``loss_bbox``; ``loss_obj``, ``loss_noobj``, ``loss_cls``),
        fp32, also under autocast."""
        grid_size = tuple(box_raw.shape[-2:])
        boxes, conf_logits, cls_logits = self._flatten(box_raw, cls_logits)
        pred_xyxy = self.bbox_coder.decode(boxes.detach(), grid_size, self.stride)
        origins = self.bbox_coder.cell_origins(grid_size, self.num_boxes, boxes.device)
        ignores = batch_gt_instances_ignore or [None] * len(batch_gt_instances)
        gt_boxes, pos, ious, cls_targets, ignored = [], [], [], [], []
        for i, (gt, ign) in enumerate(zip(batch_gt_instances, ignores)):
            gt_bboxes = gt.bboxes.to(boxes)
            result = self.assigner.assign(pred_xyxy[i], gt_bboxes, gt.labels, grid_size, self.stride,
                                          self.num_classes,
                                          ignored_bboxes=None if ign is None else ign.bboxes)
            pos_i = result.gt_inds >= 0
            gt_boxes.append(gt_bboxes[result.gt_inds[pos_i]])
            pos.append(pos_i)
            ious.append(result.ious)
            cls_targets.append(result.cls_targets)
            ignored.append(result.ignored)
        pos, ious, ignored = torch.cat(pos), torch.cat(ious), torch.cat(ignored)
        cls_targets, gt_boxes = torch.cat(cls_targets), torch.cat(gt_boxes)
        pos_boxes, conf = boxes.flatten(0, 1)[pos], conf_logits.flatten()
        obj_cells = cls_targets.sum(dim=1) > 0
        num_imgs = max(len(batch_gt_instances), 1)
        losses = {}
        if self.with_giou:
            decoded = self.bbox_coder.decode(boxes, grid_size, self.stride).flatten(0, 1)[pos]
            losses['loss_bbox'] = self.loss_bbox(decoded, gt_boxes, avg_factor=num_imgs)
        else:
            box_targets = self.bbox_coder.encode(gt_boxes, origins.repeat(len(batch_gt_instances), 1)[pos],
                                                 self.stride)
            losses['loss_xy'] = self.loss_xy(pos_boxes[:, :2], box_targets[:, :2], avg_factor=num_imgs)
            losses['loss_wh'] = self.loss_wh(pos_boxes[:, 2:], box_targets[:, 2:], avg_factor=num_imgs)
        cls_pred = cls_logits.flatten(0, 1)[obj_cells]
        losses.update(
            loss_obj=self.loss_obj(conf[pos], ious[pos].detach() if self.iou_target else 1.0,
                                   avg_factor=num_imgs),
            loss_noobj=self.loss_noobj(conf[~pos & ~ignored], 0.0, avg_factor=num_imgs),
            loss_cls=self.loss_cls(cls_pred if self.cls_loss_on_logits else cls_pred.softmax(dim=-1),
                                   cls_targets[obj_cells], avg_factor=num_imgs))
        return losses

    def predict_by_feat(self, box_raw, cls_logits, batch_img_metas: list) -> list:
        """Score every (predictor, class) by confidence x Pr(class | object) of its cell, decode boxes to
        xyxy input pixels and select by ``test_cfg``."""
        grid_size = tuple(box_raw.shape[-2:])
        boxes, conf_logits, cls_logits = self._flatten(box_raw, cls_logits)
        bboxes = self.bbox_coder.decode(boxes, grid_size, self.stride)
        cls_prob = cls_logits.softmax(dim=-1).repeat_interleave(self.num_boxes, dim=1)
        scores = conf_logits.sigmoid()[..., None] * cls_prob
        return [self.select_detections(bboxes[i], scores[i]) for i in range(len(batch_img_metas))]
