# CenterNet on the built-in shapes data with the issue-13 training recipe that measured best: random
# affine, HSV jitter and flips, and TTFNet's GIoU box regression on Gaussian-weighted pixels around each
# centre. Same data, backbone, batch, speed settings and 6-epoch schedule as
# centernet_mobilenetv2_fpn_320_shapes.py, so the two compare directly. Mosaic + MixUp on top of this is
# centernet_mobilenetv2_fpn_320_shapes_mosaic.py: they lowered AP here and on BCCD (README).
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
    # TTFNet box regression: 4 side distances per pixel, GIoU on decoded boxes, elliptical Gaussians.
    head=dict(type='TTFNetHead', num_classes=5, in_index=0, feat_channels=48,
              target_generator=dict(type='TTFNetTargetGenerator', alpha=0.54, beta=0.54),
              loss_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0),
              loss_bbox=dict(type='GIoULoss', loss_weight=5.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)

img_scale = (320, 320)
# Affine and HSV on the original image, then the letterbox of the val data; boxes left with less than
# 20% of their area in view are dropped.
albu = dict(type='Albu', min_visibility=0.2, transforms=[
    dict(type='Affine', scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), fill=114, p=0.5),
    dict(type='HueSaturationValue', hue_shift_limit=10, sat_shift_limit=30, val_shift_limit=20, p=0.5),
    dict(type='HorizontalFlip', p=0.5)])
train_pipeline = [
    dict(type='LoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations'),
    albu,
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# bf16 autocast + channels-last, as the main job (weights, gradients and optimizer state stay fp32).
optim_wrapper = dict(type='AutocastOptimWrapper')
