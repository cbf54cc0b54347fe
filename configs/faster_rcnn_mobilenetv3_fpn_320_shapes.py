# Faster R-CNN (Ren et al. 2015) on the built-in shapes data, with the architecture of torchvision's
# fasterrcnn_mobilenet_v3_large_320_fpn (tests/models/two_stage/test_torchvision_equality.py converts
# that model's weights into this one and gets the same proposals, detections and losses):
# MobileNetV3-Large tapped after its first stride-32 block (features.13, 160 ch) and at its end
# (features.16, 960 ch) -> FPN 256 ch with a max-pooled extra level (strides 32, 32, 64) -> RPN with
# 15 anchors per position -> RoIAlign 7x7 on the first level -> two FC 1024 -> class and box layers.
# Trained from scratch (no pretrained weights are downloaded).
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']

model = dict(
    type='TwoStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32,
                           channels_last=True),
    # torchvision's FPN taps the middle of det's MobileNetV3 stride-32 stage, so the backbone is
    # torchvision's own mobilenet_v3_large cut by FX at those two blocks.
    # Plain nn.BatchNorm2d (momentum 0.1), as torchvision's detector builds it when not pretrained:
    # mobilenet_v3_large's own momentum 0.01 leaves the running statistics far behind the features of a
    # short from-scratch run (measured: no detection at all in eval mode after 8 BCCD epochs).
    backbone=dict(type='TorchvisionBackbone', name='mobilenet_v3_large', norm_layer='BatchNorm2d',
                  return_nodes=['features.13', 'features.16']),
    neck=dict(type='FPN', out_channels=256, num_outs=3, add_extra_convs=False),
    rpn_head=dict(
        type='RPNHead',
        anchor_generator=dict(type='AnchorGenerator', sizes=[[32, 64, 128, 256, 512]] * 3,
                              ratios=[0.5, 1.0, 2.0]),
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, match_low_quality=True),
        sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', weights=(1.0, 1.0, 1.0, 1.0)),
        loss_cls=dict(type='BinaryCrossEntropyLoss', loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0),
        train_cfg=dict(topk=2000, max_per_img=2000, nms=dict(iou_thr=0.7), score_thr=0.05),
        test_cfg=dict(topk=150, max_per_img=150, nms=dict(iou_thr=0.7), score_thr=0.05)),
    roi_head=dict(
        type='StandardRoIHead', num_classes=5,
        # torchvision pools levels '0' and '1' (both stride 32), and its level rule sends every RoI to '0'.
        roi_extractor=dict(type='RoIAlignExtractor', in_index=0, output_size=7, sampling_ratio=2),
        num_fcs=2, fc_channels=1024,
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, match_low_quality=False),
        sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', weights=(10.0, 10.0, 5.0, 5.0)),
        add_gt_as_proposals=True,
        loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0),
        test_cfg=dict(score_thr=0.05, nms=dict(iou_thr=0.5), max_per_img=100, topk=None)),
)

# bf16 autocast on the model's device (AVX-512 / AMX CPUs; GPUs from compute capability 8.0, older
# ones train fp32: use --amp there) + channels-last, as the other shipped configs.
optim_wrapper = dict(type='AutocastOptimWrapper')
