"""Convert a checkpoint written by plain mmengine tools into one det loads with
``torch.load(weights_only=True)``.

    python tools/convert_checkpoint.py SRC.pth DST.pth --trust-pickled-code

mmengine's runner stores Python objects in a checkpoint besides the weights: NumPy arrays and scalars,
its message hub's ``HistoryBuffer`` objects, ``ConfigDict`` values in ``meta``. torch's safe loader,
the only one det uses, refuses them. This tool loads SRC once with the full unpickler, which EXECUTES
WHATEVER CODE THE FILE'S PICKLED OBJECTS NAME: run it only on files you trust. It then writes DST with
the same content as tensors, numbers, strings, lists and plain dicts (the form det's own checkpoints
have; see ``det.engine.weights_only_checkpoint_hook``), and checks that DST loads with
``weights_only=True``. Resuming from DST restores the message hub's buffers as they were.
"""
import argparse
import io
import os.path as osp
import sys
from collections import OrderedDict

import torch

from det.engine.atomic_backend import write_atomic
from det.engine.weights_only_checkpoint_hook import to_safe

_SAFE_LEAVES = (torch.Tensor, torch.Size, torch.dtype, torch.device, str, bytes, int, float, bool,
                type(None))


def unsafe_values(value, path: str = 'checkpoint') -> list:
    """``'path: type'`` of every value that torch's weights-only loader would refuse (anything but
    tensors, numbers, strings, None and dicts / lists / tuples of them)."""
    if isinstance(value, (dict, OrderedDict)) and type(value) in (dict, OrderedDict):
        return [found for key, item in value.items() for found in unsafe_values(item, f'{path}[{key!r}]')]
    if type(value) in (list, tuple):
        return [found for i, item in enumerate(value) for found in unsafe_values(item, f'{path}[{i}]')]
    if isinstance(value, _SAFE_LEAVES):
        return []
    return [f'{path}: {type(value).__module__}.{type(value).__qualname__}']


def convert(checkpoint: dict) -> dict:
    """The checkpoint with NumPy values, ``HistoryBuffer`` objects and dict subclasses (``ConfigDict``)
    replaced by tensors, numbers and plain dicts, everywhere but the weights (already tensors)."""
    if not isinstance(checkpoint, dict):
        raise ValueError(f'expected a checkpoint dict, got {type(checkpoint).__name__}')
    return {key: value if key == 'state_dict' else to_safe(value) for key, value in checkpoint.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a checkpoint written by plain mmengine tools (NumPy arrays, HistoryBuffer, '
                    'ConfigDict objects in meta / message_hub) into one that loads with '
                    'torch.load(weights_only=True), as det requires. WARNING: reading SRC unpickles it '
                    'with weights_only=False, which executes any code its pickled objects name; only '
                    'convert files you trust.')
    parser.add_argument('src', help='checkpoint to convert (read with the full, code-executing unpickler)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--trust-pickled-code', action='store_true',
                        help='required: confirms that SRC is trusted, since loading it executes pickled code')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.trust_pickled_code:
        sys.exit('error: loading SRC executes the pickled code in it; if you trust the file, run again '
                 'with --trust-pickled-code')
    if not osp.isfile(args.src):
        sys.exit(f'error: checkpoint not found: {args.src}')
    if osp.abspath(args.src) == osp.abspath(args.dst):
        sys.exit('error: DST must differ from SRC (keep the original until the converted file is checked)')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    converted = convert(checkpoint)
    left = unsafe_values(converted)
    if left:
        sys.exit('error: these values have no weights-only form; remove them or extend the converter:\n  '
                 + '\n  '.join(left[:20]))
    buffer = io.BytesIO()
    torch.save(converted, buffer)
    write_atomic(buffer.getvalue(), args.dst)
    torch.load(args.dst, map_location='cpu', weights_only=True)  # the point of it all: must not raise
    print(f'wrote {args.dst}: loads with torch.load(weights_only=True)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
