# The shapes RT-DETR (rtdetr_efficientnetlite0_320_shapes.py, whose bases explain each part) on BCCD at
# 416x416: the ImageNet-pretrained EfficientNet-Lite0 read at strides 8 and 16 (0.1x the learning rate),
# the HybridEncoder neck (attention on the 26x26 stride-16 map only), two-stage selection of 100 queries
# (BCCD images hold up to about 40 cells), a 3-layer deformable decoder, denoising, the varifocal loss
# and the auxiliary YOLO v1 head. Trained as the shapes DETR (AdamW 5e-4, clipping 0.1, bf16), 10 epochs:
# 6 min 15 s for AP 0.476 / AP50 0.746, below the pretrained CenterNet's 0.548 in 5 min 50 s (README).
_base_ = ['_base_/default_runtime.py', '_base_/models/detr.py', '_base_/models/pretrained_backbones.py',
          '_base_/datasets/bccd_416.py', '_base_/schedules/adamw_cosine_6e.py']
model = dict(
    data_preprocessor=_base_.lite_input,
    backbone=dict(_base_.efficientnet_lite0, _delete_=True, out_indices=(2, 3)),     # 40 / 112 channels
    neck=dict(type='HybridEncoder', out_channels=128, ffn_dims=512, dropout=0.0, expansion=0.5),
    encoder=dict(num_layers=0),
    decoder=dict(cross_attention='deformable'),
    query_type='encoder',
    proposal_size=0.1,
    denoising=dict(),
    aux_head=dict(type='YOLOV1Head', num_classes=3, feat_channels=128,
                  bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=416)),
    head=dict(num_classes=3, matcher=dict(type='HungarianMatcher', class_cost=2.0, class_cost_type='focal'),
              loss_cls=dict(type='VarifocalLoss')),
)
optim_wrapper = dict(type='AutocastOptimWrapper', optimizer=dict(lr=5e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
train_cfg = dict(max_epochs=10, val_interval=10)
