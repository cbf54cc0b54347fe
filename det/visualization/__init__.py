from .draw import DISPLAY_SIZE, draw_boxes, draw_detections, gt_beside_pred, scale_for_display

__all__ = ['DISPLAY_SIZE', 'draw_boxes', 'draw_detections', 'gt_beside_pred', 'scale_for_display']
