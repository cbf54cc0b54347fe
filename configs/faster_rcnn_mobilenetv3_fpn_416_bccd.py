# Faster R-CNN (_base_/models/faster_rcnn.py, torchvision's fasterrcnn_mobilenet_v3_large_320_fpn) on BCCD
# blood cells at 416x416: the model of faster_rcnn_mobilenetv3_fpn_320_shapes.py, which the torchvision
# equality test pins, with three classes.
_base_ = ['_base_/default_runtime.py', '_base_/models/faster_rcnn.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']
model = dict(roi_head=dict(num_classes=3))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
