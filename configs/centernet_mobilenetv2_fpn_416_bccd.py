# CenterNet (_base_/models/centernet.py) on BCCD blood-cell images letterboxed to 416x416, heatmap at
# stride 4. Trained from scratch on trainval (292 images), evaluated on test (72).
_base_ = ['_base_/default_runtime.py', '_base_/models/centernet.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']
model = dict(head=dict(num_classes=3))
optim_wrapper = dict(type='AutocastOptimWrapper')  # bf16, with the channels-last input, as the main job
