# RT-DETR's lighter encoder (Zhao et al., CVPR 2024) on the best small DETR
# (configs/co_deformable_detr_mobilenetv2_320_shapes.py, whose comments explain the other switches): the
# neck is a HybridEncoder (AIFI: one transformer encoder layer with 2-D sine positions on the stride-16
# map only, 400 tokens; CCFM: convolutional top-down / bottom-up fusion with CSP-RepVGG blocks) that
# gives 128 channels at strides 8 and 16, and DETR's own encoder has no layers (num_layers=0: its memory
# is the neck's stride-16 output). Two-stage query selection picks the 100 queries from the stride-16
# tokens; the deformable decoder (3 layers) samples both levels; denoising, the auxiliary YOLO v1 head and
# the varifocal loss are those of the best config.
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='DETR',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32,
                           channels_last=True),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(2, 3)),  # strides 8, 16
    neck=dict(type='HybridEncoder', out_channels=128, num_encoder_layers=1, num_heads=8,
              ffn_dims=512, dropout=0.0, num_blocks=3, expansion=0.5),
    num_queries=100,
    embed_dims=128,
    positional_encoding=dict(temperature=10000, normalize=True),
    encoder=dict(num_layers=0),                    # the neck's AIFI layer is the encoder
    decoder=dict(num_layers=3, num_heads=8, ffn_dims=512, dropout=0.0, cross_attention='deformable',
                 num_points=4),
    query_type='encoder',
    proposal_size=0.1,
    denoising=dict(num_groups=5, label_noise_ratio=0.2, box_noise_scale=0.4),
    aux_head=dict(type='YOLOV1Head', num_classes=5, num_boxes=2, feat_channels=128, num_convs=2,
                  bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=320),
                  loss_xy=dict(type='MSELoss', loss_weight=5.0),
                  loss_wh=dict(type='MSELoss', loss_weight=5.0),
                  loss_obj=dict(type='BinaryCrossEntropyLoss', loss_weight=1.0),
                  loss_noobj=dict(type='BinaryCrossEntropyLoss', loss_weight=0.5),
                  loss_cls=dict(type='MSELoss', loss_weight=1.0)),
    head=dict(type='DETRHead', num_classes=5, num_reg_layers=3, bg_cls_weight=0.1,
              matcher=dict(type='HungarianMatcher', class_cost=2.0, bbox_cost=5.0, giou_cost=2.0,
                           class_cost_type='focal'),
              loss_cls=dict(type='VarifocalLoss', loss_weight=1.0),
              loss_bbox=dict(type='L1Loss', loss_weight=5.0),
              loss_iou=dict(type='GIoULoss', loss_weight=2.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)
# The paper trains its backbone at 0.1x the learning rate to protect ImageNet weights; this one starts
# from scratch and trains at the full rate (at 0.1x no variant detected anything after 250 steps).
optim_wrapper = dict(type='AutocastOptimWrapper',  # bf16 + channels-last, as the main job
                     optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1, norm_type=2))
