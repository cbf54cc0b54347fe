"""Import a script of ``tools/analysis/`` as a module, so tests call its ``main(argv)`` in-process; the
bad-input checks the detections tools share."""
import importlib.util
import json

import pytest

from ..conftest import REPO


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'analysis_{name}', REPO / 'tools/analysis' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_bad_inputs_named(tool: str, folder, gt: dict, bad_dets: list, bad_match: str) -> None:
    """The detections tool ``tool`` (``main(ann_json, dets_json)``) stops naming the problem for a
    missing annotations or detections file, an empty detections list, and ``bad_dets`` (``bad_match``:
    its message)."""
    (folder / 'gt.json').write_text(json.dumps(gt))
    (folder / 'empty.json').write_text('[]')
    (folder / 'bad.json').write_text(json.dumps(bad_dets))
    main = load_tool(tool).main
    for files in (('missing.json', 'empty.json'), ('gt.json', 'missing.json')):
        with pytest.raises(SystemExit, match='no such file: .*missing.json'):
            main([str(folder / name) for name in files])
    with pytest.raises(SystemExit, match='empty.json holds no detections'):
        main([str(folder / 'gt.json'), str(folder / 'empty.json')])
    with pytest.raises(SystemExit, match=bad_match):
        main([str(folder / 'gt.json'), str(folder / 'bad.json'), '--out', str(folder / 'x.png')])
