# The best small DETR on the shapes data (docs/models/detr.md): detr_mobilenetv2_320_shapes.py (plain
# DETR: MobileNetV2-0.5 from scratch at stride 16, d_model 128, 3 + 3 layers, 100 queries, 320x320) with
# six published speed-ups switched on, each also a switch of the DETR detector or its head:
# - deformable cross-attention in the decoder (Deformable DETR, Zhu et al. ICLR 2021): each query reads
#   4 samples per head around its reference box instead of all 400 tokens, so locality is built in;
# - multi-scale: an FPN gives stride 8 and 16 (the main job's neck, 128 channels); the encoder reads the
#   stride-16 map (400 tokens, as RT-DETR keeps its encoder on one level), the deformable decoder
#   samples both, so tiny objects have a stride-8 map to be read from;
# - IoU-aware classification (VarifocalLoss with the focal matching cost, RT-DETR): sigmoid class scores
#   trained towards each matched box's IoU, so the score that ranks detections also rates the box;
# - two-stage query selection (Deformable DETR; RT-DETR, Zhao et al. CVPR 2024): every encoder token
#   predicts a class and a box around its own position (anchor 0.1 x 0.1 of the image) and is trained with
#   the set loss; the 100 best tokens become the queries (feature = content, box = reference), and each
#   decoder layer refines the box;
# - denoising queries (DN-DETR, Li et al. CVPR 2022): 5 groups of noised ground-truth boxes and labels;
# - an auxiliary YOLO v1 head on the 20x20 encoder map (Co-DETR, Zong et al. ICCV 2023) trained with its
#   fixed centre-cell assignment and a dense objectness target beside the set loss, so that the
#   from-scratch backbone and encoder learn where objects are from a stable signal. It is dropped at
#   inference: the detector still predicts a set, without NMS.
# Ablations are options of this file: model.head.loss_cls.type=CrossEntropyLoss
# model.head.matcher.class_cost_type=probability model.head.matcher.class_cost=1.0 (softmax classification),
# 'model.backbone.out_indices=(3,)' model.neck=None (one stride-16 map), model.decoder.cross_attention=global
# (global cross-attention; one map only), model.aux_head=None (no auxiliary head).
_base_ = ['detr_mobilenetv2_320_shapes.py']
model = dict(
    backbone=dict(out_indices=(2, 3, 4)),
    neck=dict(type='FPN', out_channels=128, out_indices=(0, 1)),           # strides 8 and 16
    decoder=dict(cross_attention='deformable'),
    query_type='encoder',
    proposal_size=0.1,
    denoising=dict(),
    aux_head=dict(type='YOLOV1Head', num_classes=5, feat_channels=128,
                  bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=320)),
    head=dict(matcher=dict(type='HungarianMatcher', class_cost=2.0, class_cost_type='focal'),
              loss_cls=dict(type='VarifocalLoss')),
)
