# BCCD blood-cell images (Pascal VOC layout: RBC, WBC, Platelets; 640x480), letterboxed to 416x416.
# num_workers is left to the machine (det/engine/machine.py, logged at start).
# The default root is the copy beside this repository; elsewhere override it, e.g.
#   --cfg-options train_dataloader.dataset.data_root=PATH val_dataloader.dataset.data_root=PATH \
#                 test_dataloader.dataset.data_root=PATH
data_root = '../shared/data/BCCD_Dataset/BCCD'
classes = ('RBC', 'WBC', 'Platelets')
img_scale = (416, 416)
train_pipeline = [
    dict(type='LoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations'),
    dict(type='Albu', transforms=[dict(type='HorizontalFlip', p=0.5), dict(type='VerticalFlip', p=0.5),
                                  dict(type='RandomBrightnessContrast', p=0.3)]),
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
    dataset=dict(type='VOCDataset', data_root=data_root, split='trainval', metainfo=dict(classes=classes),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VOCDataset', data_root=data_root, split='test', metainfo=dict(classes=classes),
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
# No COCO json for VOC data: the metric builds the ground truth from the samples (box area for tiers).
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
