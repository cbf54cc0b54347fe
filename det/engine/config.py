"""Config handling shared by det's tools, ``det.apis`` and ``det.analysis``: loading with overrides (one
:func:`load_config` for all of them), the schedule stretch of ``--epochs``, and ``--data-root`` (a
dataset folder for every split, its classes and the heads' class counts). The checks that run before
the first step are in :mod:`det.engine.preflight`, det's checkpoint policy in
:func:`det.engine.checkpoints.use_safe_checkpoints`."""
import copy
import inspect
import math
import os.path as osp
import warnings
from pathlib import Path

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from det.datasets.folders import (
    FolderData,
    FolderFormatError,
    detect_folder,
    format_names,
)
from det.engine.schedules import end_schedules_with_training
from det.registry import DATASETS, MODELS


def load_config(config, cfg_options: dict = None, work_dir: str = None) -> Config:
    """The one config loader of det's tools, ``det.apis`` and ``det.analysis``: read ``config`` (a path,
    or an mmengine ``Config``, which is copied, not modified), apply ``--cfg-options`` overrides, end the
    by-epoch schedulers that leave ``end`` out at ``train_cfg.max_epochs``, default the registry scope to
    ``'det'`` and settle the work dir (``--work-dir`` > the config's ``work_dir`` > ``work_dirs/<config
    name>``). Nothing else is changed: a training run adds det's checkpoint policy itself
    (:func:`det.engine.checkpoints.use_safe_checkpoints`)."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        name = osp.splitext(osp.basename(cfg.filename or 'config'))[0]
    elif isinstance(config, (str, Path)):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        cfg = Config.fromfile(str(config))
        name = osp.splitext(osp.basename(str(config)))[0]
    else:
        raise TypeError(f'config must be a path or an mmengine Config, got {type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    end_schedules_with_training(cfg)
    cfg.setdefault('default_scope', 'det')
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', name)
    return cfg


def set_max_epochs(cfg: Config, epochs: int) -> list:
    """Train for ``epochs`` epochs with the schedule stretched to match: ``train_cfg.max_epochs`` and every
    epoch-based ``param_scheduler`` entry that ended at the old last epoch (its ``end``, and a cosine's
    ``T_max``) move to the new one, so the whole curve runs over the new epochs: a shorter run is not cut
    off at a high rate and a longer one does not sit at the floor. A ``val_interval`` equal to the old
    last epoch (validate at the end only) moves with it. Iteration-based warm-ups and schedulers ending
    earlier stay as they are.
    Returns the changes made, as ``key: old -> new`` strings (for the log)."""
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    train_cfg = cfg.get('train_cfg') or {}
    old = train_cfg.get('max_epochs')
    if old is None:
        raise ValueError('the config trains by iterations (train_cfg has no max_epochs); set '
                         'train_cfg.max_iters through --cfg-options instead')
    changes = [f'train_cfg.max_epochs: {old} -> {epochs}']
    cfg.train_cfg.max_epochs = epochs
    if train_cfg.get('val_interval') == old:
        cfg.train_cfg.val_interval = epochs
        changes.append(f'train_cfg.val_interval: {old} -> {epochs}')
    schedulers = cfg.get('param_scheduler') or []
    for index, scheduler in enumerate(schedulers if isinstance(schedulers, list) else [schedulers]):
        if not scheduler.get('by_epoch', True) or scheduler.get('end') != old:
            continue
        for key in ('end', 'T_max'):
            if scheduler.get(key) == old:
                scheduler[key] = epochs
                changes.append(f'param_scheduler.{index}.{key}: {old} -> {epochs}')
    return changes


def epochs_for_min_iters(num_images: int, batch_size: int, epochs: int, min_iters: int,
                         world_size: int = 1) -> int:
    """The epochs a run of ``epochs`` needs to take at least ``min_iters`` optimizer steps on
    ``num_images`` training images in batches of ``batch_size`` per process (the last batch kept, as
    mmengine's loaders do): ``epochs`` when those already reach it, more on a small dataset."""
    if num_images < 1:
        raise ValueError('the train split has no images')
    steps_per_epoch = math.ceil(num_images / (batch_size * world_size))
    return max(epochs, math.ceil(min_iters / steps_per_epoch))


def fit_epochs_to_min_iters(cfg: Config, world_size: int = 1) -> list:
    """``min_train_iters = K`` in a config: train at least K steps whatever the data's size, by training
    more epochs than ``train_cfg.max_epochs`` on a small train split (the schedule stretched as by
    ``--epochs``). A fine-tuning recipe needs a number of steps, not of epochs: 6 epochs of 150 photos are
    120 steps, too few for the head to learn, while 6 epochs of 2,000 are plenty. Builds the train
    dataset to count its images. Returns the log lines (none when the config sets no minimum)."""
    min_iters = cfg.get('min_train_iters')
    if not min_iters:
        return []
    loader = cfg.train_dataloader
    dataset = build_dataset_quietly(loader['dataset'], cfg.get('default_scope', 'det'))
    old = cfg.train_cfg.max_epochs
    epochs = epochs_for_min_iters(len(dataset), loader['batch_size'], old, min_iters, world_size)
    steps = math.ceil(len(dataset) / (loader['batch_size'] * world_size))
    line = (f'min_train_iters={min_iters}: {len(dataset)} training images make {steps} steps per epoch '
            f'(batch {loader["batch_size"]}{f" x {world_size} processes" if world_size > 1 else ""})')
    if epochs == old:
        return [f'{line}; the {old} epochs of the config are {old * steps} steps']
    return [f'{line}; training {epochs} epochs ({epochs * steps} steps) instead of {old} '
            '(--epochs N chooses)'] + set_max_epochs(cfg, epochs)


SPLITS = ('train', 'val', 'test')


def leaf_dataset_cfgs(dataset_cfg) -> list:
    """The dataset configs under mmengine's wrappers (``ConcatDataset.datasets``,
    ``RepeatDataset.dataset``, ...), or ``[dataset_cfg]`` itself."""
    if 'datasets' in dataset_cfg:
        return [leaf for d in dataset_cfg['datasets'] for leaf in leaf_dataset_cfgs(d)]
    if isinstance(dataset_cfg.get('dataset'), dict):
        return leaf_dataset_cfgs(dataset_cfg['dataset'])
    return [dataset_cfg]


def metric_cfgs(evaluator_cfg) -> list:
    """The metric configs of an evaluator config (a dict, a list, or ``dict(type='Evaluator',
    metrics=...)``)."""
    if evaluator_cfg is None:
        return []
    if isinstance(evaluator_cfg, (list, tuple)):
        return [m for e in evaluator_cfg for m in metric_cfgs(e)]
    if 'metrics' in evaluator_cfg:
        return metric_cfgs(evaluator_cfg['metrics'])
    return [evaluator_cfg]


def _split_leaves(cfg: Config) -> dict:
    """``{split: dataset configs under its loader's wrappers}`` for the splits that have a dataset."""
    return {split: leaf_dataset_cfgs(cfg[f'{split}_dataloader']['dataset']) for split in SPLITS
            if (cfg.get(f'{split}_dataloader') or {}).get('dataset')}


def _move_roots(cfg: Config, data_root: str) -> None:
    """Point the train, val and test datasets (under any dataset wrappers) at ``data_root``, keeping
    everything else. A relative evaluator ``ann_file`` is read from the evaluated dataset's
    ``data_root`` already, so it follows; an absolute one under the split's previous root (e.g.
    ``data_root + '/ann.json'`` in the config) is moved to the same place under the new root."""
    old_roots = {}  # every root first: configs often share one dict between val and test
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('dataset'):
            leaves = leaf_dataset_cfgs(loader['dataset'])
            old_roots[split] = [osp.abspath(d['data_root']) for d in leaves if d.get('data_root')]
            for dataset_cfg in leaves:
                dataset_cfg['data_root'] = data_root
    for split in ('val', 'test'):
        for metric in metric_cfgs(cfg.get(f'{split}_evaluator')):
            ann_file = metric.get('ann_file')
            if not ann_file or not osp.isabs(ann_file):
                continue
            for old_root in old_roots.get(split, []):
                rel = osp.relpath(osp.normpath(ann_file), old_root)
                if not rel.startswith('..'):
                    metric['ann_file'] = osp.join(osp.abspath(data_root), rel)
                    break


# Where a dataset config says which files it reads; replaced by a folder's own.
_LOCATION_KEYS = ('data_root', 'ann_file', 'data_prefix', 'split', 'metainfo', 'data_yaml', 'images')
# What a dataset config says about how it is used; kept when the dataset type is replaced.
_USAGE_KEYS = ('pipeline', 'test_mode', 'filter_empty_gt', 'serialize_data', 'lazy_init', 'max_refetch',
               'indices', 'backend_args')


def _use_folder(cfg: Config, folder: FolderData, classes=None) -> list:
    """Replace the location of every train / val / test dataset by ``folder``'s (test reads val), and
    point the evaluators at its annotations. Returns the log lines."""
    leaves = _split_leaves(cfg)
    config_classes = _config_classes(cfg, folder.dataset_type)
    lines = [f'--data-root: a {folder.format} dataset, {folder.root}: ' + '; '.join(folder.files)]
    if config_classes and not _classes_fit(config_classes, folder):
        lines.append(f"--data-root: the config's classes {config_classes} are not all in the data; "
                     "the data's are used (--classes chooses others)")
        config_classes = None
    source = ('--classes' if classes else 'the config' if config_classes else 'the annotations')
    classes = tuple(classes or config_classes or folder.classes)
    lines.append(f'--data-root: {len(classes)} classes (from {source}): {", ".join(classes)}')
    replaced = set()
    for split, split_leaves in leaves.items():
        location = folder.train if split == 'train' else folder.val
        for leaf in split_leaves:
            if leaf.get('type') == folder.dataset_type:
                kept = {k: v for k, v in leaf.items() if k not in _LOCATION_KEYS + ('type',)}
            else:
                replaced.add(leaf.get('type'))
                kept = {k: v for k, v in leaf.items() if k in _USAGE_KEYS}
            leaf.clear()
            leaf.update(dict(type=folder.dataset_type, **location, metainfo=dict(classes=classes), **kept))
    if replaced:
        lines.append(f'--data-root: datasets {sorted(replaced)} replaced by {folder.dataset_type}')
    for split in ('val', 'test'):
        for metric in metric_cfgs(cfg.get(f'{split}_evaluator')):
            if metric.get('type') == 'CocoMetric':
                metric['ann_file'] = folder.eval_ann_file
    lines.append('--data-root: the evaluator scores against '
                 + (folder.eval_ann_file or "the val dataset's own annotations"))
    # Classes the config did not name describe other data than its num_classes did.
    lines += set_num_classes(cfg, len(classes), overwrite=source != 'the config')
    return lines


def _config_classes(cfg: Config, dataset_type: str):
    """The classes the config names for its datasets of ``dataset_type``, or None."""
    return next((tuple(leaf['metainfo']['classes']) for split_leaves in _split_leaves(cfg).values()
                 for leaf in split_leaves if leaf.get('type') == dataset_type
                 and (leaf.get('metainfo') or {}).get('classes')), None)


def _classes_fit(config_classes, folder: FolderData) -> bool:
    """Whether every class the config names occurs in the folder's annotations (a chosen subset of
    the data's classes is fine; a config made for other data is not)."""
    return set(config_classes) <= set(folder.classes)


def _named_ann_file(dataset_cfg) -> str:
    """The annotation file a dataset config names, relative to its ``data_root`` (a VOC dataset's is
    its split list), or None when it names none (e.g. the generated shapes data)."""
    if dataset_cfg.get('type') == 'VOCDataset' and dataset_cfg.get('split'):
        return osp.join('ImageSets', 'Main', f"{dataset_cfg['split']}.txt")
    return dataset_cfg.get('ann_file')


def _config_files_under(cfg: Config, data_root: str) -> bool:
    """Whether every dataset of the config names an annotation file that exists under ``data_root``."""
    leaves = [leaf for split_leaves in _split_leaves(cfg).values() for leaf in split_leaves]
    names = [_named_ann_file(leaf) for leaf in leaves]
    return bool(leaves) and all(name and osp.isfile(osp.join(data_root, name)) for name in names)


def _set_classes(cfg: Config, classes) -> list:
    """Every dataset trains on ``classes`` and every ``num_classes`` is their count; the log lines."""
    classes = tuple(classes)
    for split_leaves in _split_leaves(cfg).values():
        for leaf in split_leaves:
            leaf['metainfo'] = dict(leaf.get('metainfo') or {}, classes=classes)
    return [f'--classes: {len(classes)} classes: {", ".join(classes)}'] \
        + set_num_classes(cfg, len(classes), overwrite=True)


def set_data_root(cfg: Config, data_root: str, train_ann: str = None, val_ann: str = None,
                  classes=None) -> list:
    """``--data-root``: train, validate and test on the folder ``data_root``.

    1. When every dataset of the config names an annotation file (a COCO ``ann_file``, a VOC split) that
       exists under ``data_root``, and the classes it names (if any) all occur in the data, the datasets
       only move there (:func:`_move_roots`): the config says which files to read.
    2. Otherwise, when the folder is in a known format (:mod:`det.datasets.folders`: COCO, VOC, a YOLO
       ``data.yaml``, which ``data_root`` may also name directly), every
       dataset reads it: its train split for training, its val split for validation and testing, the
       evaluators its val annotations. A dataset of another type (e.g. the shapes data of
       ``configs/yolo_v1.py``) is replaced by the folder's (its pipeline and test mode kept), and the
       classes come from the annotations, with every ``num_classes`` of the model set to their count. A
       dataset of the folder's type keeps the classes its config names if the data has them all (a
       config made for other data, e.g. the BCCD configs on your VOC folder, takes the data's).
    3. Any other folder (e.g. one a ``ShapesDataset`` generates into) becomes every dataset's
       ``data_root``, as in 1.

    Args:
        train_ann, val_ann: annotation files relative to ``data_root`` when they differ from the
            convention (a COCO json; a VOC ``ImageSets/Main/NAME.txt``); they select case 2.
        classes: class names (and order) to train on, instead of the annotations' or the config's.

    Returns the log lines saying what changed. Raises :class:`det.datasets.folders.FolderFormatError`
    when the folder cannot serve the config's datasets.
    """
    files_under = not (train_ann or val_ann) and _config_files_under(cfg, data_root)
    try:
        folder = detect_folder(data_root, train_ann, val_ann)
    except FolderFormatError:
        if not files_under:
            raise
        folder = None  # the config's own file names serve where the conventions do not
    config_classes = folder and _config_classes(cfg, folder.dataset_type)
    if files_under and (classes or not config_classes or _classes_fit(config_classes, folder)):
        _move_roots(cfg, data_root)
        return [f"--data-root: every dataset reads its config's annotation files under {data_root}"] \
            + (_set_classes(cfg, classes) if classes else [])
    if folder is not None:
        return _use_folder(cfg, folder, classes)
    if train_ann or val_ann or classes:
        what = 'does not exist' if not osp.isdir(data_root) else 'is in none of the formats det reads'
        raise FolderFormatError(f'--data-root {data_root} {what} ({format_names()}), so --train-ann, '
                                '--val-ann and --classes cannot apply')
    _move_roots(cfg, data_root)
    return [f'--data-root: {data_root} is in no format det recognises ({format_names()}); every dataset '
            'reads it with the file names its config gives']


def _num_classes_modules(model_cfg) -> list:
    """``(config key, module dict)`` of every module config in ``model_cfg`` whose class in ``MODELS``
    takes a ``num_classes`` argument."""
    found = []

    def visit(node, key):
        if isinstance(node, dict):
            module = node.get('type')
            if isinstance(module, str):
                try:
                    module = MODELS.get(module)
                except KeyError:  # not a model module (a box coder, an assigner, ...)
                    module = None
            if module is not None and 'num_classes' in inspect.signature(module).parameters:
                found.append((key, node))
            for name, value in node.items():
                visit(value, f'{key}.{name}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{key}[{i}]')
    visit(model_cfg, 'model')
    return found


def set_num_classes(cfg: Config, num_classes: int, overwrite: bool = False) -> list:
    """Set ``num_classes`` on every module of ``cfg.model`` that takes one and leaves it out (or on
    all of them with ``overwrite``). Returns the changes as log lines."""
    lines = []
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'det')):
        modules = _num_classes_modules(cfg.get('model'))
    for key, module in modules:
        old = module.get('num_classes')
        if old is None or (overwrite and old != num_classes):
            module['num_classes'] = num_classes
            lines.append(f'{key}.num_classes: {"unset" if old is None else old} -> {num_classes}')
    return lines


def build_dataset_quietly(dataset_cfg, scope: str):
    """Build (and fully initialise) the dataset of ``dataset_cfg`` with its warnings silenced, for
    reading its records before a run."""
    # The run builds these datasets again and warns there about repaired boxes and skipped
    # annotations; here those findings go into the table instead, so nothing is warned twice.
    # Records are only read here, so mmengine's serialisation of the list (a copy and a gc pass,
    # about half the build time) is skipped.
    dataset_cfg = copy.deepcopy(dataset_cfg)
    for leaf in leaf_dataset_cfgs(dataset_cfg):
        leaf['serialize_data'] = False
    # mmengine's wrappers build what they wrap from the root registry, which finds det's datasets
    # through the default scope, as in the runner.
    with warnings.catch_warnings(), DefaultScope.overwrite_default_scope(scope):
        warnings.simplefilter('ignore')
        dataset = DATASETS.build(dataset_cfg)
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
    return dataset


def leaf_datasets(dataset) -> list:
    """The datasets inside mmengine's wrappers (concat, repeat, ...), or ``[dataset]``."""
    if hasattr(dataset, 'datasets'):
        return [leaf for d in dataset.datasets for leaf in leaf_datasets(d)]
    if hasattr(dataset, 'dataset'):
        return leaf_datasets(dataset.dataset)
    return [dataset]


def fill_num_classes(cfg: Config, split: str = 'train') -> list:
    """One source of truth for the class count: a module of the model that takes ``num_classes`` and
    leaves it out gets the class count of the ``split`` dataset (built to read it). An explicit
    ``num_classes`` is left as it is (:func:`check_run` reports a mismatch). Returns the log lines."""
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'det')):
        missing = [key for key, module in _num_classes_modules(cfg.get('model'))
                   if module.get('num_classes') is None]
    loader = cfg.get(f'{split}_dataloader')
    if not missing or not loader or not loader.get('dataset'):
        return []
    dataset = leaf_datasets(build_dataset_quietly(loader['dataset'], cfg.get('default_scope', 'det')))[0]
    classes = tuple(dataset.metainfo.get('classes', ()))
    return [f'the {split} dataset has {len(classes)} classes: {", ".join(classes)}'] \
        + set_num_classes(cfg, len(classes))


def add_data_root_options(parser) -> None:
    """``--data-root DIR [--train-ann F] [--val-ann F] [--classes NAME ...]`` of tools/train.py and
    tools/test.py (see :func:`set_data_root`)."""
    parser.add_argument('--data-root', metavar='DIR',
                        help='train / test on the dataset folder DIR: a COCO folder (annotations/train.json, '
                             'val.json; images under train/, val/) or a VOC folder (Annotations/, '
                             'JPEGImages/, ImageSets/Main/) or a YOLO data.yaml (DIR itself or in DIR). '
                             'Datasets of another format are replaced and the '
                             "classes and the heads' num_classes come from the data")
    parser.add_argument('--train-ann', metavar='FILE',
                        help='with --data-root: the train annotations relative to DIR, if not found by name '
                             '(a COCO json, or a VOC ImageSets/Main/NAME.txt)')
    parser.add_argument('--val-ann', metavar='FILE',
                        help='with --data-root: the val (and test) annotations relative to DIR')
    parser.add_argument('--classes', nargs='+', metavar='NAME',
                        help='with --data-root: train on these classes, in this order (default: all in '
                             'the annotations, or those the config names)')


def use_data_options(cfg: Config, args, split: str) -> None:
    """Apply :func:`add_data_root_options`' arguments to ``cfg``, then give every module that leaves
    ``num_classes`` out the ``split`` dataset's class count (:func:`fill_num_classes`), logging each
    change."""
    lines = []
    if args.data_root:
        lines += set_data_root(cfg, args.data_root, args.train_ann, args.val_ann, args.classes)
    elif args.train_ann or args.val_ann or args.classes:
        raise ValueError('--train-ann, --val-ann and --classes go with --data-root')
    lines += fill_num_classes(cfg, split)
    for line in lines:
        print_log(line, logger='current')
