# RT-DETR's lighter encoder (Zhao et al., CVPR 2024) on the best small DETR
# (co_deformable_detr_mobilenetv2_320_shapes.py, whose comments explain the other switches): the neck is a
# HybridEncoder (AIFI: one transformer encoder layer with 2-D sine positions on the stride-16 map only;
# CCFM: convolutional top-down / bottom-up fusion with CSP-RepVGG blocks) that gives 128 channels at
# strides 8 and 16, and DETR's own encoder has no layers (its memory is the neck's stride-16 output).
_base_ = ['co_deformable_detr_mobilenetv2_320_shapes.py']
model = dict(
    backbone=dict(out_indices=(2, 3)),                                      # strides 8, 16
    neck=dict(_delete_=True, type='HybridEncoder', out_channels=128, ffn_dims=512, dropout=0.0,
              expansion=0.5),
    encoder=dict(num_layers=0),
)
