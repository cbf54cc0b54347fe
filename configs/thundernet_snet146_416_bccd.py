# ThunderNet (Qin et al., "ThunderNet: Towards Real-time Generic Object Detection on Mobile Devices",
# ICCV 2019) on BCCD blood-cell images (RBC, WBC, Platelets) letterboxed to 416x416:
# SNet146 -> CEM (245 channels at stride 16) -> light RPN (5x5 depthwise + 1x1 conv to 256
# channels, 25 anchors per position) -> SAM re-weights the CEM map with the RPN feature ->
# PSRoIAlign 7x7 x 5 channels -> one FC 1024 -> class and box layers.
# 200 proposals per image at test, as in the paper. Trained from scratch on trainval, tested on test.
#   python tools/analysis/complexity.py configs/thundernet_snet146_416_bccd.py --shape 416 416
_base_ = ['_base_/default_runtime.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']

model = dict(
    type='TwoStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='SNet', arch='snet146', out_indices=(3, 4)),
    neck=dict(type='CEM', alpha=5, pool_size=7),
    rpn_head=dict(
        type='RPNHead', feat_channels=256, depthwise_kernel=5,
        anchor_generator=dict(type='AnchorGenerator', sizes=[32, 64, 128, 256, 512],
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
        type='StandardRoIHead', num_classes=3,
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
