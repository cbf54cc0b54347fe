# YOLO v1 on BCCD blood-cell images (VOC layout; RBC, WBC, Platelets), letterboxed to 416x416, grid at
# stride 8 (52x52 cells). Trained from scratch on trainval (292 images), evaluated on test (72).
_base_ = ['_base_/default_runtime.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(2, 3, 4)),
    neck=dict(type='FPN', out_channels=96, num_outs=3),
    head=dict(type='YOLOV1Head', num_classes=3, in_index=0, num_boxes=2, feat_channels=128, num_convs=2,
              loss=dict(type='YOLOV1Loss', lambda_coord=5.0, lambda_noobj=0.5, conf_loss='bce'),
              score_thr=0.01, iou_thr=0.5, max_per_img=100),
)
