"""YOLO v1's sum-squared error (Redmon et al. 2016, eq. 3), split into its five terms."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS


@MODELS.register_module()
class YOLOV1Loss(nn.Module):
    """Sum-squared error over predictors and cells, averaged over images.

    - ``loss_xy``    = lambda_coord * sum over responsible predictors of (x - x*)^2 + (y - y*)^2
    - ``loss_wh``    = lambda_coord * sum over responsible predictors of (sqrt w - sqrt w*)^2 + (same for h)
    - ``loss_obj``   = lambda_obj * sum over responsible predictors of (C - C*)^2, with C* the (detached)
      IoU of the predicted box with its ground truth, or 1 when ``iou_target=False``
    - ``loss_noobj`` = lambda_noobj * sum over all other predictors of C^2
    The confidence error is the paper's squared error with ``conf_loss='sse'``, or binary cross-entropy
    with ``conf_loss='bce'`` (the default). The paper's 7x7 grid has ~100 predictors; a grid fine enough
    for tiny objects has thousands, whose no-object terms push the shared sigmoid into saturation,
    where the squared error's gradient (``(C - C*) C (1 - C)``) vanishes for the few object terms and
    confidence stops learning. Cross-entropy's gradient on the logit, ``C - C*``, does not vanish.
    - ``loss_cls``   = lambda_cls * sum over cells holding an object of sum_c (p(c) - p*(c))^2
    Each term is divided by the number of images and multiplied by ``loss_weight``.
    """

    def __init__(self, lambda_coord: float = 5.0, lambda_noobj: float = 0.5, lambda_obj: float = 1.0,
                 lambda_cls: float = 1.0, iou_target: bool = True, conf_loss: str = 'bce',
                 loss_weight: float = 1.0):
        super().__init__()
        self.lambda_coord = lambda_coord
        self.lambda_noobj = lambda_noobj
        self.lambda_obj = lambda_obj
        self.lambda_cls = lambda_cls
        self.iou_target = iou_target
        if conf_loss not in ('sse', 'bce'):
            raise ValueError(f"conf_loss must be 'sse' or 'bce', got {conf_loss!r}")
        self.conf_loss = conf_loss
        self.loss_weight = loss_weight

    def forward(self, pred_boxes: torch.Tensor, pred_conf: torch.Tensor, pred_cls: torch.Tensor,
                box_targets: torch.Tensor, pos: torch.Tensor, ious: torch.Tensor,
                cls_targets: torch.Tensor, num_imgs: int) -> dict:
        """Args (P predictors and M cells over the whole batch):
            pred_boxes: ``[P, 4]`` (x, y, sqrt w, sqrt h) in the head's encoding, all in [0, 1].
            pred_conf: ``[P]`` confidences in [0, 1]; pred_cls: ``[M, C]`` class probabilities.
            box_targets: ``[P, 4]`` encoded targets (read only where ``pos``); pos: bool ``[P]``.
            ious: ``[P]`` IoU of each responsible predictor's box with its ground truth.
            cls_targets: ``[M, C]`` class distributions, all zero in cells without an object.
        """
        scale = self.loss_weight / max(num_imgs, 1)
        diff = (pred_boxes[pos] - box_targets[pos]) ** 2
        conf_target = ious[pos].detach() if self.iou_target else torch.ones_like(pred_conf[pos])
        obj_cells = cls_targets.sum(dim=1) > 0
        return dict(
            loss_xy=self.lambda_coord * scale * diff[:, :2].sum(),
            loss_wh=self.lambda_coord * scale * diff[:, 2:].sum(),
            loss_obj=self.lambda_obj * scale * self._conf_error(pred_conf[pos], conf_target),
            loss_noobj=self.lambda_noobj * scale * self._conf_error(pred_conf[~pos], 0.0),
            loss_cls=self.lambda_cls * scale * ((pred_cls[obj_cells] - cls_targets[obj_cells]) ** 2).sum(),
        )

    def _conf_error(self, conf: torch.Tensor, target) -> torch.Tensor:
        """Summed error of confidences ``conf`` ``[K]`` in (0, 1) against ``target`` (``[K]`` or a number)."""
        target = torch.as_tensor(target, dtype=conf.dtype, device=conf.device).expand_as(conf)
        if self.conf_loss == 'sse':
            return ((conf - target) ** 2).sum()
        return F.binary_cross_entropy(conf.clamp(1e-6, 1 - 1e-6), target, reduction='sum')
