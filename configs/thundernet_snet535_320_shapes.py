# ThunderNet (Qin et al., "ThunderNet: Towards Real-time Generic Object Detection on Mobile Devices",
# ICCV 2019) with the SNet535 backbone, on the built-in shapes data, 320x320:
# SNet535 -> CEM (245 channels at stride 16) -> light RPN (5x5 depthwise + 1x1 conv to 256
# channels, 25 anchors per position) -> SAM re-weights the CEM map with the RPN feature ->
# PSRoIAlign 7x7 x 5 channels -> one FC 1024 -> class and box layers.
# 200 proposals per image at test, as in the paper. Trained from scratch.
#   python tools/analysis/complexity.py configs/thundernet_snet535_320_shapes.py --shape 320 320
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='TwoStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32,
                           channels_last=True),
    backbone=dict(type='SNet', arch='snet535', out_indices=(3, 4)),
    neck=dict(type='CEM', alpha=5, pool_size=7),
    rpn_head=dict(
        type='RPNHead', feat_channels=256, depthwise_kernel=5,
        # The paper's 25 anchors at half its sizes (COCO's 32-512 -> 16-256): the shapes data's
        # objects are 8-128 px at 320x320; BCCD's config keeps the paper's sizes.
        anchor_generator=dict(type='AnchorGenerator', sizes=[16, 32, 64, 128, 256],
                              ratios=[0.5, 0.75, 1.0, 4 / 3, 2.0]),
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, match_low_quality=True),
        sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', weights=(1.0, 1.0, 1.0, 1.0)),
        loss_cls=dict(type='BinaryCrossEntropyLoss', loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0),
        train_cfg=dict(topk=2000, max_per_img=2000, nms=dict(iou_thr=0.7), score_thr=0.0),
        test_cfg=dict(topk=1000, max_per_img=200, nms=dict(iou_thr=0.7), score_thr=0.0)),
    sam=dict(type='SAM'),
    roi_head=dict(
        type='StandardRoIHead', num_classes=5,
        roi_extractor=dict(type='PSRoIAlignExtractor', in_index=0, output_size=7, sampling_ratio=2),
        num_fcs=1, fc_channels=1024,
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, match_low_quality=False),
        sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', weights=(10.0, 10.0, 5.0, 5.0)),
        add_gt_as_proposals=True,
        loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0),
        test_cfg=dict(score_thr=0.05, nms=dict(iou_thr=0.5), max_per_img=100, topk=None)),
)

# bf16 autocast + channels-last as the main job, and 3 epochs so that training fits the main job's
# budget (SNet146: 7 min 24 s against the main job's 7 min 22 s on the same machine, README).
optim_wrapper = dict(type='AutocastOptimWrapper')
train_cfg = dict(max_epochs=3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=3, T_max=3, eta_min=1e-5),
]
