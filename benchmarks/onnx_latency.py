"""Batch-1 latency of each config's network in PyTorch and in onnxruntime, measured in the same run.

    python benchmarks/onnx_latency.py [CONFIG ...] [--repeats 50] [--threads 2]

Each model (random weights: latency does not depend on them) is exported by ``tools/export_onnx.py``'s
``export`` at the config's test input size; both runtimes get the same preprocessed ``[1, 3, H, W]``
input and run the raw head outputs (``mode='tensor'``), the part ``tools/export_onnx.py`` exports.
The median of ``--repeats`` runs after 5 warm-up runs is reported, with the largest output difference.
"""
import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
from export_onnx import default_shape, export  # noqa: E402

from det.apis import init_detector  # noqa: E402

DEFAULT_CONFIGS = ('configs/yolo_v1.py', 'configs/centernet_mobilenetv2_fpn_320_shapes.py',
                   'configs/centernet_snet146_cem_320_shapes.py')


def median_ms(run, repeats: int) -> float:
    for _ in range(5):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def measure(config: str, onnx_path: str, options, repeats: int) -> str:
    """One table row: latency of ``config``'s network in both runtimes and their largest difference."""
    model = init_detector(str(REPO / config))
    shape = default_shape(model.cfg)
    export(model, onnx_path, shape)
    x = torch.randn(1, 3, *shape)
    session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: x.numpy()}
    with torch.no_grad():
        torch_ms = median_ms(lambda: model(x, mode='tensor'), repeats)
        expected = [t.numpy() for t in model(x, mode='tensor')]
    ort_ms = median_ms(lambda: session.run(None, feed), repeats)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(session.run(None, feed), expected))
    return (f'| `{Path(config).name}` | {shape[0]}x{shape[1]} | {torch_ms:.1f} | {ort_ms:.1f} | '
            f'{ort_ms / torch_ms:.2f} | {diff:.1e} |')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS)
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--threads', type=int, default=2, help='intra-op threads of both runtimes')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    print(f'# python benchmarks/onnx_latency.py; {platform.processor() or platform.machine()}, '
          f'{args.threads} threads, torch {torch.__version__}, onnxruntime {ort.__version__}')
    print('| config | input | PyTorch fp32 (ms) | onnxruntime (ms) | onnxruntime / PyTorch | max abs diff |')
    print('|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            print(measure(config, str(Path(tmp) / 'model.onnx'), options, args.repeats))

if __name__ == '__main__':
    main()
