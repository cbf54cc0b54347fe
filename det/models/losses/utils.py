"""The one reduction of every loss in det/models/losses (MMDetection's ``weight_reduce_loss``), and the
input check of the IoU-target classification losses."""
import torch

REDUCTIONS = ('none', 'mean', 'sum')


def weight_reduce_loss(loss: torch.Tensor, weight=None, reduction: str = 'mean', avg_factor=None):
    """Elementwise ``loss`` times ``weight`` (broadcast; None: 1), then reduced.

    ``reduction``: ``'none'`` (the weighted elements), ``'sum'``, or ``'mean'``: without ``avg_factor``
    the mean over the elements, with it ``sum / avg_factor`` (the number of objects, sampled anchors,
    ... a head normalises by). An empty ``loss`` with an ``avg_factor`` gives an exact 0 that is still
    part of the autograd graph, as a box loss without positives must. Unlike MMDetection, no eps is
    added to ``avg_factor``: callers pass at least 1, and the losses stay equal to torchvision's to the
    last bit.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return loss if reduction == 'none' else loss.mean() if reduction == 'mean' else loss.sum()
    if reduction != 'mean':
        raise ValueError(f"avg_factor can only be used with reduction='mean', got {reduction!r}")
    return loss.sum() / avg_factor


def check_iou_targets(loss: str, pred: torch.Tensor, target: torch.Tensor, dims=(2,)):
    """Raise a ValueError naming ``loss`` unless ``pred`` (logits) and ``target`` (IoUs, 0 for negatives)
    have the same shape of one of ``dims`` dimensions (``[N, C]``, or ``[B, Q, C]`` where 3 is allowed)
    and no target is negative (a GIoU passed by mistake; a fractional power of it would be NaN). Targets
    a rounding above 1 (IoUs computed under bf16 autocast) pass."""
    shapes = ' or '.join({2: '[N, C]', 3: '[B, Q, C]'}[d] for d in dims)
    if pred.dim() not in dims or target.shape != pred.shape:
        raise ValueError(f'{loss}: pred and target must both be {shapes}, got {tuple(pred.shape)} and '
                         f'{tuple(target.shape)}')
    if target.numel() and target.min() < 0:
        raise ValueError(f'{loss} targets are IoUs in [0, 1], got a minimum of {target.min().item():.3g}')
