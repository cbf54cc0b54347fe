# YOLO v1 (_base_/models/yolo_v1.py) on the built-in shapes data, 320x320. The main job:
# `python tools/train.py configs/yolo_v1.py` (a link to this file).
_base_ = ['_base_/default_runtime.py', '_base_/models/yolo_v1.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_5e.py']
model = dict(head=dict(num_classes=5))
# bf16 autocast (AVX-512 / AMX CPUs) with the model's channels-last input: the main job's speed setting at
# the same accuracy (docs/cpu_speed.md). Weights, gradients and optimizer state stay fp32. On a GPU the
# wrapper autocasts there (bf16 from compute capability 8.0; on older GPUs it trains fp32 and says so: use
# --amp, fp16 with loss scaling).
optim_wrapper = dict(type='AutocastOptimWrapper')  # dtype bfloat16 by default
