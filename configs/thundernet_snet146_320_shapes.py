# ThunderNet with SNet146 (_base_/models/thundernet.py) on the built-in shapes data, 320x320.
#   python tools/analysis/complexity.py configs/thundernet_snet146_320_shapes.py --shape 320 320
_base_ = ['_base_/default_runtime.py', '_base_/models/thundernet.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(
    # The paper's 25 anchors at half its sizes (COCO's 32-512 -> 16-256): the shapes data's objects are
    # 8-128 px at 320x320.
    rpn_head=dict(anchor_generator=dict(sizes=[16, 32, 64, 128, 256])),
    roi_head=dict(num_classes=5))
# bf16 autocast, with the channels-last input, as the main job, and 3 epochs so that training fits the
# main job's budget (README).
optim_wrapper = dict(type='AutocastOptimWrapper')
train_cfg = dict(max_epochs=3)
