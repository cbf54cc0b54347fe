"""Training curves from mmengine's scalar log.

mmengine's ``LocalVisBackend`` writes ``WORK_DIR/<timestamp>/vis_data/scalars.json``, one json object per
line: training records (``loss``, ``loss_*``, ``lr``, ``time``, ... with ``epoch``, ``iter`` and ``step``
= the global iteration) every logging interval, and validation records (``coco/AP``, ``coco/AP50``, ...,
``step`` = the epoch for epoch-based loops, the iteration for iteration-based ones) after each
validation. Each run (a resume starts a new one) has its own timestamp folder.
"""
import fnmatch
import json
import os
import os.path as osp
import re

_RUN = re.compile(r'^\d{8}_\d{6}$')
_AXES = ('epoch', 'iter', 'step')


def find_scalars(work_dir: str, run: str = None) -> str:
    """Path of ``scalars.json`` of ``run`` (a timestamp folder name), or of the latest run that has one.
    Raises ``FileNotFoundError`` naming the runs found."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'no such work dir: {work_dir}')
    runs = sorted(name for name in os.listdir(work_dir)
                  if _RUN.match(name) and osp.isfile(osp.join(work_dir, name, 'vis_data', 'scalars.json')))
    if run is not None:
        if run not in runs:
            raise FileNotFoundError(f'{work_dir} has no run {run!r} with vis_data/scalars.json; runs: {runs}')
        return osp.join(work_dir, run, 'vis_data', 'scalars.json')
    if not runs:
        raise FileNotFoundError(f'{work_dir} holds no <timestamp>/vis_data/scalars.json (is it a work dir '
                                'of tools/train.py?)')
    return osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')


def load_scalars(path: str) -> list:
    """The records of a ``scalars.json``, in file order; a malformed line is an error naming it."""
    records = []
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f'{path}:{n} is not a json object: {error}') from None
    return records


def series(records: list, keys: list, strict: bool = True) -> list:
    """Curves of the scalars named by ``keys`` (exact names or ``fnmatch`` patterns such as 'loss*').

    Training records (those with ``iter``) give curves over the iteration, validation records (the
    others) curves over their ``step`` (the epoch when training records carry ``epoch``). A key logged
    in both kinds of records gives one curve of each.

    Returns:
        ``[dict(key, phase ('train' | 'val'), x_label, x [n], y [n])]`` in the order of ``keys``.
        A key that matches no scalar raises ``KeyError`` listing the available ones (with
        ``strict=False`` it is skipped, and only finding nothing at all raises).
    """
    train = [r for r in records if 'iter' in r]
    val = [r for r in records if 'iter' not in r]
    val_axis = 'epoch' if any('epoch' in r for r in train) or not train else 'iteration'
    phases = (('train', train, 'iter', 'iteration'), ('val', val, 'step', val_axis))
    available = {phase: sorted({k for r in recs for k in r} - set(_AXES)) for phase, recs, _, _ in phases}
    out, seen = [], set()
    for key in keys:
        found = False
        for phase, recs, x_key, x_label in phases:
            for name in fnmatch.filter(available[phase], key):
                found = True
                if (phase, name) in seen:
                    continue
                seen.add((phase, name))
                points = [(r[x_key], r[name]) for r in recs if name in r and x_key in r]
                out.append(dict(key=name, phase=phase, x_label=x_label, x=[p[0] for p in points],
                                y=[p[1] for p in points]))
        if not found and strict:
            raise KeyError(f'no scalar matches {key!r}; {_listing(available)}')
    if not out:
        raise KeyError(f'no scalar matches any of {list(keys)}; {_listing(available)}')
    return out


def _listing(available: dict) -> str:
    return f'training scalars: {available["train"]}, validation scalars: {available["val"]}'
