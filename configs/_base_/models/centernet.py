# CenterNet ("Objects as Points", Zhou et al. 2019) on MobileNetV2-0.5 + FPN with its finest level at
# stride 4, where the heatmap, size and offset branches run. Trained from scratch. Losses (focal heatmap
# loss, L1 on sizes x0.1 and offsets) and test_cfg: the head's defaults.
_base_ = ['data_preprocessor.py']
model = dict(
    type='SingleStageDetector',
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(1, 2, 3, 4)),
    # Reads the finest (stride-4) FPN level only, so only its output conv is built.
    neck=dict(type='FPN', out_channels=48, out_indices=(0,)),
    head=dict(type='CenterNetHead', feat_channels=48),
)
