from .coco_eval import (
    DEFAULT_TIERS,
    CocoEvalResult,
    evaluate_coco,
    format_per_class_table,
    format_tier_table,
    load_coco_gt,
)
from .coco_metric import CocoMetric

__all__ = ['DEFAULT_TIERS', 'CocoEvalResult', 'CocoMetric', 'evaluate_coco', 'format_per_class_table',
           'format_tier_table', 'load_coco_gt']
