# DN-DAB-DETR on the shapes data: configs/detr_mobilenetv2_320_shapes.py with two published
# speed-ups switched on:
# - anchor queries (DAB-DETR, Liu et al. ICLR 2022): each of the 100 queries is a learned box whose sine
#   embedding is its positional query; every decoder layer predicts a correction of the previous
#   layer's box (layer-by-layer refinement);
# - denoising queries (DN-DETR, Li et al. CVPR 2022): 5 groups of noised ground-truth boxes (centre
#   moved by up to 0.4 * size / 2, size scaled by 0.6-1.4) and labels (20% replaced) are extra decoder
#   queries that reconstruct the originals, masked from the matching queries and from each other.
# MobileNetV2-0.5 (from scratch) at stride 16, d_model 128, 3 + 3 layers, 320x320, as the plain config.
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='DETR',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32,
                           channels_last=True),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(3,)),
    num_queries=100,
    embed_dims=128,
    positional_encoding=dict(temperature=10000, normalize=True),
    encoder=dict(num_layers=3, num_heads=8, ffn_dims=512, dropout=0.0),
    decoder=dict(num_layers=3, num_heads=8, ffn_dims=512, dropout=0.0),
    query_type='anchor',
    denoising=dict(num_groups=5, label_noise_ratio=0.2, box_noise_scale=0.4),
    head=dict(type='DETRHead', num_classes=5, num_reg_layers=3, bg_cls_weight=0.1,
              matcher=dict(type='HungarianMatcher', class_cost=1.0, bbox_cost=5.0, giou_cost=2.0),
              loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
              loss_bbox=dict(type='L1Loss', loss_weight=5.0),
              loss_iou=dict(type='GIoULoss', loss_weight=2.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)
# The paper trains its backbone at 0.1x the learning rate to protect ImageNet weights; this one starts
# from scratch and trains at the full rate (at 0.1x no variant detected anything after 250 steps).
optim_wrapper = dict(type='AutocastOptimWrapper',  # bf16 + channels-last, as the main job
                     optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1, norm_type=2))
