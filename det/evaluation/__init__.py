from .coco_eval import (
    DEFAULT_TIERS,
    CocoEvalResult,
    complete_coco_gt,
    evaluate_coco,
    format_per_class_table,
    format_report,
    format_tier_table,
    load_coco_gt,
)
from .coco_metric import CocoMetric

__all__ = ['DEFAULT_TIERS', 'CocoEvalResult', 'CocoMetric', 'complete_coco_gt', 'evaluate_coco',
           'format_per_class_table', 'format_report', 'format_tier_table', 'load_coco_gt']
