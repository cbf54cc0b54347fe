"""The checks that run before the first step of a training or test run: the datasets are built and
checked (missing, unreadable, cut-short images, invalid boxes, unknown categories, duplicates), and the
config against them (evaluator annotations, train/val classes, heads' class counts), so a wrong config
or broken data fails in seconds instead of after an epoch."""
import json
import logging
import os.path as osp
from dataclasses import dataclass, field

from mmengine.config import Config
from mmengine.logging import print_log

from det.datasets.checks import (
    DUPLICATE,
    ImageCache,
    check_dataset,
    format_report,
    leave_out_of_evaluation,
    shared_files,
)

from .config import build_dataset_quietly, leaf_datasets, metric_cfgs

CHECK_CACHE_NAME = 'dataset_check_cache.json'


class DataCheckError(ValueError):
    """The config and its data do not fit together; raised before the first step."""


@dataclass
class RunCheck:
    """Result of :func:`check_run`: the per-dataset reports, the formatted table, and the errors that
    must stop a run (each a complete message)."""
    reports: list = field(default_factory=list)
    table: str = ''
    errors: list = field(default_factory=list)

    @property
    def has_problems(self) -> bool:
        return bool(self.errors) or any(r.has_problems for r in self.reports)


def _head_class_counts(model_cfg, prefix='model') -> list:
    """``(config key, num_classes)`` of every module config in the model that sets ``num_classes``."""
    found = []
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            if key == 'num_classes':
                found.append((f'{prefix}.num_classes', value))
            else:
                found += _head_class_counts(value, f'{prefix}.{key}')
    elif isinstance(model_cfg, (list, tuple)):
        for i, value in enumerate(model_cfg):
            found += _head_class_counts(value, f'{prefix}[{i}]')
    return found


_INHERITED_ANN_FILE_HINT = (
    "If this ann_file comes from a base config: mmengine merges a child's `val_evaluator = "
    "dict(type='CocoMetric')` into the parent's dict and keeps the parent's ann_file; write "
    "`dict(type='CocoMetric', ann_file=None)` to score against the dataset's own annotations.")


def check_evaluator_annotations(metric_cfg: dict, dataset, evaluator_key: str) -> list:
    """Errors (strings) when a metric's explicit COCO ``ann_file`` does not describe ``dataset``: the file
    is missing, a class of the dataset is not one of its categories, or an image of the dataset is not
    in it under the same id and file name. ``[]`` when the metric has no ``ann_file`` (it then uses the
    dataset's own annotations) or everything matches."""
    ann_file = metric_cfg.get('ann_file')
    if not ann_file:
        return []
    meta = dataset.metainfo
    path = ann_file
    if not osp.isabs(ann_file) and meta.get('data_root'):  # as CocoMetric resolves it
        path = osp.join(meta['data_root'], ann_file)
    what = f"{evaluator_key} {metric_cfg.get('type', 'metric')}(ann_file={ann_file!r})"
    if not osp.isfile(path):
        return [f'{what}: annotation file {path} not found. {_INHERITED_ANN_FILE_HINT}']
    with open(path) as f:
        coco = json.load(f)
    errors = []
    names = {c['name'] for c in coco.get('categories', [])}
    missing = [c for c in meta.get('classes', ()) if c not in names]
    if missing:
        errors.append(f"{what}: the dataset's classes {missing} are not categories of {path} "
                      f'(its categories: {sorted(names)})')
    files = {img['id']: osp.basename(img['file_name']) for img in coco.get('images', [])}
    absent, renamed = [], []
    for i in range(len(dataset)):
        record = dataset.get_data_info(i)
        name = osp.basename(record['img_path'])
        if record['img_id'] not in files:
            absent.append(name)
        elif files[record['img_id']] != name:
            renamed.append(f"{name} (id {record['img_id']} is {files[record['img_id']]} in the json)")
    if absent or renamed:
        found = []
        if absent:
            found.append(f'{len(absent)} of its {len(dataset)} images are not in the json (e.g. '
                         f'{", ".join(absent[:3])})')
        if renamed:
            found.append(f'{len(renamed)} of its image ids name other files there (e.g. '
                         f'{", ".join(renamed[:3])})')
        errors.append(f'{what} does not describe the evaluated dataset {type(dataset).__name__}: '
                      + '; '.join(found) + '.')
    if errors:
        errors[-1] += ' ' + _INHERITED_ANN_FILE_HINT
    return errors


def check_run(cfg: Config, splits=('train', 'val'), check_images: bool = True, cache_file=None,
              max_files=5, decode_all: bool = False) -> RunCheck:
    """Build the datasets of ``splits`` and check them and the config against each other.

    Data findings (:func:`det.datasets.checks.check_dataset`: missing / unreadable / truncated images,
    invalid boxes, unknown categories, duplicates, empty images) go into the table; they stop nothing.
    An unreadable image of a test-mode dataset is left out of evaluation (see
    :func:`check_before_run`), unless the config sets ``strict_data = True``: then it is an error, as its
    pipeline would reject it mid-run. Errors: (strict) a test-mode dataset with unreadable images; train
    and val datasets with different classes; a ``num_classes``
    in the model other than the first split's class count; an evaluator ``ann_file`` that does not
    describe its dataset (see :func:`check_evaluator_annotations`). A dataset without images raises
    while it is built, saying why.

    Args:
        cfg: a loaded config.
        splits: which of train / val / test to check (those without a dataloader are skipped).
        check_images: read every image file (cached); False checks annotations and config only.
        cache_file: json file keeping per-image results by file size and mtime (None: no cache).
        max_files: files named per table row (None: all).
        decode_all: decode every training image too, instead of reading its header (test-mode
            datasets are always decoded).
    """
    result = RunCheck()
    cache = ImageCache(cache_file) if check_images else None
    built = {}
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        try:
            dataset = build_dataset_quietly(loader['dataset'], cfg.get('default_scope', 'det'))
            built[split] = leaf_datasets(dataset)
        except (ValueError, OSError) as error:  # the dataset says why it cannot be built (names, files)
            raise DataCheckError(f'the {split} dataset cannot be built: {error}') from error
    by_split = {}
    for split, datasets in built.items():
        for i, dataset in enumerate(datasets):
            name = split if len(datasets) == 1 else f'{split}[{i}]'
            report = check_dataset(dataset, name, cache, read_images=check_images, decode_all=decode_all)
            result.reports.append(report)
            by_split.setdefault(split, []).append(report)
            if report.test_mode and report.unreadable and cfg.get('strict_data', False):
                result.errors.append(
                    f'{name} dataset {type(dataset).__name__}: {len(report.unreadable)} images cannot be '
                    f'read ({", ".join(report.unreadable[:3])}); a test-mode dataset would stop on them '
                    'mid-run: fix or remove them')
    if cache is not None:
        cache.save()
    extra = []
    if check_images and 'train' in by_split:
        for split in ('val', 'test'):
            for train_report in by_split['train']:
                for report in by_split.get(split, []):
                    shared = shared_files(train_report, report)
                    if shared:
                        extra.append((f'{train_report.name} & {report.name}', DUPLICATE, shared))
    result.table = format_report(result.reports, extra, max_files=max_files)

    classes = {split: tuple(d[0].metainfo.get('classes', ())) for split, d in built.items()}
    for split, datasets in built.items():
        for dataset in datasets[1:]:
            if tuple(dataset.metainfo.get('classes', ())) != classes[split]:
                result.errors.append(f'the {split} datasets have different classes')
    first = next(iter(classes), None)
    for split in classes:
        if classes[split] != classes[first]:
            result.errors.append(f'{split} dataset classes {classes[split]} differ from the {first} '
                                 f'dataset classes {classes[first]}: labels would mean different things')
    if first is not None:
        for key, num in _head_class_counts(cfg.get('model')):
            if num != len(classes[first]):
                result.errors.append(
                    f'{key}={num}, but the {first} dataset has {len(classes[first])} classes '
                    f'{classes[first]}: set num_classes={len(classes[first])}')
    for split in ('val', 'test'):
        if split in built:
            for metric in metric_cfgs(cfg.get(f'{split}_evaluator')):
                result.errors += check_evaluator_annotations(metric, built[split][0], f'{split}_evaluator')
    return result


def check_before_run(cfg: Config, splits=('train', 'val'), check_images: bool = True,
                     decode_all: bool = False) -> RunCheck:
    """:func:`check_run` at the start of a training or test run: log the table (as a warning when the
    data has problems), and raise :class:`DataCheckError` with every error when the run cannot work.
    Unreadable images of test-mode datasets are left out of evaluation (the metric says how many of how
    many images it covers), unless the config sets ``strict_data = True``, which makes them errors.
    Image results are cached in ``<work_dir>/dataset_check_cache.json``, so the check of unchanged data
    is instant."""
    cache_file = osp.join(cfg.work_dir, CHECK_CACHE_NAME) if check_images else None
    result = check_run(cfg, splits, check_images=check_images, cache_file=cache_file, decode_all=decode_all)
    level = logging.WARNING if result.has_problems else logging.INFO
    print_log('Data check (tools/analysis/check_dataset.py lists every file):\n' + result.table,
              logger='current', level=level)
    if result.errors:
        raise DataCheckError('the config does not fit its data:\n- ' + '\n- '.join(result.errors))
    for report in result.reports:
        if report.test_mode and report.unreadable:
            leave_out_of_evaluation(report.unreadable)
            print_log(f'{report.name}: {len(report.unreadable)} of {report.num_images} images cannot be '
                      'read; they are left out of evaluation (strict_data=True / --strict-data stops '
                      'instead)', logger='current', level=logging.WARNING)
    return result
