"""Train a detector from a config: ``python tools/train.py CONFIG [--work-dir D] [--data-root DIR
[--train-ann F] [--val-ann F] [--classes NAME ...]] [--epochs N] [--resume [CKPT]] [--amp]
[--skip-data-check | --all-files] [--strict-data] [--cfg-options k=v ...]``.

``--data-root DIR`` trains on a COCO or VOC folder that no config names (docs/own_data.md): datasets of
another format are replaced by the folder's, and the classes and the heads' ``num_classes`` come from
its annotations. A head that leaves ``num_classes`` out gets the train dataset's class count. A config
that sets ``min_train_iters`` (the fine-tuning configs for one's own data) trains more epochs than its
``train_cfg`` says on a train split too small to give it that many steps (``--epochs N`` chooses). At
the end the log gives the commands that test and draw the result (the work dir stands for its best
checkpoint).

Before the first step the datasets and the config are checked against each other
(``det.engine.preflight.check_before_run``): a table of data problems is logged, and a head's
``num_classes`` or an evaluator ``ann_file`` that does not fit the data stops the run at once. Training
images are checked from their headers (``--all-files`` decodes them all; an image whose pixel data is
broken behind a sound header is skipped and named by the loader when training reaches it); validation
images are decoded, and one that cannot be read is left out of evaluation, which the metric reports
("evaluated on 31 of 32 images; 1 unreadable"), unless ``--strict-data`` (or ``strict_data = True`` in
the config) makes it stop the run as an error.

Several processes (GPUs, or CPUs with gloo), one or more nodes: ``tools/dist_train.sh CONFIG N [args]``,
i.e. ``torchrun --nproc_per_node N tools/train.py CONFIG --launcher pytorch [args]``.
"""
import argparse
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import det.engine  # noqa: F401  (registers the atomic checkpoint backend and det's hooks)
from det.engine import (
    apply_machine_defaults,
    check_checkpoint_matches,
    close_distributed,
    find_resume_checkpoint,
    setup_distributed,
    use_safe_checkpoints,
)
from det.engine.checkpoints import load_checkpoint_safely
from det.engine.config import (
    add_data_root_options,
    fit_epochs_to_min_iters,
    load_config,
    set_max_epochs,
    use_data_options,
)
from det.engine.preflight import DataCheckError, check_before_run
from det.models.utils import describe_trainable


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector.')
    parser.add_argument('config', help='config file, e.g. configs/yolo_v1.py')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    add_data_root_options(parser)
    parser.add_argument('--epochs', type=int, metavar='N',
                        help="train N epochs; the config's epoch-based schedule (cosine end, T_max) is "
                             'stretched or shrunk to end at epoch N (default: the config\'s epochs, or '
                             'more on a small train split when the config sets min_train_iters)')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='do not read every image before training (the config checks still run)')
    parser.add_argument('--all-files', action='store_true',
                        help='decode every training image in the data check (default: read its header '
                             'and end marker; validation images are always decoded)')
    parser.add_argument('--strict-data', action='store_true',
                        help='stop when a validation image cannot be read (default: leave it out of '
                             'evaluation and say so); same as strict_data = True in the config')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the newest checkpoint in the work dir if no CKPT')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bf16 autocast on CPU, fp16 on CUDA')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    use_safe_checkpoints(cfg)  # atomic, weights-only-loadable checkpoints; a stop on non-finite losses
    try:
        use_data_options(cfg, args, split='train')
    except ValueError as error:  # FolderFormatError: the folder cannot serve the config's datasets
        sys.exit(f'error: {error}')
    if args.epochs is not None:
        try:
            changes = set_max_epochs(cfg, args.epochs)
        except ValueError as error:
            sys.exit(f'error: --epochs: {error}')
        print_log('--epochs: ' + ', '.join(changes), logger='current')
    else:  # a fine-tuning config's min_train_iters: more epochs on a small train split
        world_size = int(os.environ.get('WORLD_SIZE', 1)) if args.launcher != 'none' else 1
        for line in fit_epochs_to_min_iters(cfg, world_size):
            print_log(line, logger='current')
    if args.strict_data:
        cfg.strict_data = True
    cfg.launcher = args.launcher
    setup_distributed(cfg)  # gloo without CUDA; mmengine's own nccl set-up with it
    if args.amp:  # fp16 with dynamic loss scaling on CUDA; bf16 autocast (no scaling needed) on CPU
        if torch.cuda.is_available():
            cfg.optim_wrapper.update(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')
        else:
            cfg.optim_wrapper.update(type='AutocastOptimWrapper', dtype='bfloat16')
    # Loader processes and glibc's freed-memory setting for this machine (det/engine/machine.py).
    apply_machine_defaults(cfg)
    resume_from = None
    if args.resume == 'auto':
        resume_from = find_resume_checkpoint(cfg.work_dir)
        if resume_from is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir}, starting from scratch',
                      logger='current', level=logging.WARNING)
    elif args.resume is not None:
        resume_from = args.resume
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    runner = Runner.from_cfg(cfg)
    try:
        check_before_run(cfg, ('train', 'val'), check_images=not args.skip_data_check,
                         decode_all=args.all_files)
    except DataCheckError as error:
        sys.exit(f'error: {error}')
    if resume_from is not None:
        check_checkpoint_matches(runner.model, resume_from)
    elif cfg.get('load_from'):
        load_checkpoint_safely(cfg.load_from)  # a clear error now rather than mmengine's unpickling one
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    print_log(describe_trainable(model.train()), logger='current')
    runner.train()
    if is_main_process():
        print_log(next_steps(runner), logger='current')
    close_distributed()


def next_steps(runner) -> str:
    """The commands that test and draw what this run trained, by its work dir (``checkpoint_to_test``
    picks the best checkpoint there) and the config as it ran (the data's classes in it)."""
    config = osp.join(runner.work_dir, osp.basename(runner.cfg.filename or f'{runner.timestamp}.py'))
    return (f'trained; checkpoints in {runner.work_dir}. Next:\n'
            f'  python tools/test.py {config} {runner.work_dir}\n'
            f'  python tools/demo.py {config} {runner.work_dir} photo.jpg my_photos/ --out-dir demo_out')


if __name__ == '__main__':
    main()
