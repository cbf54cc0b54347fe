"""benchmarks/recipe_ablation.py: every variant of both shipped recipe configs takes out exactly its own
part and leaves a config whose parts agree (the NoMixHook names only transforms the pipeline still has,
which a run would otherwise find out at its last epochs)."""
import importlib.util
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('recipe_ablation', REPO / 'benchmarks' / 'recipe_ablation.py')
recipe_ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe_ablation)

PAIRS = [('centernet_mobilenetv2_fpn_320_shapes_mosaic.py', 'centernet_mobilenetv2_fpn_320_shapes.py'),
         ('centernet_mobilenetv2_fpn_416_bccd_mosaic.py', 'centernet_mobilenetv2_fpn_416_bccd.py')]


def _types(transforms):
    return [t['type'] for t in transforms]


@pytest.mark.parametrize('recipe_name,plain_name', PAIRS)
def test_each_variant_takes_out_its_own_part(recipe_name, plain_name):
    recipe = Config.fromfile(str(REPO / 'configs' / recipe_name))
    plain = Config.fromfile(str(REPO / 'configs' / plain_name))
    full = _types(recipe.train_dataloader.dataset.pipeline)
    albu = [t for t in recipe.train_dataloader.dataset.pipeline if t['type'] == 'Albu'][0]
    for name in recipe_ablation.VARIANTS:
        cfg = recipe_ablation.variant_config(name, recipe, plain, epochs=7)
        if name == 'plain':
            assert cfg.train_dataloader.dataset.type != 'MultiImageMixDataset'
            continue
        pipeline = cfg.train_dataloader.dataset.pipeline
        hooks = {h['type']: h for h in cfg.custom_hooks}
        assert set(hooks['NoMixHook'].skip_type_keys) <= set(_types(pipeline)), name
        expected = [t for t in full if not (name == 'no-mixup' and t == 'MixUp')]
        assert _types(pipeline) == expected, name
        step = [t for t in pipeline if t['type'] == 'Albu'][0]
        dropped = {'Affine', 'HueSaturationValue'} if name == 'no-affine-hsv' else set()
        assert _types(step.transforms) == [t for t in _types(albu.transforms) if t not in dropped], name
        assert hooks['NoMixHook'].num_last_epochs == (7 if name == 'no-mosaic' else
                                                      recipe.custom_hooks[0].num_last_epochs), name
        assert cfg.model.head.type == ('CenterNetHead' if name == 'l1-boxes' else 'TTFNetHead'), name
        assert ('EMAHook' in hooks) == (name == 'ema'), name
    # The inputs are left as they were.
    assert _types(recipe.train_dataloader.dataset.pipeline) == full
