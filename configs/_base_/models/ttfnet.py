# CenterNet with TTFNet's box regression (Liu et al. 2020): 4 side distances per pixel, GIoU on decoded
# boxes at the Gaussian-weighted pixels around each centre (elliptical Gaussians), the TTFNetHead's
# defaults. MobileNetV2-0.5 + FPN at stride 4 as centernet.py; trained from scratch. Losses, target
# generator and test_cfg: the head's defaults.
_base_ = ['data_preprocessor.py']
model = dict(
    type='SingleStageDetector',
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(1, 2, 3, 4)),
    # Reads the finest (stride-4) FPN level only, so only its output conv is built.
    neck=dict(type='FPN', out_channels=48, out_indices=(0,)),
    head=dict(type='TTFNetHead', feat_channels=48),
)
