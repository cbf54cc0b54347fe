# centernet_mobilenetv2_fpn_416_bccd_recipe.py plus Mosaic (4 images) and MixUp, off for the last 2
# epochs: the whole issue-13 recipe, and the config benchmarks/recipe_ablation.py takes apart. It scored
# below the recipe without mixing (docs/models/centernet.md).
_base_ = ['centernet_mobilenetv2_fpn_416_bccd_recipe.py']
mix_pipeline = [
    # Cells are 20-200 px: Mosaic shrinks each image to 0.5-1.0 of the input so four of them share it.
    dict(type='Mosaic', img_scale=_base_.img_scale),
    dict(type='MixUp', ratio_range=(0.75, 1.25), prob=0.3),
    _base_.recipe_albu,
    # Mixed samples are already img_scale; unmixed ones (last epochs) are letterboxed like the test data.
    *_base_.letterbox,
]
# The wrapped dataset only loads an image; Mosaic and MixUp fetch more images through it.
train_dataloader = dict(
    dataset=dict(_delete_=True, type='MultiImageMixDataset', pipeline=mix_pipeline,
                 dataset=dict(_base_.train_dataloader.dataset, pipeline=_base_.load_train)))
custom_hooks = [dict(type='NoMixHook', num_last_epochs=2, skip_type_keys=('Mosaic', 'MixUp'))]
