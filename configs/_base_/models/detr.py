# DETR (Carion et al., 2020) small enough for a CPU: MobileNetV2-0.5 (from scratch) read at stride 16
# (20x20 tokens at 320x320), d_model 128, 3 encoder + 3 decoder layers (8 heads, FFN 512, no dropout),
# 100 learned object queries; the head's defaults: Hungarian matching 1 / 5 / 2, CE (no-object 0.1) +
# 5 L1 + 2 GIoU with auxiliary losses. The speed-ups are switches of this model (docs/models/detr.md):
# `query_type='anchor'` (DAB-DETR) or `'encoder'` (two-stage query selection), `denoising=dict(...)`
# (DN-DETR; also `--cfg-options model.denoising.num_groups=5`, as the base leaves it unset),
# `decoder=dict(cross_attention='deformable')` (Deformable DETR) and `aux_head=dict(...)` (Co-DETR).
_base_ = ['data_preprocessor.py']
model = dict(
    type='DETR',
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(3,)),
    embed_dims=128,
    encoder=dict(num_layers=3, ffn_dims=512, dropout=0.0),
    decoder=dict(num_layers=3, ffn_dims=512, dropout=0.0),
    head=dict(type='DETRHead'),
)
