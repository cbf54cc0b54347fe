# Faster R-CNN (Ren et al. 2015) with the architecture of torchvision's fasterrcnn_mobilenet_v3_large_320_fpn
# (tests/models/two_stage/test_torchvision_equality.py converts that model's weights into this one and
# gets the same proposals, detections and losses): MobileNetV3-Large tapped after its first stride-32 block
# (features.13, 160 ch) and at its end (features.16, 960 ch) -> FPN 256 ch with a max-pooled extra level
# (strides 32, 32, 64) -> RPN with 15 anchors per position -> RoIAlign 7x7 on the first level -> two FC
# 1024 -> class and box layers. Trained from scratch (no pretrained weights are downloaded). Assigners,
# samplers, box coders and losses: the heads' defaults (torchvision's).
_base_ = ['data_preprocessor.py']
model = dict(
    type='TwoStageDetector',
    # torchvision's FPN taps the middle of det's MobileNetV3 stride-32 stage, so the backbone is
    # torchvision's own mobilenet_v3_large cut by FX at those two blocks.
    # Plain nn.BatchNorm2d (momentum 0.1), as torchvision's detector builds it when not pretrained:
    # mobilenet_v3_large's own momentum 0.01 leaves the running statistics far behind the features of a
    # short from-scratch run (no detection at all in eval mode after 8 BCCD epochs).
    backbone=dict(type='TorchvisionBackbone', name='mobilenet_v3_large', norm_layer='BatchNorm2d',
                  return_nodes=['features.13', 'features.16']),
    neck=dict(type='FPN', num_outs=3),
    rpn_head=dict(
        type='RPNHead',
        anchor_generator=dict(type='AnchorGenerator', sizes=[[32, 64, 128, 256, 512]] * 3,
                              ratios=[0.5, 1.0, 2.0]),
        train_cfg=dict(score_thr=0.05),
        test_cfg=dict(topk=150, max_per_img=150, score_thr=0.05)),
    # torchvision pools levels '0' and '1' (both stride 32), and its level rule sends every RoI to '0'.
    roi_head=dict(type='StandardRoIHead', roi_extractor=dict(type='RoIAlignExtractor')),
)
