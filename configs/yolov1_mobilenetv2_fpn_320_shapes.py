# YOLO v1 (Redmon et al. 2016) on the built-in shapes data: MobileNetV2 + FPN, grid at stride 8
# (40x40 cells at 320x320) so that 8-32 px objects get cells of their own. Trained from scratch.
# The main job: `python tools/train.py configs/yolo_v1.py` (a link to this file).
_base_ = ['_base_/default_runtime.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_5e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(123.675, 116.28, 103.53),
                           std=(58.395, 57.12, 57.375), bgr_to_rgb=True, pad_size_divisor=32,
                           channels_last=True),
    backbone=dict(type='MobileNetV2', widen_factor=0.5, out_indices=(2, 3, 4)),
    # Reads the finest FPN level only, so only its output conv is built (every parameter trains).
    neck=dict(type='FPN', out_channels=96, out_indices=(0,)),
    head=dict(type='YOLOV1Head', num_classes=5, in_index=0, num_boxes=2, feat_channels=128, num_convs=2,
              # Box sizes are encoded relative to the 320x320 training input, however a batch is padded.
              bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=320),
              # The paper's eq. 3 term by term: lambda_coord 5, lambda_noobj 0.5, sqrt(w), sqrt(h). The
              # confidence uses cross-entropy: the paper's squared error stalls with thousands of
              # predictors (see YOLOV1Head); dict(type='MSELoss', use_sigmoid=True) restores it.
              loss_xy=dict(type='MSELoss', loss_weight=5.0),
              loss_wh=dict(type='MSELoss', loss_weight=5.0),
              loss_obj=dict(type='BinaryCrossEntropyLoss', loss_weight=1.0),
              loss_noobj=dict(type='BinaryCrossEntropyLoss', loss_weight=0.5),
              loss_cls=dict(type='MSELoss', loss_weight=1.0),
              test_cfg=dict(score_thr=0.01, nms=dict(iou_thr=0.5), max_per_img=100, topk=1000)),
)

# bf16 autocast (AVX-512 / AMX CPUs) + channels-last: the main job in 0.65x the fp32 NCHW time on a
# 2-core CPU at the same accuracy (README). Weights, gradients and optimizer state stay fp32. On a GPU
# the wrapper autocasts there (bf16 from compute capability 8.0; on older GPUs it trains fp32 and says
# so: use --amp, fp16 with loss scaling).
optim_wrapper = dict(type='AutocastOptimWrapper')  # dtype bfloat16 by default
