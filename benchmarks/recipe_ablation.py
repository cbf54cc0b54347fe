"""Each part of the training recipe, one at a time: train a recipe config with one change taken out (and
its plain config, and the recipe with weight EMA added), one run after the other on this machine, and
print one table of the final validation scores.

    python benchmarks/recipe_ablation.py RECIPE_CONFIG --plain PLAIN_CONFIG [--variants NAME ...]
        [--work-dir D] [--data-root DIR] [--epochs N]

``RECIPE_CONFIG`` is a config in the manner of ``configs/*_mosaic.py``: a ``MultiImageMixDataset`` whose
pipeline holds ``Mosaic``, ``MixUp`` and an ``Albu`` step with ``Affine`` / ``HueSaturationValue``, a
``NoMixHook``, and TTFNet's GIoU box loss in the head; ``PLAIN_CONFIG`` the same model without the recipe.
Variants (all by default):

- ``plain``: PLAIN_CONFIG as it is (flip only, L1 boxes);
- ``recipe``: RECIPE_CONFIG as it is;
- ``no-mixup``: without MixUp;
- ``no-mosaic``: without Mosaic and MixUp (the ``NoMixHook`` switches them off from the first epoch);
- ``no-affine-hsv``: without the Albu ``Affine`` and ``HueSaturationValue`` (flips kept);
- ``l1-boxes``: PLAIN_CONFIG's head (CenterNet's L1 size and offset regression) instead of TTFNet's GIoU;
- ``ema``: with weight EMA for validation and the saved model (mmengine's ``MomentumAnnealingEMA``,
  momentum ``max(0.0002, 10 / (10 + step))``: it averages about the last tenth of the steps so far, so
  a short schedule does not validate its early weights).

Each variant's full config is written to ``WORK_DIR/VARIANT/config.py`` and trained there with
``tools/train.py`` (so one row is re-run with ``python tools/train.py WORK_DIR/VARIANT/config.py``);
a finished variant is not trained again. The table holds each run's last validation (``coco/*`` in
mmengine's ``scalars.json``) and its wall time.
"""
import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

from mmengine.config import Config

from det.engine.config import load_config

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ('plain', 'recipe', 'no-mixup', 'no-mosaic', 'no-affine-hsv', 'l1-boxes', 'ema')
COLUMNS = ('AP', 'AP50', 'AP75', 'AP_vt', 'AP_t', 'AP_s', 'AP_m', 'AP_l')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the recipe config')
    parser.add_argument('--plain', required=True, help='the same model without the recipe')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--work-dir', help='default: work_dirs/recipe_ablation/<recipe config name>')
    parser.add_argument('--data-root', help="passed to tools/train.py (e.g. BCCD's folder)")
    parser.add_argument('--epochs', type=int, help='passed to tools/train.py')
    return parser.parse_args(argv)


def _mix_dataset(cfg: Config) -> dict:
    dataset = cfg.train_dataloader.dataset
    if dataset.get('type') != 'MultiImageMixDataset':
        raise ValueError(f"{cfg.filename}: the training dataset is {dataset.get('type')}, not the "
                         'MultiImageMixDataset of a recipe config')
    return dataset


def _without(transforms: list, types: set) -> list:
    kept = [t for t in transforms if t['type'] not in types]
    if len(kept) == len(transforms):
        raise ValueError(f'no transform of type {sorted(types)} to take out')
    return kept


def _no_mix_hook(cfg: Config) -> dict:
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'NoMixHook']
    if not hooks:
        raise ValueError(f'{cfg.filename} has no NoMixHook')
    return hooks[0]


def variant_config(name: str, recipe: Config, plain: Config, epochs: int = None) -> Config:
    """The config of one variant (a copy; the inputs are left as they are); ``epochs`` is the length the
    run will be given (``--epochs``), default the recipe's own."""
    if name == 'plain':
        return copy.deepcopy(plain)
    cfg = copy.deepcopy(recipe)
    dataset = _mix_dataset(cfg)
    if name == 'no-mixup':
        dataset.pipeline = _without(dataset.pipeline, {'MixUp'})
        hook = _no_mix_hook(cfg)       # it may only name transforms the pipeline still has
        keys = hook.get('skip_type_keys', ('Mosaic', 'MixUp'))
        hook.skip_type_keys = tuple(k for k in keys if k != 'MixUp')
    elif name == 'no-mosaic':
        _no_mix_hook(cfg).num_last_epochs = epochs or cfg.train_cfg.max_epochs
    elif name == 'no-affine-hsv':
        albu = [t for t in dataset.pipeline if t['type'] == 'Albu']
        if not albu:
            raise ValueError(f'{recipe.filename} has no Albu step')
        albu[0].transforms = _without(albu[0].transforms, {'Affine', 'HueSaturationValue'})
    elif name == 'l1-boxes':
        cfg.model.head = copy.deepcopy(plain.model.head)
    elif name == 'ema':
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=0.0002, gamma=10)]
    elif name != 'recipe':
        raise ValueError(f'unknown variant {name!r}; known: {VARIANTS}')
    return cfg


def last_validation(work_dir: Path) -> dict:
    """The last ``coco/*`` record of the run's ``scalars.json`` files (empty if none)."""
    last = {}
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if 'coco/AP' in record:
                last = record
    return last


def run_variant(name: str, cfg: Config, work: Path, args) -> dict:
    folder = work / name
    done = folder / 'result.json'
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / 'config.py'
    cfg.dump(str(config_path))
    cmd = [sys.executable, 'tools/train.py', str(config_path), '--work-dir', str(folder)]
    if args.data_root:
        cmd += ['--data-root', args.data_root]
    if args.epochs:
        cmd += ['--epochs', str(args.epochs)]
    print(f'[{name}] {" ".join(cmd)}', flush=True)
    start = time.time()
    with open(folder / 'train.log', 'w') as log:
        code = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f'error: variant {name} failed (exit {code}); see {folder / "train.log"}')
    scores = {key.split('/', 1)[1]: value for key, value in last_validation(folder).items()
              if key.startswith('coco/')}
    result = dict(variant=name, seconds=time.time() - start, **scores)
    done.write_text(json.dumps(result))
    return result


def table(results: list) -> str:
    header = '| variant | time | ' + ' | '.join(COLUMNS) + ' |'
    rows = [header, '|' + '---|' * (len(COLUMNS) + 2)]
    for r in results:
        minutes, seconds = divmod(round(r['seconds']), 60)
        values = ' | '.join(f"{r.get(c, float('nan')):.3f}" for c in COLUMNS)
        rows.append(f"| {r['variant']} | {minutes} min {seconds:02d} s | {values} |")
    return '\n'.join(rows)


def main(argv=None):
    args = parse_args(argv)
    recipe, plain = load_config(args.config), load_config(args.plain)
    work = Path(args.work_dir or REPO / 'work_dirs' / 'recipe_ablation' / Path(args.config).stem).resolve()
    # Every variant's config is built first, so a config that does not fit fails before any training.
    configs = {name: variant_config(name, recipe, plain, args.epochs) for name in args.variants}
    results = [run_variant(name, cfg, work, args) for name, cfg in configs.items()]
    print(f'\n{args.config} (plain: {args.plain}), epochs: {args.epochs or "as configured"}\n')
    print(table(results))


if __name__ == '__main__':
    main()
