# centernet_mobilenetv2_fpn_320_shapes_recipe.py plus Mosaic (4 images) and MixUp, off for the last epoch:
# the whole issue-13 recipe, and the config benchmarks/recipe_ablation.py takes apart. It scored below
# the recipe without mixing (docs/models/centernet.md).
_base_ = ['centernet_mobilenetv2_fpn_320_shapes_recipe.py']
mix_pipeline = [
    # The shapes data holds many 8-16 px objects: Mosaic keeps each image's scale around 1 (0.75-1.25) so
    # they do not shrink below what the stride-4 heatmap resolves.
    dict(type='Mosaic', img_scale=_base_.img_scale, scale_range=(0.75, 1.25)),
    dict(type='MixUp', ratio_range=(0.75, 1.25), prob=0.3),
    _base_.recipe_albu,
    # Mixed samples are already img_scale; unmixed ones (last epoch) are letterboxed like the val data.
    *_base_.letterbox,
]
# The wrapped dataset only loads an image; Mosaic and MixUp fetch more images through it. One loader
# process: a mixed sample reads up to five images.
train_dataloader = dict(
    num_workers=1,
    dataset=dict(_delete_=True, type='MultiImageMixDataset', pipeline=mix_pipeline,
                 dataset=dict(_base_.train_dataloader.dataset, pipeline=_base_.load_train)))
custom_hooks = [dict(type='NoMixHook', num_last_epochs=1, skip_type_keys=('Mosaic', 'MixUp'))]
