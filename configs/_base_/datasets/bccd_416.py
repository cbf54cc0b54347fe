# BCCD blood-cell images (Pascal VOC layout: RBC, WBC, Platelets; 640x480), letterboxed to 416x416.
# The default root is the copy beside this repository; elsewhere `--data-root DIR` (docs/own_data.md).
_base_ = ['detection.py']
data_root = '../shared/data/BCCD_Dataset/BCCD'
classes = ('RBC', 'WBC', 'Platelets')
img_scale = (416, 416)
flips = [dict(type='HorizontalFlip', p=0.5), dict(type='VerticalFlip', p=0.5)]  # cells have no up and down
letterbox = [dict(type='Resize', scale=img_scale), dict(type='Pad', size=img_scale),
             dict(type='PackDetInputs')]
train_pipeline = _base_.load_train + [
    dict(type='Albu', transforms=flips + [dict(type='RandomBrightnessContrast', p=0.3)])] + letterbox
recipe_albu = dict(type='Albu', min_visibility=0.2, transforms=_base_.recipe_transforms + flips)
recipe_pipeline = _base_.load_train + [recipe_albu] + letterbox
test_pipeline = _base_.load_test + letterbox
train_dataloader = dict(dataset=dict(type='VOCDataset', data_root=data_root, split='trainval',
                                     metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, dataset=dict(type='VOCDataset', data_root=data_root, split='test',
                                                 metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
