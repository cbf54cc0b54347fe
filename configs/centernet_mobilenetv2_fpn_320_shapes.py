# CenterNet (_base_/models/centernet.py) on the built-in shapes data, on the same data, backbone, batch and
# wall-clock budget as configs/yolo_v1.py.
_base_ = ['_base_/default_runtime.py', '_base_/models/centernet.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(head=dict(num_classes=5))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
# Validation after epochs 2, 4 and 6: the first ones say little and each costs time (README).
train_cfg = dict(val_interval=2)
