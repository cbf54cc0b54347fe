# CenterNet on the built-in shapes data with the issue-13 training recipe: Mosaic + MixUp (off for the
# last epoch), random affine and HSV jitter, and TTFNet's GIoU box regression on Gaussian-weighted pixels
# around each centre. Same data, backbone, batch and 6-epoch schedule as
# centernet_mobilenetv2_fpn_320_shapes.py, so the two compare directly. Measured (README): in 6 epochs it
# loses to that config (AP 0.498 vs 0.556); mixing pays off over longer schedules. Weight EMA
# (EMAHook, momentum 0.002) is left out: over 1,500 steps it kept the early weights and cut AP to 0.238.
_base_ = ['_base_/default_runtime.py', '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(1, 2, 3, 4)),
    # Reads the finest (stride-4) FPN level only, so only its output conv is built.
    neck=dict(type='FPN', out_channels=48, out_indices=(0,)),
    # TTFNet box regression: 4 side distances per pixel, GIoU on decoded boxes, elliptical Gaussians.
    head=dict(type='CenterNetHead', num_classes=5, in_index=0, feat_channels=48,
              target_generator=dict(type='TTFNetTargetGenerator', alpha=0.54, beta=0.54),
              loss_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0),
              loss_bbox=dict(type='GIoULoss', loss_weight=5.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)

data_root = 'data/shapes'
img_scale = (320, 320)
shapes = dict(type='ShapesDataset', data_root=data_root)
# Per image, inside the wrapped dataset: load only. Mosaic and MixUp then fetch more images through it.
load_pipeline = [
    dict(type='LoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations'),
]
# The shapes data holds many 8-16 px objects: Mosaic keeps each image's scale around 1 (0.75-1.25) so
# they do not shrink below what the stride-4 heatmap resolves.
mix_pipeline = [
    dict(type='Mosaic', img_scale=img_scale, center_ratio_range=(0.25, 0.75), scale_range=(0.75, 1.25),
         min_bbox_size=2.0, min_area_ratio=0.2),
    dict(type='MixUp', ratio_range=(0.75, 1.25), flip_ratio=0.5, alpha=32.0, prob=0.3),
    dict(type='Albu', min_visibility=0.2, transforms=[
        dict(type='Affine', scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), fill=114, p=0.5),
        dict(type='HueSaturationValue', hue_shift_limit=10, sat_shift_limit=30, val_shift_limit=20, p=0.5),
        dict(type='HorizontalFlip', p=0.5)]),
    # Mixed samples are already img_scale; unmixed ones (last epoch) are letterboxed like the val data.
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', on_error='raise'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiImageMixDataset', pipeline=mix_pipeline,
                 dataset=dict(shapes, split='train', pipeline=load_pipeline)))
val_dataloader = dict(
    batch_size=16, num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(shapes, split='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
# No ann_file: the metric scores against the val dataset's own json, wherever data_root points.
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator

# Mixing off for the last epoch. Warm-up and the AdamW + cosine schedule come from the shared schedule.
custom_hooks = [dict(type='NoMixHook', num_last_epochs=1, skip_type_keys=('Mosaic', 'MixUp'))]
