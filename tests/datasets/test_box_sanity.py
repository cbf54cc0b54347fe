"""Invalid-box repair on hand-made cases."""
import math
import warnings

import pytest

from det.datasets import BoxSanityLog, sanitize_instances


def _inst(bbox, label=0):
    return dict(bbox=bbox, bbox_label=label, ignore_flag=0)


def test_sanitize_hand_cases():
    instances = [
        _inst([10, 10, 20, 20], 0),             # valid, untouched
        _inst([-5, 10, 20, 120], 1),            # partly outside (w=100, h=50) -> clipped
        _inst([30, 30, 30, 40], 2),             # zero width -> dropped
        _inst([40, 30, 35, 45], 3),             # x2 < x1 -> dropped
        _inst([150, 10, 170, 20], 4),           # fully outside -> empty after clipping -> dropped
        _inst([math.nan, 0, 10, 10], 5),        # NaN -> dropped
        _inst([0, 0, math.inf, 10], 6),         # inf -> dropped
        _inst([0, 0, 100, 50], 7),              # exactly the image -> untouched
    ]
    kept, n_clipped, n_dropped = sanitize_instances(instances, width=100, height=50)
    assert [k['bbox_label'] for k in kept] == [0, 1, 7]
    assert kept[0]['bbox'] == [10.0, 10.0, 20.0, 20.0]
    assert kept[1]['bbox'] == [0.0, 10.0, 20.0, 50.0]
    assert kept[2]['bbox'] == [0.0, 0.0, 100.0, 50.0]
    assert (n_clipped, n_dropped) == (1, 5)
    assert instances[1]['bbox'] == [-5, 10, 20, 120]  # the input is not modified


def test_log_warns_once_with_counts_and_examples():
    log = BoxSanityLog('toy')
    log.sanitize([_inst([-1, 0, 5, 5])], 10, 10, 'a.xml')
    log.sanitize([_inst([0, 0, 0, 5]), _inst([2, 2, 1, 1])], 10, 10, 'b.xml')
    log.sanitize([_inst([0, 0, 0, 5])], 10, 10, 'c.xml')
    log.sanitize([_inst([1, 1, 5, 5])], 10, 10, 'd.xml')
    with pytest.warns(UserWarning) as record:
        log.warn()
    assert len(record) == 1
    message = str(record[0].message)
    assert 'toy: 1 boxes clipped' in message and '3 invalid boxes dropped' in message
    assert 'a.xml, b.xml' in message and 'c.xml' not in message and 'd.xml' not in message


def test_log_silent_when_all_valid():
    log = BoxSanityLog('toy')
    log.sanitize([_inst([1, 1, 5, 5])], 10, 10, 'a.xml')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        log.warn()
