"""det's speed against its peers in one table, everything measured in the same run on this machine.

    python benchmarks/run.py [--quick] [--threads 2] [--eval-images 5000] [--out table.md]

Rows, each with the peer measured beside it and the ratio (det / peer for rates, peer / det for times,
so > 1 means det is ahead):

- **training images/s** of every shipped single-stage config that trains on the shapes data,
  fp32 NCHW and with the speed switches (``AutocastOptimWrapper`` bf16 +
  ``DetDataPreprocessor(channels_last=True)``), inside mmengine's Runner with the config's own data
  pipeline and loader (glibc keeping freed memory, as ``tools/train.py`` sets it), against
  Ultralytics YOLOv8n (random init from ``yolov8n.yaml``, its own trainer with mosaic
  (``close_mosaic=0``: a one-epoch run would otherwise train without it), batch 16, ``amp=False``,
  ``plots=False``, ``val=False``, nothing downloaded) on the same images exported in its format, all
  at 320x320. Steady state: the first steps are warm-up and not timed.
- **batch-1 latency at 320x320** (from a uint8 image tensor to boxes in original pixels, NMS included) of
  every shipped single-stage config, fp32 and fused (``fuse_conv_bn``) + bf16 autocast + channels-last,
  against YOLOv8n's ``predict`` (Conv-BN fused by Ultralytics itself) and torchvision's
  ``ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)``; median of rounds that call
  every candidate once each, so other jobs' load falls on all of them alike.
- **COCO evaluation** of ``--eval-images`` images x 100 detections (``benchmarks/coco_eval_speed.py``),
  det's ``evaluate_coco`` against pycocotools, identical stats checked; CPU time, which other jobs on
  a shared machine do not inflate.

Every measurement runs in a fresh subprocess with ``--threads`` torch threads (Ultralytics resets its
threads to ``cpu_count - 1``; the workers set them back). ``--quick``: few steps and runs, a small
evaluation, for a smoke test (minutes); its numbers are rough. ``ultralytics`` is benchmark-only
(``pip install -e .[benchmarks]``); det never imports it.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))
IMG_SIZE = 320
YOLO_BATCH = 16


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke run: few steps, small evaluation')
    parser.add_argument('--threads', type=int, default=2, help='torch threads of every measurement')
    parser.add_argument('--eval-images', type=int, default=None,
                        help='images of the evaluation case (100 detections each); default 5000, 300 quick')
    parser.add_argument('--skip', nargs='*', default=[], choices=['train', 'latency', 'eval'])
    parser.add_argument('--configs', nargs='*', help='only these config file names (default: every shipped '
                        'single-stage config)')
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    parser.add_argument('--work-dir', help='data and logs (default: a temporary folder)')
    parser.add_argument('--worker', nargs=2, metavar=('KIND', 'SPEC'), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------ what is measured


def single_stage_configs() -> list:
    """Shipped configs (links resolved) whose model is a ``SingleStageDetector``, with whether they
    train on the shapes data: ``[(path, trains_on_shapes)]``."""
    from det.engine.config import leaf_dataset_cfgs, load_config
    found = []
    for path in sorted({p.resolve() for p in (REPO / 'configs').glob('*.py')}):
        cfg = load_config(path)
        if cfg.model.get('type') != 'SingleStageDetector':
            continue
        leaves = leaf_dataset_cfgs(cfg.train_dataloader.dataset)
        found.append((path, all(leaf.get('type') == 'ShapesDataset' for leaf in leaves)))
    return found


def machine() -> str:
    """CPU model, cores, torch / torchvision / ultralytics versions."""
    import torch
    import torchvision
    cpu = platform.processor() or 'unknown CPU'
    try:
        cpu = next(line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                   if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    try:
        import ultralytics
        peer = f'ultralytics {ultralytics.__version__}'
    except ImportError:
        peer = 'ultralytics not installed'
    flags = open('/proc/cpuinfo').read() if os.path.exists('/proc/cpuinfo') else ''
    isa = ', '.join(f for f in ('avx512f', 'avx512_bf16', 'amx_bf16') if f in flags) or 'no AVX-512'
    return (f'{cpu} ({isa}), {os.cpu_count()} cores, torch {torch.__version__}, torchvision '
            f'{torchvision.__version__}, {peer}, Python {platform.python_version()}')


# ------------------------------------------------------------------------------------------- workers


def _steady_rate(stamps: list, per_step: int, warmup: int) -> float:
    """Images per second between the end of step ``warmup`` and the end of the last step."""
    if len(stamps) < warmup + 2:
        raise RuntimeError(f'only {len(stamps)} steps were timed; need more than {warmup + 1}')
    return per_step * (len(stamps) - 1 - warmup) / (stamps[-1] - stamps[warmup])


def worker_det_train(spec: dict) -> dict:
    """Train ``spec['config']`` for ``spec['steps']`` iterations in mmengine's Runner on the shapes data
    under ``spec['data_root']``; images/s after ``spec['warmup']`` steps. No validation, no checkpoints."""
    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import det.engine  # noqa: F401  (registers det's hooks and optim wrappers)
    from det.engine import use_safe_checkpoints
    from det.engine.config import leaf_dataset_cfgs, load_config
    from det.engine.machine import apply_machine_defaults

    torch.set_num_threads(spec['threads'])
    cfg = load_config(spec['config'], work_dir=spec['work_dir'])
    use_safe_checkpoints(cfg)  # its hooks (the non-finite loss stop) run in every step, as in tools/train.py
    for leaf in leaf_dataset_cfgs(cfg.train_dataloader.dataset):
        leaf.update(data_root=spec['data_root'], num_train=spec['num_train'], num_val=spec['num_val'])
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=spec['steps'], val_interval=10 ** 9)
    cfg.param_scheduler = None
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg',
                'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10 ** 6)
    apply_machine_defaults(cfg)  # as tools/train.py does
    # The shipped configs already default to the fast setting; the baseline turns it off.
    if spec['fast']:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'
    else:
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('dtype', None)
    cfg.model.data_preprocessor.channels_last = spec['fast']

    stamps = []

    class StepClock(Hook):
        priority = 'VERY_LOW'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            stamps.append(time.perf_counter())

    runner = Runner.from_cfg(cfg)
    runner.register_hook(StepClock())
    runner.train()
    batch = cfg.train_dataloader.batch_size
    return dict(images_per_s=_steady_rate(stamps, batch, spec['warmup']), batch=batch, steps=len(stamps))


def worker_yolo_train(spec: dict) -> dict:
    """YOLOv8n from ``yolov8n.yaml`` trained one epoch by Ultralytics' own trainer on ``spec['yaml']``;
    images/s after ``spec['warmup']`` batches."""
    import torch
    from ultralytics import YOLO

    stamps = []
    model = YOLO('yolov8n.yaml')
    # Ultralytics sets torch's threads to cpu_count - 1 when it selects the device: set them back.
    model.add_callback('on_train_start', lambda trainer: torch.set_num_threads(spec['threads']))
    model.add_callback('on_train_batch_end', lambda trainer: stamps.append(time.perf_counter()))
    # close_mosaic=0: mosaic on, as in all but its last 10 epochs (a 1-epoch run would train without it).
    model.train(data=spec['yaml'], imgsz=IMG_SIZE, epochs=1, batch=YOLO_BATCH, device='cpu', pretrained=False,
                amp=False, plots=False, val=False, save=False, project=spec['work_dir'], name='yolov8n',
                exist_ok=True, verbose=False, seed=0, close_mosaic=0)
    return dict(images_per_s=_steady_rate(stamps, YOLO_BATCH, spec['warmup']), batch=YOLO_BATCH,
                steps=len(stamps))


def _interleaved_median_ms(candidates: dict, runs: int, warmup: int = 3) -> dict:
    """Median ms per call of each ``name -> fn``, timed round-robin (one call of each per round) so that
    load from other jobs falls on every candidate alike."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in candidates}
    for _ in range(runs):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * sorted(t)[len(t) // 2] for name, t in times.items()}


def worker_latency(spec: dict) -> dict:
    """Batch-1 latency (ms) at 320x320 of det's configs (fp32; fused + bf16 + channels-last), YOLOv8n's
    predict and torchvision's SSDlite on one image of the shapes val set: median of ``spec['runs']``
    interleaved rounds."""
    import copy

    import cv2
    import numpy as np
    import torch
    import torchvision
    from mmengine.registry import DefaultScope
    from ultralytics import YOLO

    import det.models  # noqa: F401  (registers the modules)
    from det.engine.config import load_config
    from det.models.utils import fuse_conv_bn
    from det.registry import MODELS
    from det.structures import DetDataSample

    torch.set_num_threads(spec['threads'])
    torch.manual_seed(0)
    image = cv2.imread(spec['image'])  # BGR uint8 [320, 320, 3]
    if image is None or image.shape[:2] != (IMG_SIZE, IMG_SIZE):
        raise RuntimeError(f"{spec['image']}: expected a {IMG_SIZE}x{IMG_SIZE} image")
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    meta = dict(img_shape=(IMG_SIZE, IMG_SIZE), ori_shape=(IMG_SIZE, IMG_SIZE), scale_factor=(1.0, 1.0))

    def det_predict(model, bf16: bool):
        @torch.no_grad()
        def predict():
            data = model.data_preprocessor(dict(inputs=[chw], data_samples=[DetDataSample(metainfo=meta)]))
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
                return model(**data, mode='predict')
        return predict

    candidates = {}
    for config in spec['configs']:
        with DefaultScope.overwrite_default_scope('det'):
            model = MODELS.build(load_config(config).model)
        model.eval()
        model.data_preprocessor.channels_last = False  # the fp32 NCHW baseline
        fast = fuse_conv_bn(copy.deepcopy(model)).to(memory_format=torch.channels_last)
        fast.data_preprocessor.channels_last = True
        candidates[(Path(config).name, 'fp32')] = det_predict(model, bf16=False)
        candidates[(Path(config).name, 'fast')] = det_predict(fast, bf16=True)

    yolo = YOLO('yolov8n.yaml')
    yolo.predict(image, imgsz=IMG_SIZE, device='cpu', verbose=False)  # sets the model up (fuses Conv-BN)
    torch.set_num_threads(spec['threads'])  # Ultralytics reset them when it selected the device
    candidates[('yolov8n', '')] = lambda: yolo.predict(image, imgsz=IMG_SIZE, device='cpu', verbose=False)

    ssd = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    ssd.eval()
    rgb = torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float() / 255
    candidates[('ssdlite', '')] = torch.no_grad()(lambda: ssd([rgb]))

    out = {}
    for (name, setting), ms in _interleaved_median_ms(candidates, spec['runs']).items():
        if setting:
            out.setdefault(name, {})[setting] = ms
        else:
            out[name] = ms
    return out


def worker_eval(spec: dict) -> dict:
    from coco_eval_speed import measure
    result = measure(spec['images'], 100, repeats=1, with_dicts=False)
    runs = {name: dict(wall=wall, cpu=cpu) for name, (wall, cpu, _) in result['runs'].items()}
    return dict(case=result['case'], runs=runs, max_diff=result['max_diff'])


WORKERS = dict(det_train=worker_det_train, yolo_train=worker_yolo_train, latency=worker_latency,
               eval=worker_eval)


def run_worker(kind: str, spec: dict, work: Path, threads: int) -> dict:
    """Run one measurement in a fresh Python process; its log goes to ``work/<name>.log``."""
    name = spec.pop('name')
    spec_path, out_path = work / f'{name}.json', work / f'{name}.result.json'
    spec.update(out=str(out_path), threads=threads)
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), YOLO_OFFLINE='1',
               YOLO_CONFIG_DIR=str(work / 'ultralytics_settings'), PYTHONPATH=str(REPO))
    start = time.time()
    with open(work / f'{name}.log', 'w') as log:
        proc = subprocess.run([sys.executable, __file__, '--worker', kind, str(spec_path)], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = (work / f'{name}.log').read_text()[-3000:]
        raise RuntimeError(f'{name} failed ({proc.returncode}); log {work / f"{name}.log"}:\n{tail}')
    print(f'  {name}: {time.time() - start:.0f} s', file=sys.stderr, flush=True)
    return json.loads(out_path.read_text())


# ---------------------------------------------------------------------------------------------- main


def prepare_data(work: Path, num_train: int, num_val: int):
    """Shapes data at 320 under ``work/shapes_<num_train>`` and its YOLO-format copy; returns (root, yaml,
    a val image)."""
    from mmengine.registry import DefaultScope
    from peer_accuracy import export_yolo

    import det.datasets  # noqa: F401  (registers the datasets)
    from det.registry import DATASETS
    root = work / f'shapes_{num_train}'
    splits = {}
    with DefaultScope.overwrite_default_scope('det'):
        for split in ('train', 'val'):
            splits[split] = DATASETS.build(dict(type='ShapesDataset', data_root=str(root), split=split,
                                                num_train=num_train, num_val=num_val, img_size=IMG_SIZE))
            splits[split].full_init()
    yaml = export_yolo(splits['train'], splits['val'], work / f'yolo_data_{num_train}')
    return root, yaml, splits['val'].get_data_info(0)['img_path']


def _fmt_ratio(value: float) -> str:
    return f'**{value:.2f}x**'


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        kind, spec_path = args.worker
        spec = json.loads(Path(spec_path).read_text())
        Path(spec['out']).write_text(json.dumps(WORKERS[kind](spec)))
        return
    quick = args.quick
    eval_images = args.eval_images or (300 if quick else 5000)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='det_bench_'))
    work.mkdir(parents=True, exist_ok=True)
    command = 'python benchmarks/run.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    header = [f'`{command}`', '', f'Machine: {machine()}; {args.threads} torch threads per measurement; '
              f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; load average before the run '
              f'{os.getloadavg()[0]:.1f}.', '']
    print('\n'.join(header), file=sys.stderr, flush=True)
    configs = [(c, on_shapes) for c, on_shapes in single_stage_configs()
               if not args.configs or c.name in args.configs]
    if not configs:
        sys.exit(f'error: none of {args.configs} is a shipped single-stage config')
    rows = []
    steps, warmup = (8, 3) if quick else (40, 5)
    num_train = 8 * steps + 16 if quick else 320
    root, yaml, val_image = prepare_data(work, num_train=num_train, num_val=8)

    if 'train' not in args.skip:
        yolo = run_worker('yolo_train', dict(name='train_yolov8n', yaml=str(yaml),
                                             work_dir=str(work / 'yolo'), warmup=2 if quick else 3),
                          work, args.threads)
        for config, on_shapes in configs:
            if not on_shapes:
                continue
            for fast in (False, True):
                name = f"train_{config.stem}_{'fast' if fast else 'fp32'}"
                res = run_worker('det_train', dict(
                    name=name, config=str(config), data_root=str(root), num_train=num_train, num_val=8,
                    steps=steps, warmup=warmup, fast=fast, work_dir=str(work / name)), work, args.threads)
                setting = 'bf16 + channels-last' if fast else 'fp32'
                rate, peer_rate = res['images_per_s'], yolo['images_per_s']
                rows.append([f"training images/s (320, batch {res['batch']})", f'`{config.name}` {setting}',
                             f'{rate:.3g}', f'YOLOv8n (batch {YOLO_BATCH})', f'{peer_rate:.3g}',
                             _fmt_ratio(rate / peer_rate)])

    if 'latency' not in args.skip:
        lat = run_worker('latency', dict(name='latency', image=str(val_image), runs=10 if quick else 50,
                                         configs=[str(c) for c, _ in configs]), work, args.threads)
        for config, _ in configs:
            res = lat[config.name]
            for setting, key in (('fp32', 'fp32'), ('fused + bf16 + channels-last', 'fast')):
                for peer, peer_key in (('YOLOv8n predict', 'yolov8n'), ('SSDlite320-MobileNetV3', 'ssdlite')):
                    rows.append(['batch-1 latency ms (320)', f'`{config.name}` {setting}', f'{res[key]:.1f}',
                                 peer, f'{lat[peer_key]:.1f}', _fmt_ratio(lat[peer_key] / res[key])])

    if 'eval' not in args.skip:
        ev = run_worker('eval', dict(name='eval', images=eval_images), work, args.threads)
        det_run, peer = ev['runs']['det (array)'], ev['runs']['pycocotools']
        rows.append([f"COCO evaluation CPU s ({ev['case']})", '`evaluate_coco` (faster-coco-eval)',
                     f"{det_run['cpu']:.2f}", f"pycocotools (max stat diff {ev['max_diff']:.0e})",
                     f"{peer['cpu']:.2f}", _fmt_ratio(peer['cpu'] / det_run['cpu'])])

    table = ['| measure | det | det value | peer | peer value | ratio (>1: det ahead) |',
             '|---|---|---:|---|---:|---:|'] + ['| ' + ' | '.join(r) + ' |' for r in rows]
    text = '\n'.join(header + table)
    print(text)
    if args.out:
        Path(args.out).write_text(text + '\n')


if __name__ == '__main__':
    main()
