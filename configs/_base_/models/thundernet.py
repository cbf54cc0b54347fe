# ThunderNet (Qin et al., "ThunderNet: Towards Real-time Generic Object Detection on Mobile Devices",
# ICCV 2019): SNet146 -> CEM (245 channels at stride 16) -> light RPN (5x5 depthwise + 1x1 conv to 256
# channels, the paper's 25 anchors per position) -> SAM re-weights the CEM map with the RPN feature ->
# PSRoIAlign 7x7 x 5 channels -> one FC 1024 -> class and box layers; 200 proposals per image at test, as
# in the paper. Trained from scratch. Assigners, samplers, box coders and losses: the heads' defaults.
_base_ = ['data_preprocessor.py']
model = dict(
    type='TwoStageDetector',
    backbone=dict(type='SNet'),
    neck=dict(type='CEM'),
    rpn_head=dict(
        type='RPNHead', feat_channels=256, depthwise_kernel=5,
        anchor_generator=dict(type='AnchorGenerator', sizes=[32, 64, 128, 256, 512],
                              ratios=[0.5, 0.75, 1.0, 4 / 3, 2.0]),
        test_cfg=dict(max_per_img=200)),
    sam=dict(type='SAM'),
    roi_head=dict(type='StandardRoIHead', roi_extractor=dict(type='PSRoIAlignExtractor'), num_fcs=1),
)
