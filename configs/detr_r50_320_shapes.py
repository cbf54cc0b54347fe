# DETR as in the paper (Carion et al., ECCV 2020): ResNet-50 (frozen BatchNorm, stem and layer1 frozen)
# → 1x1 projection to 256 → 6 encoder + 6 decoder post-norm layers (8 heads, FFN 2048, dropout 0.1) →
# 100 learned object queries → class (C + 1) and 3-layer box heads; Hungarian matching with costs
# 1 / 5 / 2, losses CE (no-object 0.1) + 5 L1 + 2 GIoU, auxiliary losses after every decoder layer,
# AdamW 1e-4 (backbone 1e-5), weight decay 1e-4, gradient clipping 0.1, 500 epochs with a x0.1 step at
# 400. The architecture is tested equal to transformers' DetrForObjectDetection
# (tests/models/detr/test_detr_reference.py). Set on the shapes data at 320x320 so it runs anywhere; the
# paper trains on COCO at 800-1333 px from an ImageNet ResNet-50 (pass it with
# backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)). Not trained on this CPU machine.
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py']

model = dict(
    type='DETR',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='TorchvisionBackbone', name='resnet50',
                  return_nodes=['layer1', 'layer2', 'layer3', 'layer4'], out_indices=(3,), frozen_stages=0,
                  norm_layer='FrozenBatchNorm2d'),
    num_queries=100,
    embed_dims=256,
    positional_encoding=dict(temperature=10000, normalize=True),
    encoder=dict(num_layers=6, num_heads=8, ffn_dims=2048, dropout=0.1),
    decoder=dict(num_layers=6, num_heads=8, ffn_dims=2048, dropout=0.1),
    query_type='embedding',
    head=dict(type='DETRHead', num_classes=5, num_reg_layers=3, bg_cls_weight=0.1,
              matcher=dict(type='HungarianMatcher', class_cost=1.0, bbox_cost=5.0, giou_cost=2.0),
              loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
              loss_bbox=dict(type='L1Loss', loss_weight=5.0),
              loss_iou=dict(type='GIoULoss', loss_weight=2.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)
max_epochs = 500
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1, norm_type=2),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[400], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
