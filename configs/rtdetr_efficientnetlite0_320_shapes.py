# rtdetr_mobilenetv2_320_shapes.py (HybridEncoder neck, two-stage queries, deformable 3-layer decoder,
# denoising, varifocal loss, auxiliary YOLO v1 head) on an ImageNet-pretrained EfficientNet-Lite0
# (_base_/models/pretrained_backbones.py) read at strides 8 and 16, with the input normalisation of its
# weights and the backbone at 0.1x the learning rate, as RT-DETR fine-tunes its backbone. 4 epochs:
# 12 min 40 s with the data generated on a fresh clone, under twice the main job's 7 min 28 s on the same
# machine (docs/models/detr.md); AP50 passes 0.90 after epoch 2.
_base_ = ['rtdetr_mobilenetv2_320_shapes.py', '_base_/models/pretrained_backbones.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True, out_indices=(2, 3)))     # 40 / 112 channels
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
train_cfg = dict(max_epochs=4)
