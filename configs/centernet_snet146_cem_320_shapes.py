# ThunderNet's lightweight front end under a CenterNet head on the built-in shapes data: SNet146
# backbone (stride-16 and stride-32 outputs) -> CEM context enhancement (one 245-channel stride-16 map)
# -> two deconv blocks up to the stride-4 heatmap. An architecture-study config: not trained here yet.
#   python tools/analysis/complexity.py configs/centernet_snet146_cem_320_shapes.py --shape 320 320
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='SNet', arch='snet146', out_indices=(3, 4)),
    neck=dict(type='CEM', alpha=5, pool_size=7),
    head=dict(type='CenterNetHead', num_classes=5, in_index=0, feat_channels=64, deconv_channels=128,
              loss_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0),
              loss_wh=dict(type='L1Loss', loss_weight=0.1),
              loss_offset=dict(type='L1Loss', loss_weight=1.0),
              test_cfg=dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)),
)
