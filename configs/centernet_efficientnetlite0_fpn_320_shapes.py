# CenterNet with TTFNet's box regression (_base_/models/ttfnet.py, stride 4) on the ImageNet-pretrained
# EfficientNet-Lite0 (_base_/models/pretrained_backbones.py) on the shapes data, fine-tuned
# (adamw_finetune_6e.py): the CenterNet row beside the pretrained RT-DETR
# (rtdetr_efficientnetlite0_320_shapes.py) in docs/models/detr.md, same backbone and budget. Neck and head
# as centernet_efficientnetlite0_fpn_416_bccd.py.
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/shapes_320.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True, out_indices=(1, 2, 3, 4)),
    neck=dict(out_channels=64),
    head=dict(num_classes=5, feat_channels=64))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
