# YOLO v1 on BCCD (as yolov1_mobilenetv2_fpn_416_bccd.py) on an ImageNet-pretrained EfficientNet-Lite0
# (_base_/models/pretrained_backbones.py), fine-tuned in fp32 (adamw_finetune_6e.py).
_base_ = ['_base_/default_runtime.py', '_base_/models/yolo_v1.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/bccd_416.py', '_base_/schedules/adamw_finetune_6e.py']
model = dict(
    data_preprocessor=dict(_base_.lite_input, channels_last=False),
    backbone=dict(_base_.efficientnet_lite0, _delete_=True),  # strides 8/16/32: 40/112/320 channels
    head=dict(num_classes=3, bbox_coder=dict(wh_norm=416)))
