"""Check a config's datasets before training: every image file and annotation, and the config against
the data, in one table that names the files.

    python tools/analysis/check_dataset.py CONFIG [--split train|val|test ...] [--data-root DIR]
        [--all-files] [--no-cache] [--work-dir D] [--cfg-options k=v ...]

Reported per split: missing and unreadable images (with the reason), images cut short that are read
as a viewer reads them (``truncated image, read``), images whose size differs from the annotated one,
invalid boxes (dropped) and boxes clipped to the image, annotations of categories the dataset does not
know (skipped), images without boxes, byte-identical duplicate files (also between train and val /
test). Errors that would stop ``tools/train.py``: a head's ``num_classes`` other than the dataset's
class count, an evaluator ``ann_file`` that does not describe its dataset, classes that differ between
splits, and, with ``strict_data = True`` in the config, unreadable images in a test-mode dataset
(otherwise a run leaves them out of evaluation). ``tools/train.py`` runs the same check before its
first step. Training images are checked from their headers and end markers unless ``--all-files``;
test-mode datasets are decoded. Image results are cached by file size and modification time in
``<work_dir>/dataset_check_cache.json`` (the same file training uses), so a second check is instant.

Exit status: 0 when nothing was found, 1 when the data has problems, 2 when the config does not fit
its data.
"""
import argparse
import os.path as osp
import sys
import time

from mmengine.config import DictAction

from det.engine.config import add_data_root_options, load_config, use_data_options
from det.engine.preflight import CHECK_CACHE_NAME, check_run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Check a config's datasets and the config against them.")
    parser.add_argument('config')
    parser.add_argument('--split', nargs='+', choices=['train', 'val', 'test'], default=['train', 'val'],
                        help='splits to check (default: train val)')
    add_data_root_options(parser)  # --data-root DIR [--train-ann, --val-ann, --classes], as tools/train.py
    parser.add_argument('--all-files', action='store_true',
                        help='decode every image (default: training images from their headers) and name '
                             'every file (default: 5 per row)')
    parser.add_argument('--no-cache', action='store_true', help='read every image even if cached')
    parser.add_argument('--work-dir', help='where the cache lives (default: as tools/train.py)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    try:
        use_data_options(cfg, args, split=args.split[0])
    except ValueError as error:  # a --data-root folder that cannot serve the config's datasets
        sys.exit(f'error: {error}')
    cache_file = None if args.no_cache else osp.join(cfg.work_dir, CHECK_CACHE_NAME)
    start = time.perf_counter()
    result = check_run(cfg, tuple(args.split), check_images=True, cache_file=cache_file,
                       max_files=None if args.all_files else 5, decode_all=args.all_files)
    print(result.table)
    for error in result.errors:
        print(f'error: {error}')
    cached = f' (cache: {cache_file})' if cache_file else ''
    print(f'checked in {time.perf_counter() - start:.1f} s{cached}')
    if result.errors:
        return 2
    return 1 if result.has_problems else 0


if __name__ == '__main__':
    sys.exit(main())
