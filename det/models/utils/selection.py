"""The one post-processing step of every head and of multi-view merging: candidates (box, score, label)
-> detections, read from one ``test_cfg`` vocabulary, with torchvision's ``batched_nms`` as the kernel.

``test_cfg`` keys (each ``None`` switches its step off):

- ``topk``: candidates kept by score before anything else (the pre-NMS top-k);
- ``score_thr``: a candidate is kept when its score is **strictly above** it;
- ``nms``: ``dict(iou_thr=...)`` for NMS within each label (a box is dropped when a better box of its
  label overlaps it with IoU > ``iou_thr``), or ``None`` for none;
- ``max_per_img``: the best detections returned.

One threshold rule for all callers. The exclusive ``>`` is torchvision's RoI head rule (``scores >
box_score_thresh``); torchvision's RPN keeps ``scores >= score_thresh`` with threshold 0.0, where the two
rules differ only for an objectness of exactly 0, a sigmoid that underflowed (logit below about -88 in
float32), so det's RPN matches torchvision's proposals whenever the logits are above that. Dense heads
rely on ``>``: CenterNet's non-peak pixels score exactly 0 and ``score_thr=0.0`` removes them.
"""
import torch
from mmengine.structures import InstanceData
from torchvision.ops import batched_nms, remove_small_boxes

TEST_CFG_KEYS = ('score_thr', 'nms', 'max_per_img', 'topk')


def build_selection_cfg(cfg, defaults: dict, name: str = 'test_cfg') -> dict:
    """``defaults`` updated with ``cfg`` (a head's ``test_cfg``, or the RPN's ``train_cfg``, named by
    ``name`` in errors); unknown keys or a malformed ``nms`` are errors."""
    merged = dict(defaults)
    unknown = sorted(set(cfg or {}) - set(TEST_CFG_KEYS))
    if unknown:
        raise KeyError(f'{name} keys {unknown} are not known; a head reads {list(TEST_CFG_KEYS)}')
    merged.update(cfg or {})
    if merged['nms'] is not None and set(merged['nms']) != {'iou_thr'}:
        raise ValueError(f"{name}['nms'] must be None or dict(iou_thr=...), got {merged['nms']!r}")
    return merged


def select_detections(bboxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor = None, *,
                      score_thr=None, nms=None, max_per_img=None, topk=None,
                      min_bbox_size: float = None) -> InstanceData:
    """Candidates of one image -> ``InstanceData(bboxes [K, 4], scores [K], labels [K])``, best first.

    Two ways to give the candidates:

    - ``labels=None``: ``scores [P, C]`` of P positions (anchors, heatmap pixels, queries, RoIs) and
      ``bboxes [P, 4]`` shared by the classes or ``[P, C, 4]`` one per class; every (position, class)
      pair is a candidate labelled with its class, in (position, class) order;
    - ``labels [N]``: one candidate per row of ``bboxes [N, 4]`` and ``scores [N]`` (views to merge; the
      RPN passes each proposal's level, so NMS runs within a level).

    Steps, in order: the ``topk`` best candidates (kept in their input order, so that NMS breaks exact
    ties as the caller's order does), ``score_thr``, boxes narrower or lower than ``min_bbox_size``
    dropped (torchvision's ``remove_small_boxes``), ``nms``, the ``max_per_img`` best.
    """
    if labels is None:
        num_classes = scores.shape[1]
        scores = scores.flatten()
        index = torch.arange(scores.numel(), device=scores.device)
        if topk is not None and scores.numel() > topk:
            index = scores.topk(topk).indices.sort().values
            scores = scores[index]
        positions, labels = index // num_classes, index % num_classes
        bboxes = bboxes[positions] if bboxes.dim() == 2 else bboxes[positions, labels]
    elif topk is not None and scores.numel() > topk:
        index = scores.topk(topk).indices.sort().values
        bboxes, scores, labels = bboxes[index], scores[index], labels[index]
    if score_thr is not None:
        keep = scores > score_thr
        bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
    if min_bbox_size is not None:
        keep = remove_small_boxes(bboxes, min_bbox_size)
        bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
    if nms is not None:
        keep = batched_nms(bboxes, scores, labels, nms['iou_thr'])
    else:
        keep = scores.argsort(descending=True, stable=True)
    keep = keep[:max_per_img]
    return InstanceData(bboxes=bboxes[keep], scores=scores[keep], labels=labels[keep])
