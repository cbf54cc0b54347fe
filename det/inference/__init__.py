"""Multi-view inference: image pyramids, flips and slices, each view predicted by the same detector and
mapped back to original pixels, then merged into one set of detections by one merge module.
Importing it registers :class:`TTADetector` in det's MODELS."""
from .merge import METHODS, merge_detections, nms, soft_nms, weighted_boxes_fusion
from .slicing import slice_grid, sliced_predict
from .tta import TTADetector, multi_view_predict, parse_tta_options, pyramid_views, tta_config
from .views import View, predict_views, split_test_pipeline

__all__ = ['METHODS', 'TTADetector', 'View', 'merge_detections', 'multi_view_predict', 'nms',
           'parse_tta_options', 'predict_views', 'pyramid_views', 'slice_grid', 'sliced_predict', 'soft_nms',
           'split_test_pipeline', 'tta_config', 'weighted_boxes_fusion']
