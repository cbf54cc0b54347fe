from .draw import draw_boxes, gt_beside_pred

__all__ = ['draw_boxes', 'gt_beside_pred']
