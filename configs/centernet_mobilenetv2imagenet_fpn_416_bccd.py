# centernet_mobilenetv2_fpn_416_bccd_recipe.py (TTFNet's box regression, the recipe's augmentation) on
# torchvision's ImageNet MobileNetV2 (width 1.0, 'torchvision://mobilenet_v2',
# _base_/models/pretrained_backbones.py), fine-tuned as centernet_efficientnetlite0_fpn_416_bccd.py.
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/bccd_416.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    backbone=dict(_base_.mobilenet_v2, _delete_=True, out_indices=(1, 2, 3, 4)),
    neck=dict(out_channels=64),
    head=dict(num_classes=3, feat_channels=64))
train_dataloader = dict(dataset=dict(pipeline=_base_.recipe_pipeline))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
