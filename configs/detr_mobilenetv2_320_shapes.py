# DETR (_base_/models/detr.py: MobileNetV2-0.5 from scratch at stride 16, d_model 128, 3 + 3 layers, 100
# queries) on the built-in shapes data, 320x320: same data, batch and schedule as the main job
# (configs/yolo_v1.py). dn_dab_detr_mobilenetv2_320_shapes.py and the best,
# co_deformable_detr_mobilenetv2_320_shapes.py, are this config with speed-ups switched on.
_base_ = ['_base_/default_runtime.py', '_base_/models/detr.py', '_base_/datasets/shapes_320.py',
          '_base_/schedules/adamw_cosine_6e.py']
model = dict(head=dict(num_classes=5))
# AdamW 5e-4, weight decay 1e-4, gradient clipping 0.1, as the paper. The paper trains its backbone at
# 0.1x the learning rate to protect ImageNet weights; this one starts from scratch and trains at the full
# rate (at 0.1x no variant detected anything after 250 steps).
optim_wrapper = dict(type='AutocastOptimWrapper',  # bf16, with the channels-last input, as the main job
                     optimizer=dict(lr=5e-4, weight_decay=1e-4), clip_grad=dict(max_norm=0.1))
