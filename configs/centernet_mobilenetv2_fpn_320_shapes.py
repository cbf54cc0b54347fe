# CenterNet ("Objects as Points", Zhou et al. 2019) on the built-in shapes data: MobileNetV2 + FPN with
# its finest level at stride 4, where the heatmap, size and offset branches run. Trained from scratch,
# on the same data, backbone, batch and wall-clock budget as configs/yolo_v1.py.
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32,
                           channels_last=True),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(1, 2, 3, 4)),
    # Reads the finest (stride-4) FPN level only, so only its output conv is built.
    neck=dict(type='FPN', out_channels=48, out_indices=(0,)),
    head=dict(type='CenterNetHead', num_classes=5, in_index=0, feat_channels=48,
              loss_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0),
              loss_wh=dict(type='L1Loss', loss_weight=0.1),
              loss_offset=dict(type='L1Loss', loss_weight=1.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)

# bf16 autocast + channels-last, as the main job (weights, gradients and optimizer state stay fp32).
optim_wrapper = dict(type='AutocastOptimWrapper')
# Validation after epochs 2, 4 and 6: each one costs about 4 s of a 76 s epoch, and the first ones
# say little (same final AP, 4% less wall time, README).
train_cfg = dict(val_interval=2)
