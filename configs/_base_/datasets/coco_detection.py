# A COCO-format dataset of one's own: DIR/annotations/train.json and val.json, images under DIR/train/
# and DIR/val/ (the json's file_name is relative to them), letterboxed to 320x320. Classes are the json's
# categories; a config on this base may leave the head's num_classes out, it is taken from the data.
# Other layouts (annotations/instances_train2017.json + train2017/, Roboflow's train/_annotations.coco.json)
# are found by `tools/train.py CONFIG --data-root DIR` (docs/own_data.md).
data_root = 'data/coco'
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
    batch_size=8, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CocoDataset', data_root=data_root, ann_file='annotations/train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, ann_file='annotations/val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
# No ann_file: the metric scores against the val dataset's own json, wherever data_root points.
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
