# DETR as in the paper (Carion et al., ECCV 2020): ResNet-50 (frozen BatchNorm, stem and layer1 frozen)
# → 1x1 projection to 256 → 6 encoder + 6 decoder post-norm layers (8 heads, FFN 2048, dropout 0.1) →
# 100 learned object queries → class (C + 1) and 3-layer box heads; Hungarian matching with costs
# 1 / 5 / 2, losses CE (no-object 0.1) + 5 L1 + 2 GIoU, auxiliary losses after every decoder layer,
# AdamW 1e-4 (backbone 1e-5), weight decay 1e-4, gradient clipping 0.1, 500 epochs with a x0.1 step at
# 400. The architecture is tested equal to transformers' DetrForObjectDetection
# (tests/models/detr/test_detr_reference.py). Set on the shapes data at 320x320 so it runs anywhere; the
# paper trains on COCO at 800-1333 px from an ImageNet ResNet-50 (pass it with
# backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)). Not trained on this CPU machine.
_base_ = ['_base_/default_runtime.py', '_base_/models/detr.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(
    data_preprocessor=dict(channels_last=False),
    backbone=dict(_delete_=True, type='TorchvisionBackbone', out_indices=(3,), frozen_stages=0,
                  return_nodes=['layer1', 'layer2', 'layer3', 'layer4'], norm_layer='FrozenBatchNorm2d'),
    embed_dims=256,
    encoder=dict(num_layers=6, ffn_dims=2048, dropout=0.1),
    decoder=dict(num_layers=6, ffn_dims=2048, dropout=0.1),
    head=dict(num_classes=5),
)
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=1e-4), clip_grad=dict(max_norm=0.1),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[400], gamma=0.1)]
train_cfg = dict(max_epochs=500, val_interval=10)
