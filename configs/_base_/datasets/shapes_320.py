# The built-in generated shapes dataset (5 classes, 320x320), created under data/shapes on first use.
# Training batch 8: on 2 CPU cores a sample costs less at batch 8 than at 16, and a time budget buys
# twice the steps. num_workers is left to the machine (det/engine/machine.py, logged at start): none on a
# 2-core CPU, where a loader process competes with the compute threads (YOLO v1 step 356 -> 394 ms,
# benchmarks/profile_train_step.py), up to 4 with a GPU or more cores; set it here or with
# --cfg-options train_dataloader.num_workers=N to choose.
data_root = 'data/shapes'
img_scale = (320, 320)
train_pipeline = [
    dict(type='LoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations'),
    dict(type='Albu', transforms=[dict(type='HorizontalFlip', p=0.5)]),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', on_error='raise'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=8,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ShapesDataset', data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ShapesDataset', data_root=data_root, split='val', pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
# No ann_file: the metric scores against the val dataset's own json, wherever data_root points.
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
