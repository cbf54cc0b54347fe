# thundernet_snet146_320_shapes.py with the SNet49 backbone.
#   python tools/analysis/complexity.py configs/thundernet_snet49_320_shapes.py --shape 320 320
_base_ = ['thundernet_snet146_320_shapes.py']
model = dict(backbone=dict(arch='snet49'))
