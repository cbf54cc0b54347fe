"""Head-to-head in one wall-clock budget: det's config against Ultralytics YOLOv8n, same data, same machine,
both scored by det's COCO evaluation (the code behind ``tools/eval_dets.py``).

    python benchmarks/peer_accuracy.py CONFIG --minutes M [--det-epochs N|auto] [--threads 2] [--work-dir D]
        [--det-options k=v ...] [--yolo-batch 16] [--data-root DIR]

``CONFIG`` is a det experiment config; its train and val datasets (COCO json, a VOC folder such as BCCD,
or the built-in shapes data, under any dataset wrapper) are the data of both runs, or with
``--data-root DIR`` a COCO, VOC or YOLO folder as ``tools/train.py --data-root`` reads it (the own-data
path: ``configs/centernet_efficientnetlite0_fpn_416_own_data.py --data-root DIR``). In one run:

1. det trains ``CONFIG`` with ``tools/train.py`` for at most M minutes (its own schedule, or
   ``--det-epochs N``: ``tools/train.py --epochs N``, the schedule stretched to N epochs, so that it
   fits the budget; a run stopped at the budget is scored at a high learning rate). ``--det-epochs auto``
   first trains one probe epoch outside the budget and takes N that fills 95% of it; the newest epoch
   checkpoint is evaluated with ``tools/test.py --out`` (detections and, for VOC data, ground truth json);
2. YOLOv8n from ``yolov8n.yaml`` (random init, nothing downloaded) trains on the same images, exported in
   YOLO format, with its default recipe and ``time=M/60`` hours (Ultralytics fits its schedule to the
   time), ``imgsz`` = the config's input size, on CPU with ``--threads`` threads; its predictions on the
   val images (conf 0.001, at most 100 per image, original pixels) become COCO results;
3. both are scored against the same ground truth json by ``det.evaluation.evaluate_coco`` and one table
   is printed: AP, AP50, AP75, every size tier, images seen in training.

The two trainings run one after the other, each alone on the machine. ``ultralytics`` is a
benchmark-only dependency (``pip install ultralytics``); det itself never imports it. ``--reuse-yolo``
scores another det config against the YOLOv8n run already in the work dir (same data, minutes, threads
and batch), so comparing several det configs costs one YOLOv8n training.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='det experiment config (its train / val data are used by both)')
    parser.add_argument('--minutes', type=float, required=True, help='training budget of each detector')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads of each training')
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/peer_accuracy/<config name>')
    parser.add_argument('--det-options', nargs='+', default=[], metavar='K=V',
                        help='--cfg-options for det\'s training (e.g. train_cfg.max_epochs=4)')
    parser.add_argument('--det-epochs', type=_epochs_arg, metavar='N|auto',
                        help="det's epochs (tools/train.py --epochs); auto: as many as fit the budget")
    parser.add_argument('--yolo-batch', type=int, default=16)
    parser.add_argument('--data-root', help='train and score both on this folder, as tools/train.py does')
    parser.add_argument('--reuse-yolo', action='store_true',
                        help="reuse the YOLOv8n result of an earlier run in --work-dir with the same data, "
                             "minutes, threads and batch (yolo_run.json) instead of training it again")
    parser.add_argument('--yolo-worker', help=argparse.SUPPRESS)  # internal: run the YOLOv8n part
    return parser.parse_args(argv)


def _epochs_arg(text: str):
    if text == 'auto':
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer or auto, got {text!r}')
    return int(text)


# ------------------------------------------------------------------------------------------- data


def load_split(cfg, split: str):
    """The leaf dataset of ``cfg``'s ``{split}_dataloader`` (wrappers removed), fully initialised."""
    import det.datasets  # noqa: F401  (registers the datasets)
    from det.engine.config import leaf_datasets
    from det.registry import DATASETS
    leaves = leaf_datasets(DATASETS.build(cfg[f'{split}_dataloader']['dataset']))
    if len(leaves) != 1:
        raise ValueError(f'{split}_dataloader.dataset wraps {len(leaves)} datasets; the peer comparison '
                         'exports one')
    dataset = leaves[0]
    dataset.full_init()
    return dataset


def export_yolo(train, val, root: Path) -> Path:
    """Write a YOLO-format copy (image symlinks, normalised cx cy w h labels of the non-ignored boxes)
    and its data yaml; returns the yaml path."""
    import cv2
    for split, dataset in (('train', train), ('val', val)):
        (root / 'images' / split).mkdir(parents=True, exist_ok=True)
        (root / 'labels' / split).mkdir(parents=True, exist_ok=True)
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            src = osp.abspath(info['img_path'])
            dst = root / 'images' / split / f'{i:06d}{Path(src).suffix.lower()}'
            if not dst.exists():
                dst.symlink_to(src)
            width, height = info.get('width'), info.get('height')
            if not width or not height:
                img = cv2.imread(src)
                if img is None:
                    continue
                height, width = img.shape[:2]
            lines = []
            for inst in info['instances']:
                if inst.get('ignore_flag'):
                    continue
                x1, y1, x2, y2 = inst['bbox']
                lines.append(f"{inst['bbox_label']} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                             f'{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}')
            (root / 'labels' / split / f'{i:06d}.txt').write_text('\n'.join(lines))
    names = '\n'.join(f'  {i}: {json.dumps(str(n))}' for i, n in enumerate(train.metainfo['classes']))
    yaml = root / 'data.yaml'
    yaml.write_text(f'path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n')
    return yaml


# ------------------------------------------------------------------------------------------ det run


def run_with_budget(cmd: list, minutes: float, log_path: Path, env=None) -> float:
    """Run ``cmd`` and stop it (SIGINT, then SIGKILL) when ``minutes`` have passed; returns seconds run."""
    start = time.time()
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            proc.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return time.time() - start


def images_seen_det(work_dir: Path, batch_size: int) -> int:
    """Iterations logged in mmengine's scalars.json (to the logger interval) times the batch size."""
    iters = 0
    for path in work_dir.glob('*/vis_data/scalars.json'):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record and 'iter' in record:
                iters = max(iters, int(record['iter']))
    return iters * batch_size


def fit_epochs(args, work: Path, env, opts: list) -> int:
    """The epochs of ``args.config`` that fill 95% of the budget. One probe epoch (validation and
    checkpoint included) is trained first, outside the budget; its training starts when the data check
    writes its cache, so the start-up (imports, data check) counts once and not per epoch. The probe's
    epoch is the run's first, with the one-off kernel set-up, so the estimate errs short."""
    from det.engine.preflight import CHECK_CACHE_NAME
    probe, log = work / 'det_epoch_probe', work / 'det_epoch_probe.log'
    shutil.rmtree(probe, ignore_errors=True)
    cmd = [sys.executable, 'tools/train.py', args.config, '--work-dir', str(probe), '--epochs', '1',
           *data_root_args(args), *opts]
    start = time.time()
    with open(log, 'w') as out:
        subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    end = time.time()
    cache = probe / CHECK_CACHE_NAME
    begin = cache.stat().st_mtime if cache.exists() else start
    startup, epoch = begin - start, end - begin
    epochs = max(1, int(0.95 * (args.minutes * 60 - startup) / epoch))
    print(f'det probe ({log}): start-up {startup:.0f} s, one epoch with validation {epoch:.0f} s '
          f'-> {epochs} epochs in {args.minutes:g} min')
    return epochs


def data_root_args(args) -> list:
    return ['--data-root', str(Path(args.data_root).resolve())] if args.data_root else []


def run_det(args, cfg, work: Path, env) -> dict:
    name = 'det_' + Path(args.config).stem  # one folder per config: several can share a YOLOv8n run
    det_dir, log = work / name, work / f'{name}_train.log'
    opts = ['--cfg-options', *args.det_options] if args.det_options else []
    det_epochs = fit_epochs(args, work, env, opts) if args.det_epochs == 'auto' else args.det_epochs
    epochs = ['--epochs', str(det_epochs)] if det_epochs else []
    cmd = [sys.executable, 'tools/train.py', args.config, '--work-dir', str(det_dir), *epochs,
           *data_root_args(args), *opts]
    seconds = run_with_budget(cmd, args.minutes, log, env)
    ckpts = sorted(det_dir.glob('epoch_*.pth'), key=lambda p: int(p.stem.split('_')[1]))
    if not ckpts:
        sys.exit(f'error: det finished no epoch in {args.minutes} min (see {log}); '
                 'give more minutes or a smaller dataset')
    out = work / f'{name}_dets.json'
    subprocess.run([sys.executable, 'tools/test.py', args.config, str(ckpts[-1]), '--out', str(out),
                    '--work-dir', str(work / f'{name}_test'), *data_root_args(args), *opts], cwd=REPO,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return dict(dets=out, gt_json=out.with_suffix('.gt.json'), seconds=seconds,
                images=images_seen_det(det_dir, cfg.train_dataloader.batch_size),
                epochs=int(ckpts[-1].stem.split('_')[1]))


# ----------------------------------------------------------------------------------------- YOLOv8n run


def yolo_worker(spec_path: str):
    """Subprocess body: train YOLOv8n for the budget, predict the val images, write results json."""
    import torch
    from ultralytics import YOLO
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec['threads'])
    model = YOLO('yolov8n.yaml')
    model.train(data=spec['yaml'], imgsz=spec['imgsz'], time=spec['minutes'] / 60, epochs=1000,
                batch=spec['batch'], workers=spec['threads'], device='cpu', pretrained=False, amp=False,
                plots=False, val=False, project=spec['project'], name='yolov8n', exist_ok=True, verbose=False)
    trainer = model.trainer
    epochs = trainer.epoch + 1
    weights = Path(trainer.save_dir) / 'weights' / 'last.pt'
    predictor = YOLO(str(weights))
    dets = []
    for item in spec['images']:
        result = predictor.predict(item['path'], imgsz=spec['imgsz'], conf=0.001, max_det=100, device='cpu',
                                   verbose=False)[0]
        boxes = result.boxes
        for (x1, y1, x2, y2), score, label in zip(boxes.xyxy.tolist(), boxes.conf.tolist(),
                                                 boxes.cls.int().tolist()):
            dets.append(dict(image_id=item['image_id'], category_id=spec['cat_ids'][label],
                             bbox=[x1, y1, x2 - x1, y2 - y1], score=score))
    Path(spec['out']).write_text(json.dumps(dict(dets=dets, epochs=epochs)))


def run_yolo(args, cfg, train, val, gt: dict, cat_ids: list, work: Path, env) -> dict:
    yaml = export_yolo(train, val, work / 'yolo_data')
    by_img_id = {str(img.get('img_id', img['id'])): img['id'] for img in gt['images']}
    images = []
    for i in range(len(val)):
        info = val.get_data_info(i)
        image_id = by_img_id.get(str(info['img_id']))
        if image_id is not None:
            images.append(dict(path=osp.abspath(info['img_path']), image_id=image_id))
    spec = dict(yaml=str(yaml), imgsz=max(cfg.img_scale), minutes=args.minutes, batch=args.yolo_batch,
                threads=args.threads, project=str(work), images=images, cat_ids=cat_ids,
                out=str(work / 'yolo_dets.json'))
    saved = work / 'yolo_run.json'
    if args.reuse_yolo and saved.exists():
        run = json.loads(saved.read_text())
        if run['spec'] == spec:
            print(f'reusing the YOLOv8n run in {saved}')
            return run
        print(f'not reusing {saved}: it was run with other data, minutes, threads or batch')
    spec_path = work / 'yolo_spec.json'
    spec_path.write_text(json.dumps(spec))
    start = time.time()
    with open(work / 'yolo_train.log', 'w') as log:
        subprocess.run([sys.executable, __file__, args.config, '--minutes', str(args.minutes),
                        '--yolo-worker', str(spec_path)], cwd=REPO, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True)
    result = json.loads((work / 'yolo_dets.json').read_text())
    run = dict(dets=result['dets'], seconds=time.time() - start, epochs=result['epochs'],
               images=result['epochs'] * len(train), spec=spec)
    saved.write_text(json.dumps(run))
    return run


# ---------------------------------------------------------------------------------------------- main


def main(argv=None):
    args = parse_args(argv)
    if args.yolo_worker:
        return yolo_worker(args.yolo_worker)
    from mmengine.config import DictAction

    from det.engine.config import load_config, set_data_root
    from det.evaluation import evaluate_coco
    # The same overrides for the data both runs use as for det's training.
    cfg = load_config(args.config, {k: DictAction._parse_iterable(v) for k, v in
                                    (kv.split('=', 1) for kv in args.det_options)})
    if args.data_root:
        set_data_root(cfg, str(Path(args.data_root).resolve()))
    work = Path(args.work_dir or REPO / 'work_dirs' / 'peer_accuracy' / Path(args.config).stem).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    train, val = load_split(cfg, 'train'), load_split(cfg, 'val')

    det_run = run_det(args, cfg, work, env)
    if det_run['gt_json'].exists():     # ground truth built from the dataset (VOC): ids 1..N, label + 1
        gt_path = det_run['gt_json']
        cat_ids = list(range(1, len(train.metainfo['classes']) + 1))
    else:                               # a COCO json: the dataset's own, its category ids
        gt_path = Path(val.ann_file)
        inverse = {label: cat for cat, label in val.cat2label.items()}
        cat_ids = [inverse[i] for i in range(len(inverse))]
    gt = json.loads(gt_path.read_text())
    yolo_run = run_yolo(args, cfg, train, val, gt, cat_ids, work, env)

    rows = []
    for name, run, dets in (('det ' + Path(args.config).stem, det_run,
                             json.loads(Path(det_run['dets']).read_text())),
                            ('YOLOv8n (ultralytics)', yolo_run, yolo_run['dets'])):
        result = evaluate_coco(str(gt_path), dets) if dets else None
        rows.append((name, run, result))
    tiers = list(rows[0][2].tiers) if rows[0][2] else []
    header = ['model', 'epochs', 'images seen', 'train min', 'AP', 'AP50', 'AP75', *tiers]
    print(f'\n{Path(args.config).name}: {args.minutes:g} min each, {args.threads} threads, '
          f'{len(train)} train / {len(val)} val images')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for name, run, result in rows:
        stats = ([f"{result.stats[k]:.3f}" for k in ('AP', 'AP50', 'AP75')]
                 + [f"{result.tiers[t]['AP']:.3f}" for t in tiers]) if result else ['-'] * (3 + len(tiers))
        print('| ' + ' | '.join([name, str(run['epochs']), f"{run['images']:,}", f"{run['seconds'] / 60:.1f}",
                                 *stats]) + ' |')
    (work / f'table_{Path(args.config).stem}.json').write_text(json.dumps(
        [dict(model=n, epochs=r['epochs'], images=r['images'], seconds=r['seconds'],
              metrics=res.to_dict() if res else None) for n, r, res in rows], indent=2))


if __name__ == '__main__':
    main()
