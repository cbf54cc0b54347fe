# centernet_mobilenetv2_fpn_320_shapes_recipe.py plus Mosaic (4 images) and MixUp, off for the last
# epoch: the whole issue-13 recipe, and the config benchmarks/recipe_ablation.py takes apart. Measured
# (README): in 6 epochs it loses to the recipe without mixing (AP 0.498 vs 0.576) and to the plain config.
_base_ = ['centernet_mobilenetv2_fpn_320_shapes_recipe.py']

img_scale = {{_base_.img_scale}}
# Per image, inside the wrapped dataset: load only. Mosaic and MixUp then fetch more images through it.
load_pipeline = [
    dict(type='LoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations'),
]
# The shapes data holds many 8-16 px objects: Mosaic keeps each image's scale around 1 (0.75-1.25) so
# they do not shrink below what the stride-4 heatmap resolves.
mix_pipeline = [
    dict(type='Mosaic', img_scale=img_scale, center_ratio_range=(0.25, 0.75), scale_range=(0.75, 1.25),
         min_bbox_size=2.0, min_area_ratio=0.2),
    dict(type='MixUp', ratio_range=(0.75, 1.25), flip_ratio=0.5, alpha=32.0, prob=0.3),
    # The recipe's affine, HSV and flips.
    {{_base_.albu}},
    # Mixed samples are already img_scale; unmixed ones (last epoch) are letterboxed like the val data.
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
# One loader process: a mixed sample reads up to five images.
train_dataloader = dict(
    num_workers=1,
    dataset=dict(_delete_=True, type='MultiImageMixDataset', pipeline=mix_pipeline,
                 dataset=dict(type='ShapesDataset', data_root={{_base_.data_root}}, split='train',
                              pipeline=load_pipeline)))

custom_hooks = [dict(type='NoMixHook', num_last_epochs=1, skip_type_keys=('Mosaic', 'MixUp'))]
