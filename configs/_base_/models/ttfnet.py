# CenterNet with TTFNet's box regression (Liu et al. 2020): centernet.py's MobileNetV2-0.5 + FPN at stride 4
# with the TTFNetHead in place of the CenterNet head: 4 side distances per pixel, GIoU on decoded boxes at
# the Gaussian-weighted pixels around each centre (elliptical Gaussians). Trained from scratch. Losses,
# target generator and test_cfg: the head's defaults.
_base_ = ['centernet.py']
model = dict(head=dict(type='TTFNetHead'))
