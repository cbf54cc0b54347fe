# CenterNet on the built-in shapes data with the issue-13 training recipe that measured best: random
# affine, HSV jitter and flips (recipe_pipeline, _base_/datasets/detection.py), and TTFNet's GIoU box
# regression (_base_/models/ttfnet.py). Same data, backbone, batch, speed settings and 6-epoch schedule as
# centernet_mobilenetv2_fpn_320_shapes.py, so the two compare directly. Mosaic + MixUp on top of this is
# centernet_mobilenetv2_fpn_320_shapes_mosaic.py.
_base_ = ['_base_/default_runtime.py', '_base_/models/ttfnet.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(pipeline=_base_.recipe_pipeline))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
