# YOLO v1 (_base_/models/yolo_v1.py) on BCCD blood-cell images letterboxed to 416x416, grid at stride 8
# (52x52 cells). Trained from scratch in fp32 on trainval (292 images), evaluated on test (72).
_base_ = ['_base_/default_runtime.py', '_base_/models/yolo_v1.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']
model = dict(data_preprocessor=dict(channels_last=False),
             head=dict(num_classes=3, bbox_coder=dict(wh_norm=416)))
