"""Evaluate a trained detector: ``python tools/test.py CONFIG CKPT|WORK_DIR [--data-root DIR [--val-ann F]
[--classes NAME ...]] [--out dets.json] [--show-dir DIR] [--no-fuse] [--strict-data]``.

``--data-root`` works as in tools/train.py (the folder's val split is tested). Progress is logged about
ten times on the way.

The test set is checked first (``det.engine.preflight.check_before_run``, the table cached in the work
dir): an image that cannot be read is named there and left out of evaluation, and the metric says what
it covers ("evaluated on 31 of 32 images; 1 unreadable, listed above": printed, and as
``coco/coverage``, ``coco/images_evaluated``, ``coco/images_unreadable`` in the run's json,
``<work_dir>/<timestamp>/<timestamp>.json``). ``--strict-data`` (or ``strict_data = True`` in the
config) stops on such an image instead.

Prints the COCO metric table with the size tiers and per-class AP, optionally writes the detections in
COCO result format and draws predictions beside ground truth. BatchNorms are folded into their
convolutions after the checkpoint is loaded (``FuseConvBNHook``), as ``det.apis.init_detector`` does:
the same detections within float rounding, faster.
"""
import argparse
import math
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmengine.runner import Runner

import det.engine  # noqa: F401  (registers det's hooks and the atomic checkpoint backend)
from det.engine import check_checkpoint_matches, checkpoint_to_test, close_distributed, setup_distributed
from det.engine.config import add_data_root_options, load_config, metric_cfgs, use_data_options
from det.engine.machine import apply_machine_defaults
from det.engine.preflight import DataCheckError, check_before_run
from det.inference import parse_tta_options, tta_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a detector.')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='a .pth file, or a work dir: its best checkpoint, else its latest')
    parser.add_argument('--out', help='write the detections as a COCO-format result json here')
    parser.add_argument('--show-dir', help='save ground truth beside predictions for every image here')
    parser.add_argument('--tta', nargs='+', metavar='KEY=VALUE',
                        help='test-time augmentation, e.g. scales=0.5,1,2 flip=1 merge=wbf; keys: scales, '
                             'flip, merge (nms|soft_nms|wbf), iou_thr, sigma, min_score, decay, sizes, '
                             'max_per_img')
    parser.add_argument('--no-fuse', action='store_true',
                        help='keep the BatchNorms (default: fold them into the convolutions before testing)')
    parser.add_argument('--show-score-thr', type=float, default=0.3)
    parser.add_argument('--work-dir')
    add_data_root_options(parser)
    parser.add_argument('--strict-data', action='store_true',
                        help='stop when a test image cannot be read (default: leave it out of evaluation '
                             'and say so); same as strict_data = True in the config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def set_outfile_prefix(evaluator_cfg, prefix: str) -> None:
    """Have the test evaluator's first ``CocoMetric`` (``test_evaluator`` a dict, a list of metrics, or
    ``dict(type='Evaluator', metrics=...)``, as mmengine accepts) write its detections to
    ``{prefix}.bbox.json``."""
    coco = [m for m in metric_cfgs(evaluator_cfg) if m.get('type') in ('CocoMetric', 'det.CocoMetric')]
    if not coco:
        types = [m.get('type') for m in metric_cfgs(evaluator_cfg)]
        sys.exit(f'error: --out needs a CocoMetric in test_evaluator, which has {types}')
    coco[0]['outfile_prefix'] = prefix


def log_progress(runner, times: int = 10) -> None:
    """Log the test loop's progress (batches done, time left) about ``times`` times: with the runtime's
    logger interval (20 batches) a test set of fewer batches would be silent until its metrics."""
    batches = len(runner.test_dataloader)
    for hook in runner.hooks:
        if isinstance(hook, LoggerHook):
            hook.interval = max(1, min(hook.interval, math.ceil(batches / times)))


def main(argv=None):
    args = parse_args(argv)
    # A mistyped checkpoint path stops the tool now, not after the model and datasets are built.
    try:
        args.checkpoint = checkpoint_to_test(args.checkpoint)
    except FileNotFoundError as error:
        sys.exit(f'error: {error}')
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    try:
        use_data_options(cfg, args, split='test')
    except ValueError as error:  # FolderFormatError: the folder cannot serve the config's datasets
        sys.exit(f'error: {error}')
    if args.strict_data:
        cfg.strict_data = True
    cfg.launcher = args.launcher
    setup_distributed(cfg)  # gloo without CUDA; mmengine's own nccl set-up with it
    cfg.load_from = args.checkpoint
    prefix = None
    if args.out:
        # CocoMetric writes {prefix}.bbox.json (and {prefix}.gt.json when the ground truth is not a
        # COCO json, e.g. VOC data, so tools/eval_dets.py can score the detections later).
        prefix = args.out[:-len('.json')] if args.out.endswith('.json') else args.out
        set_outfile_prefix(cfg.test_evaluator, prefix)
    hooks = list(cfg.get('custom_hooks') or [])  # a config may set none
    if args.show_dir:
        hooks.append(dict(type='ShowPredictionsHook', out_dir=osp.abspath(args.show_dir),
                          score_thr=args.show_score_thr))
    if not args.no_fuse:
        hooks.append(dict(type='FuseConvBNHook'))
    cfg.custom_hooks = hooks
    if args.tta:
        try:
            tta_config(cfg, **parse_tta_options(args.tta))
        except ValueError as error:
            sys.exit(f'error: {error}')
    apply_machine_defaults(cfg)  # loader processes, glibc's freed-memory setting (det/engine/machine.py)
    runner = Runner.from_cfg(cfg)
    # The test set's images, annotations, classes and evaluator against each other and the model;
    # unreadable images are left out of the evaluation (or stop it with --strict-data).
    try:
        check_before_run(cfg, ('test',))
    except DataCheckError as error:
        sys.exit(f'error: {error}')
    log_progress(runner)
    detector = runner.model
    while hasattr(detector, 'module'):  # DDP and TTADetector wrap the detector the checkpoint holds
        detector = detector.module
    check_checkpoint_matches(detector, args.checkpoint)
    metrics = runner.test()
    if prefix is not None and is_main_process():  # only rank 0 computed the metric and wrote the file
        os.replace(f'{prefix}.bbox.json', args.out)
        print(f'detections written to {args.out}')
    close_distributed()
    return metrics


if __name__ == '__main__':
    main()
