# The main job's YOLO v1 (yolov1_mobilenetv2_fpn_320_shapes.py) on the ImageNet-pretrained
# EfficientNet-Lite0 (_base_/models/pretrained_backbones.py; strides 8/16/32) with the input normalisation
# of its weights, fine-tuned (adamw_finetune_6e.py): the YOLO v1 row beside the pretrained RT-DETR
# (rtdetr_efficientnetlite0_320_shapes.py) in docs/models/detr.md, same backbone and budget.
_base_ = ['_base_/default_runtime.py', '_base_/models/yolo_v1.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/shapes_320.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True),
    head=dict(num_classes=5))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
