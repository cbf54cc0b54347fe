# Faster R-CNN (_base_/models/faster_rcnn.py, torchvision's fasterrcnn_mobilenet_v3_large_320_fpn) on the
# built-in shapes data, 320x320.
_base_ = ['_base_/default_runtime.py', '_base_/models/faster_rcnn.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(roi_head=dict(num_classes=5))
# bf16 autocast on the model's device (AVX-512 / AMX CPUs; GPUs from compute capability 8.0, older
# ones train fp32: use --amp there), with the channels-last input, as the other shipped configs.
optim_wrapper = dict(type='AutocastOptimWrapper')
