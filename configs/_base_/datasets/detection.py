# What the dataset bases share: training batches of 8, shuffled; evaluation with CocoMetric (no ann_file:
# it scores against the val dataset's own annotations, wherever data_root points); the pipelines, as
# parts. num_workers is left to the machine (det/engine/machine.py, logged at start).
# A training image that cannot be read is skipped (and logged); at test time it is an error.
load_train = [dict(type='LoadImageFromFile', on_error='skip'), dict(type='LoadAnnotations')]
load_test = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
# The issue-13 recipe the *_recipe configs train with: random affine and HSV jitter on the original image,
# then the flips and the letterbox; boxes left with less than 20% of their area in view are dropped.
recipe_transforms = [
    dict(type='Affine', scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), fill=114, p=0.5),
    dict(type='HueSaturationValue', hue_shift_limit=10, sat_shift_limit=30, val_shift_limit=20, p=0.5)]
# Photographs at 320x320 by default (a base for other data sets its own img_scale, flips and pipelines):
# letterboxed (resized with the aspect ratio kept, padded to img_scale), flipped left-right.
img_scale = (320, 320)
flips = [dict(type='HorizontalFlip', p=0.5)]
letterbox = [dict(type='Resize', scale=img_scale), dict(type='Pad', size=img_scale),
             dict(type='PackDetInputs')]
train_pipeline = load_train + [dict(type='Albu', transforms=flips)] + letterbox
recipe_albu = dict(type='Albu', min_visibility=0.2, transforms=recipe_transforms + flips)
recipe_pipeline = load_train + [recipe_albu] + letterbox
test_pipeline = load_test + letterbox

train_dataloader = dict(batch_size=8, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
