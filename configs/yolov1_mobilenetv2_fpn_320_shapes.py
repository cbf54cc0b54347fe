# YOLO v1 (Redmon et al. 2016) on the built-in shapes data: MobileNetV2 + FPN, grid at stride 8
# (40x40 cells at 320x320) so that 8-32 px objects get cells of their own. Trained from scratch.
# The main job: `python tools/train.py configs/yolo_v1.py` (a link to this file).
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(2, 3, 4)),
    neck=dict(type='FPN', out_channels=96, num_outs=3),
    head=dict(type='YOLOV1Head', num_classes=5, in_index=0, num_boxes=2, feat_channels=128, num_convs=2,
              # The paper's squared-error confidence stalls with 3200 predictors (see YOLOV1Loss);
              # lambda_coord 5, lambda_noobj 0.5 and sqrt(w), sqrt(h) are the paper's.
              loss=dict(type='YOLOV1Loss', lambda_coord=5.0, lambda_noobj=0.5, conf_loss='bce'),
              score_thr=0.01, iou_thr=0.5, max_per_img=100),
)
