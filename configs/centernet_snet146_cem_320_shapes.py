# ThunderNet's lightweight front end under a CenterNet head (_base_/models/centernet.py) on the built-in
# shapes data: SNet146 backbone (stride-16 and stride-32 outputs) -> CEM context enhancement (one
# 245-channel stride-16 map) -> two deconv blocks up to the stride-4 heatmap. An architecture-study
# config, in fp32: not trained here yet.
#   python tools/analysis/complexity.py configs/centernet_snet146_cem_320_shapes.py --shape 320 320
_base_ = ['_base_/default_runtime.py', '_base_/models/centernet.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(
    data_preprocessor=dict(channels_last=False),
    backbone=dict(_delete_=True, type='SNet'),
    neck=dict(_delete_=True, type='CEM'),
    head=dict(num_classes=5, feat_channels=64, deconv_channels=128),
)
