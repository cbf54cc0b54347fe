# centernet_mobilenetv2_fpn_416_bccd_recipe.py (TTFNet's box regression, the recipe's augmentation) on an
# ImageNet-pretrained EfficientNet-Lite0 (_base_/models/pretrained_backbones.py), fine-tuned with the
# backbone at a quarter of the head's learning rate (adamw_finetune_6e.py), for 9 epochs.
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/bccd_416.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True, out_indices=(1, 2, 3, 4)),
    neck=dict(out_channels=64),
    head=dict(num_classes=3, feat_channels=64))
train_dataloader = dict(dataset=dict(pipeline=_base_.recipe_pipeline))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
train_cfg = dict(max_epochs=9, val_interval=9)
