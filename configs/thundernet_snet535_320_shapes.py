# thundernet_snet146_320_shapes.py with the SNet535 backbone.
#   python tools/analysis/complexity.py configs/thundernet_snet535_320_shapes.py --shape 320 320
_base_ = ['thundernet_snet146_320_shapes.py']
model = dict(backbone=dict(arch='snet535'))
