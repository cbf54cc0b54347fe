# CenterNet on BCCD with the issue-13 training recipe that measured best: random affine, HSV jitter and
# flips (recipe_pipeline, _base_/datasets/detection.py), and TTFNet's GIoU box regression
# (_base_/models/ttfnet.py). Same model, data, batch and optimizer as centernet_mobilenetv2_fpn_416_bccd.py,
# so the two compare directly. Mosaic + MixUp on top of this is centernet_mobilenetv2_fpn_416_bccd_mosaic.py.
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']
model = dict(head=dict(num_classes=3))
train_dataloader = dict(dataset=dict(pipeline=_base_.recipe_pipeline))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
