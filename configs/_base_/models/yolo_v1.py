# YOLO v1 (Redmon et al. 2016) on MobileNetV2-0.5 + FPN, grid at stride 8 (40x40 cells at 320x320) so
# that 8-32 px objects get cells of their own. Trained from scratch.
# Losses: the head's defaults, the paper's eq. 3 term by term (lambda_coord 5, lambda_noobj 0.5, sqrt(w),
# sqrt(h)) with cross-entropy on the confidence (see YOLOV1Head); test_cfg: the head's defaults.
_base_ = ['data_preprocessor.py']
model = dict(
    type='SingleStageDetector',
    backbone=dict(type='MobileNetV2', widen_factor=0.5),
    # Reads the finest FPN level only, so only its output conv is built (every parameter trains).
    neck=dict(type='FPN', out_channels=96, out_indices=(0,)),
    head=dict(type='YOLOV1Head', feat_channels=128,
              # Box sizes are encoded relative to the training input (320x320), however a batch is padded.
              bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=320)),
)
