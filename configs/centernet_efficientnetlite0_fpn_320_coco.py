# centernet_efficientnetlite0_fpn_416_bccd.py for a COCO json of one's own (_base_/datasets/coco_detection.py,
# 320x320, flips left-right only): the classes and the head's num_classes come from the data. Train with
#   python tools/train.py configs/centernet_efficientnetlite0_fpn_320_coco.py --data-root DIR
# (docs/own_data.md: COCO, Roboflow, VOC and YOLO folder layouts; --train-ann / --val-ann name the jsons).
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/coco_detection.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True, out_indices=(1, 2, 3, 4)),
    neck=dict(out_channels=64),
    head=dict(feat_channels=64))
train_dataloader = dict(dataset=dict(pipeline=_base_.recipe_pipeline))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
