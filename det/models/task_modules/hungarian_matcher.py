"""DETR's bipartite matching (Carion et al., ECCV 2020, sec. 3.1): every ground-truth box gets exactly one
query, the one-to-one assignment of least total cost, found by ``scipy.optimize.linear_sum_assignment``."""
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_convert, generalized_box_iou

from det.registry import TASK_UTILS


@TASK_UTILS.register_module()
class HungarianMatcher:
    """Matches queries to ground truths by ``class_cost * C_cls + bbox_cost * C_L1 + giou_cost * C_giou``.

    - ``C_cls = -softmax(logits)[label]`` (the paper's probability, not the log-probability, so the class
      term is on the same scale as the box terms), or, with ``class_cost_type='focal'`` for heads with
      per-class sigmoid scores (Deformable DETR, DINO, RT-DETR), the focal loss of calling the query
      positive for the label minus that of calling it negative:
      ``alpha (1-p)^gamma (-log p) - (1-alpha) p^gamma (-log(1-p))``, ``p = sigmoid(logits)[label]``;
    - ``C_L1`` the L1 distance of normalised (cx, cy, w, h) boxes;
    - ``C_giou = -GIoU`` of the same boxes as xyxy (normalised, as the reference).

    With ``iou_modulation = beta > 0`` (Stable-DINO's position-modulated cost, Liu et al. 2023, 0.5 in its
    configs) the class probability ``p`` in ``C_cls`` becomes ``p * u^beta``, ``u = (GIoU + 1) / 2`` of
    the query's box with that ground truth, scaled per image so that its largest ``u`` is 1: a query
    with a confident score but a misplaced box costs more than one that is placed well.

    The cost matrices of the whole batch come from one ``[B*Q, sum(G_i)]`` computation; the assignment runs
    per image on CPU. An image without ground truth matches nothing; more ground truths than queries is an
    error (some object could not be predicted). Defaults are the paper's weights (1, 5, 2).
    """

    CLASS_COST_TYPES = ('probability', 'focal')

    def __init__(self, class_cost: float = 1.0, bbox_cost: float = 5.0, giou_cost: float = 2.0,
                 class_cost_type: str = 'probability', focal_alpha: float = 0.25, focal_gamma: float = 2.0,
                 iou_modulation: float = 0.0):
        if class_cost == 0 and bbox_cost == 0 and giou_cost == 0:
            raise ValueError('HungarianMatcher needs at least one non-zero cost weight')
        if class_cost_type not in self.CLASS_COST_TYPES:
            raise ValueError(f'class_cost_type must be one of {self.CLASS_COST_TYPES}, '
                             f'got {class_cost_type!r}')
        self.class_cost, self.bbox_cost, self.giou_cost = class_cost, bbox_cost, giou_cost
        if iou_modulation < 0:
            raise ValueError(f'iou_modulation must be >= 0 (0 switches it off), got {iou_modulation}')
        self.class_cost_type, self.focal_alpha, self.focal_gamma = class_cost_type, focal_alpha, focal_gamma
        self.iou_modulation = iou_modulation

    def _class_cost(self, cls_logits: torch.Tensor, labels: torch.Tensor, modulation=None) -> torch.Tensor:
        """``[N, K]`` logits, ``[G]`` labels -> ``[N, G]`` cost of giving query n ground truth g's class;
        ``modulation`` ``[N, G]`` multiplies the probabilities first."""
        if self.class_cost_type == 'probability':
            prob = cls_logits.softmax(-1)[:, labels]
            return -prob if modulation is None else -prob * modulation
        prob = cls_logits[:, labels].sigmoid()
        prob = prob if modulation is None else prob * modulation
        positive = self.focal_alpha * (1 - prob).pow(self.focal_gamma) * -(prob + 1e-8).log()
        negative = (1 - self.focal_alpha) * prob.pow(self.focal_gamma) * -(1 - prob + 1e-8).log()
        return positive - negative

    def _position_modulation(self, giou: torch.Tensor, batch: int, sizes: list) -> torch.Tensor:
        """``[B*Q, G]`` GIoU -> ``u^beta``, ``u = (GIoU + 1) / 2`` divided by its maximum over the image's own
        (query, ground truth) block (only those entries are used: the assignment runs per image)."""
        u = ((giou + 1) / 2).view(batch, -1, giou.shape[-1])
        peaks = torch.stack([block[i].max() if block.shape[-1] else u.new_ones(())
                             for i, block in enumerate(u.split(sizes, dim=-1))])
        scale = (1 / peaks.clamp(min=1e-8)).clamp(min=1)
        return (u * scale[:, None, None]).flatten(0, 1).pow(self.iou_modulation)

    @torch.no_grad()
    def __call__(self, cls_logits: torch.Tensor, pred_boxes: torch.Tensor, gt_labels: list,
                 gt_boxes: list) -> list:
        """Args:
            cls_logits: ``[B, Q, C + 1]`` class logits, the last class being "no object" (``[B, Q, C]``
                sigmoid logits with ``class_cost_type='focal'``).
            pred_boxes: ``[B, Q, 4]`` normalised (cx, cy, w, h) in [0, 1].
            gt_labels: ``B`` long tensors ``[G_i]`` in ``0..C-1``.
            gt_boxes: ``B`` tensors ``[G_i, 4]`` normalised (cx, cy, w, h).

        Returns:
            ``B`` pairs ``(query_inds, gt_inds)`` of long tensors ``[min(Q, G_i)]`` on ``cls_logits``'s
            device, sorted by query index: query ``query_inds[k]`` predicts ground truth ``gt_inds[k]``.
        """
        batch, num_queries = cls_logits.shape[:2]
        if len(gt_labels) != batch or len(gt_boxes) != batch:
            raise ValueError(f'{batch} images of predictions but {len(gt_labels)} label and '
                             f'{len(gt_boxes)} box lists')
        sizes = [len(labels) for labels in gt_labels]
        too_many = [(i, n) for i, n in enumerate(sizes) if n > num_queries]
        if too_many:
            raise ValueError(f'images (index, boxes) {too_many} hold more ground-truth boxes than the '
                             f'{num_queries} queries; raise num_queries to at least {max(sizes)}')
        device = cls_logits.device
        empty = torch.empty(0, dtype=torch.long, device=device)
        if sum(sizes) == 0:
            return [(empty, empty) for _ in range(batch)]

        boxes = pred_boxes.flatten(0, 1).float()                                  # [B*Q, 4]
        labels = torch.cat(list(gt_labels)).to(device)
        targets = torch.cat(list(gt_boxes)).to(device=device, dtype=boxes.dtype)  # [G, 4]
        giou = generalized_box_iou(box_convert(boxes, 'cxcywh', 'xyxy'),
                                   box_convert(targets, 'cxcywh', 'xyxy'))                  # [B*Q, G]
        modulation = self._position_modulation(giou, batch, sizes) if self.iou_modulation else None
        cost = (self.class_cost * self._class_cost(cls_logits.flatten(0, 1).float(), labels, modulation)
                + self.bbox_cost * torch.cdist(boxes, targets, p=1) - self.giou_cost * giou)
        if not torch.isfinite(cost).all():
            raise ValueError('the matching cost holds NaN or inf: predictions or ground-truth boxes are '
                             'not finite (normalised cx, cy, w, h expected)')
        cost = cost.view(batch, num_queries, -1).cpu()
        matches = []
        for i, block in enumerate(cost.split(sizes, dim=-1)):
            rows, cols = linear_sum_assignment(block[i].numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.long, device=device),
                            torch.as_tensor(cols, dtype=torch.long, device=device)))
        return matches
