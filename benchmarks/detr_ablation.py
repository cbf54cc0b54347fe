"""What each DETR convergence lever is worth on the shapes data (issue 28): train one config per lever for
the same number of epochs, one run after the other, and print one table of the final validation scores.

    python benchmarks/detr_ablation.py [--rows NAME ...] [--epochs 2] [--work-dir D] [--data-root DIR]

Rows (all by default). The first three add one lever each to the one before; the others each add one
lever to ``rtdetr`` (the shipped ``configs/rtdetr_efficientnetlite0_320_shapes.py``):

- ``issue10``: ``configs/co_deformable_detr_mobilenetv2_320_shapes.py``, the best DETR of issue 10
  (MobileNetV2-0.5 from scratch, FPN, deformable decoder, two-stage queries, denoising, varifocal loss,
  Co-DETR's auxiliary head);
- ``pretrained``: its backbone replaced by the ImageNet-pretrained EfficientNet-Lite0 (strides 8 / 16 /
  32, as before) with the weights' input normalisation and the backbone at 0.1x the learning rate;
- ``rtdetr``: RT-DETR's lighter encoder: the HybridEncoder neck (attention on the stride-16 map only,
  convolutional fusion to strides 8 / 16) in place of the FPN and DETR's 3 encoder layers;
- ``mosaic``: DEIM's dense one-to-one matching: a 4-image Mosaic at the training size, each image
  shrunk to a quadrant (``scale_range (0.5, 0.5)``: 3x the targets per image,
  tests/datasets/test_dense_matching_mosaic.py), off for the last epoch as DEIM turns it off at the end;
- ``mal``: DEIM's matchability-aware classification loss in place of the varifocal loss;
- ``deim``: both (DEIM as published);
- ``stable-dino``: Stable-DINO's position-supervised loss (weight 6, its configs) and IoU-modulated
  matching cost (beta 0.5) in place of the varifocal loss and the plain cost;
- ``one-to-many``: H-DETR's hybrid matching: 100 more training-only queries matched to each ground truth
  repeated 4 times (``configs/rtdetr_efficientnetlite0_320_shapes_o2m.py``).

Every row's full config is written to ``WORK_DIR/ROW/config.py`` and trained there with
``tools/train.py --epochs N`` (the row is re-run with ``python tools/train.py WORK_DIR/ROW/config.py
--epochs N``); a finished row is not trained again, so two invocations with disjoint ``--rows`` and one
``--work-dir`` can share a machine (``OMP_NUM_THREADS=1`` each) and a last one prints the whole table.
The ``time`` column is each run's wall time, comparable only between rows run the same way.
"""
import argparse
import sys
from pathlib import Path

from mmengine.config import Config

from det.engine.config import load_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))
from recipe_ablation import run_variant, table  # noqa: E402  (benchmarks/ is not a package)

ROWS = ('issue10', 'pretrained', 'rtdetr', 'mosaic', 'mal', 'deim', 'stable-dino', 'one-to-many')
CONFIGS = dict(issue10='configs/co_deformable_detr_mobilenetv2_320_shapes.py',
               rtdetr='configs/rtdetr_efficientnetlite0_320_shapes.py',
               pretrained_backbones='configs/_base_/models/pretrained_backbones.py',
               o2m='configs/rtdetr_efficientnetlite0_320_shapes_o2m.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rows', nargs='+', choices=ROWS, default=list(ROWS))
    parser.add_argument('--epochs', type=int, default=2, help='every row trains this many epochs')
    parser.add_argument('--work-dir', default=str(REPO / 'work_dirs' / 'detr_ablation'))
    parser.add_argument('--data-root', help='the shapes data folder (default: the configs\')')
    return parser.parse_args(argv)


def with_pretrained_backbone(cfg: Config) -> Config:
    """The issue-10 config on the pretrained EfficientNet-Lite0, read at the strides it read before."""
    pretrained = Config.fromfile(str(REPO / CONFIGS['pretrained_backbones']))
    cfg.model.backbone = dict(pretrained.efficientnet_lite0, out_indices=cfg.model.backbone.out_indices)
    cfg.model.data_preprocessor.update(pretrained.lite_input)
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys=dict(backbone=dict(lr_mult=0.1)))
    return cfg


def with_mosaic(cfg: Config) -> Config:
    """Mosaic of 4 images at the training size, each shrunk to a quadrant, before the config's own
    augmentation and packing; off for the last epoch."""
    plain = cfg.train_dataloader.dataset
    load, rest = plain.pipeline[:2], plain.pipeline[2:]
    if [t['type'] for t in load] != ['LoadImageFromFile', 'LoadAnnotations']:
        raise ValueError(f'{cfg.filename}: the training pipeline does not start by loading the image and '
                         'its annotations')
    mosaic = dict(type='Mosaic', img_scale=tuple(cfg.img_scale), center_ratio_range=(0.4, 0.6),
                  scale_range=(0.5, 0.5), min_bbox_size=2.0, min_area_ratio=0.2)
    cfg.train_dataloader.dataset = dict(type='MultiImageMixDataset', pipeline=[mosaic, *rest],
                                        dataset=dict(plain, pipeline=load))
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='NoMixHook', num_last_epochs=1, skip_type_keys=('Mosaic',))]
    return cfg


def with_class_loss(cfg: Config, loss: dict, iou_modulation: float = 0.0) -> Config:
    cfg.model.head.loss_cls = loss
    if iou_modulation:
        cfg.model.head.matcher.iou_modulation = iou_modulation
    return cfg


def row_config(name: str) -> Config:
    """The config of one row (loaded afresh)."""
    if name == 'issue10':
        return load_config(str(REPO / CONFIGS['issue10']))
    if name == 'pretrained':
        return with_pretrained_backbone(load_config(str(REPO / CONFIGS['issue10'])))
    if name == 'one-to-many':
        return load_config(str(REPO / CONFIGS['o2m']))
    cfg = load_config(str(REPO / CONFIGS['rtdetr']))
    mal = dict(type='MatchabilityAwareLoss')
    if name == 'mosaic':
        return with_mosaic(cfg)
    if name == 'mal':
        return with_class_loss(cfg, mal)
    if name == 'deim':
        return with_class_loss(with_mosaic(cfg), mal)
    if name == 'stable-dino':
        return with_class_loss(cfg, dict(type='PositionSupervisedLoss', loss_weight=6.0), iou_modulation=0.5)
    if name != 'rtdetr':
        raise ValueError(f'unknown row {name!r}; known: {ROWS}')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    work = Path(args.work_dir).resolve()
    # Every row's config is built first, so one that does not load fails before any training.
    configs = {name: row_config(name) for name in args.rows}
    results = [run_variant(name, cfg, work, args) for name, cfg in configs.items()]
    print(f'\nDETR levers on the shapes data, {args.epochs} epochs each\n')
    print(table(results))


if __name__ == '__main__':
    main()
