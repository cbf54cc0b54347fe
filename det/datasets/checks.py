"""Data checks before a run: what is wrong with a dataset's images and annotations, in one table.

Two halves:

- While a dataset loads its annotations, :class:`AnnotationIssues` records, per file, the boxes that
  were clipped or dropped (``box_sanity``) and the annotations of categories the dataset does not know
  (a COCO ``category_id`` or a VOC ``<name>`` outside the dataset's classes). Those annotations are
  skipped, but never silently: the dataset warns once with their count.
- :func:`check_dataset` then reads every image file once: missing or undecodable files, images whose
  decoded size differs from the annotation's (e.g. an EXIF rotation the annotation did not expect),
  images without boxes and byte-identical duplicates (content hash). File size and modification time
  key a cache, so a second check of unchanged data reads no image and takes about as long as ``stat``.

:func:`format_report` renders the findings of one or more datasets as one table naming the files. The
checks only report; whether a finding stops a run is the caller's decision (``det.engine.config``).
"""
import hashlib
import json
import os
import os.path as osp
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from .transforms.loading import REPORTED_UNREADABLE, decode_image

# Kinds of findings, in the order the table lists them.
MISSING = 'missing image'
UNREADABLE = 'unreadable image'
SIZE_MISMATCH = 'image size differs from annotation'
INVALID_BOX = 'invalid boxes dropped'
CLIPPED_BOX = 'boxes clipped to the image'
UNKNOWN_CATEGORY = 'unknown-category annotations skipped'
NO_BOX = 'images without boxes'
DUPLICATE = 'duplicate files (same content)'
# What a COCO json from a labelling tool leaves out or gets wrong (CocoDataset), each changing what is
# trained or evaluated: fields filled in (area, iscrowd, annotation ids), annotations that point at no
# listed image (dropped), classes that no annotation has (their AP is -1, left out of the mean).
JSON_FILLED = 'json fields filled in'
ORPHAN_ANNOTATION = 'annotations of images not in the json'
UNUSED_CLASS = 'classes without annotations'
KINDS = (MISSING, UNREADABLE, SIZE_MISMATCH, INVALID_BOX, CLIPPED_BOX, UNKNOWN_CATEGORY, JSON_FILLED,
         ORPHAN_ANNOTATION, UNUSED_CLASS, NO_BOX, DUPLICATE)
# Findings that mean lost or wrong training signal; images without boxes are valid negatives.
PROBLEM_KINDS = (MISSING, UNREADABLE, SIZE_MISMATCH, INVALID_BOX, CLIPPED_BOX, UNKNOWN_CATEGORY, JSON_FILLED,
                 ORPHAN_ANNOTATION, UNUSED_CLASS, DUPLICATE)

CACHE_VERSION = 1


class AnnotationIssues:
    """Per-file annotation findings of one dataset, collected while it loads.

    Args:
        dataset_name: how messages name the dataset, e.g. ``VOCDataset(data/voc, split=train)``.
    """

    def __init__(self, dataset_name: str):
        self.dataset_name = dataset_name
        self.files = {INVALID_BOX: [], CLIPPED_BOX: [], UNKNOWN_CATEGORY: [], JSON_FILLED: [],
                      ORPHAN_ANNOTATION: [], UNUSED_CLASS: []}
        self.unknown_categories = Counter()  # category (VOC name or COCO id / name) -> annotations

    def sanitize(self, log, instances: list, width: int, height: int, source: str) -> list:
        """``log.sanitize`` (a :class:`~det.datasets.box_sanity.BoxSanityLog`) that also records which
        file had boxes clipped or dropped, and how many."""
        clipped, dropped = log.n_clipped, log.n_dropped
        kept = log.sanitize(instances, width, height, source)
        if log.n_dropped > dropped:
            self.files[INVALID_BOX].append(f'{source} ({log.n_dropped - dropped})')
        if log.n_clipped > clipped:
            self.files[CLIPPED_BOX].append(f'{source} ({log.n_clipped - clipped})')
        return kept

    def invalid(self, log, source: str, why: str) -> None:
        """Record one annotation of ``source`` dropped because it is not a box at all (a VOC object without
        ``<bndbox>``, a malformed YOLO line): counted in ``log``'s warning with the dropped boxes, and
        named with ``why`` in the invalid-box row."""
        log.drop(source)
        self.files[INVALID_BOX].append(f'{source} ({why})')

    def unknown_category(self, category, source: str) -> None:
        """Record one skipped annotation of ``category`` (not among the dataset's classes) in ``source``."""
        self.unknown_categories[category] += 1
        entry = f'{source} ({category})'
        if entry not in self.files[UNKNOWN_CATEGORY]:
            self.files[UNKNOWN_CATEGORY].append(entry)

    def warn(self) -> None:
        """One warning for the skipped unknown-category annotations, if any (boxes warn via the log)."""
        if self.unknown_categories:
            total = sum(self.unknown_categories.values())
            counts = ', '.join(f'{k!r}: {n}' for k, n in self.unknown_categories.most_common())
            files = dict.fromkeys(f.rsplit(' (', 1)[0] for f in self.files[UNKNOWN_CATEGORY])
            examples = ', '.join(list(files)[:3])
            warnings.warn(f"{self.dataset_name}: {total} annotations of categories that are not among the "
                          f"dataset's classes were skipped ({counts}), e.g. in {examples}", stacklevel=3)


def no_images_error(dataset_name: str, why: str) -> ValueError:
    """The error for a dataset left without images (mmengine would otherwise fail later with "need at
    least one array to concatenate")."""
    return ValueError(f'{dataset_name} is empty: {why}')


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found in one dataset.

    ``files[kind]`` lists the files (with a detail in parentheses where useful) of each kind of
    :data:`KINDS`; ``unreadable`` lists the image paths that cannot be loaded (missing or undecodable);
    ``hashes`` maps each readable or unreadable existing image path to its content hash.
    """
    name: str
    num_images: int
    num_boxes: int
    test_mode: bool
    files: dict = field(default_factory=lambda: {k: [] for k in KINDS})
    unreadable: list = field(default_factory=list)
    hashes: dict = field(default_factory=dict)

    @property
    def has_problems(self) -> bool:
        return any(self.files[k] for k in PROBLEM_KINDS)


def _file_key(path: str):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _inspect(path: str) -> dict:
    """Hash and decode one image file: ``dict(key, sha1, height, width)``; height and width are None when
    the file does not decode, and the entry is ``dict(missing=True)`` when it does not exist."""
    try:
        key = _file_key(path)
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return dict(missing=True)
    img = decode_image(data)
    shape = (None, None) if img is None else img.shape[:2]
    return dict(key=key, sha1=hashlib.sha1(data.tobytes()).hexdigest(), height=shape[0], width=shape[1])


class ImageCache:
    """Results of :func:`_inspect` per absolute image path, valid while the file's size and mtime are
    unchanged, kept in a json file (``path``; None keeps nothing)."""

    def __init__(self, path=None):
        self.path = path
        self.entries = {}
        self.changed = False
        if path and osp.isfile(path):
            try:
                with open(path) as f:
                    saved = json.load(f)
                if saved.get('version') == CACHE_VERSION:
                    self.entries = saved['images']
            except (OSError, ValueError, KeyError):
                self.entries = {}  # a damaged cache is rebuilt, never trusted

    def inspect_all(self, paths: list) -> dict:
        """``{path: entry}`` for ``paths``, decoding only files that are new or changed.

        Decoding runs in the calling thread on purpose: OpenCV used from a thread pool leaves threading
        state behind that deadlocks processes forked later (the data loader's workers)."""
        found, todo = {}, []
        for path in dict.fromkeys(paths):
            entry = self.entries.get(osp.abspath(path))
            try:
                fresh = entry is not None and entry.get('key') == _file_key(path)
            except OSError:
                fresh = False
            if fresh:
                found[path] = entry
            else:
                todo.append(path)
        for path in todo:
            found[path] = entry = _inspect(path)
            if not entry.get('missing'):
                self.entries[osp.abspath(path)] = entry
                self.changed = True
        return found

    def save(self) -> None:
        """Write the cache atomically (several processes may check the same data at once), if it changed."""
        if not self.path or not self.changed:
            return
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        tmp = f'{self.path}.{os.getpid()}.tmp'
        with open(tmp, 'w') as f:
            json.dump({'version': CACHE_VERSION, 'images': self.entries}, f)
        os.replace(tmp, self.path)


def check_dataset(dataset, name: str = None, cache: ImageCache = None, read_images: bool = True
                  ) -> DatasetReport:
    """Check every image and annotation of a loaded det dataset (records with ``img_path``, ``height``,
    ``width``, ``instances``; see :class:`~det.datasets.CocoDataset`).

    Unreadable files are also added to the image loader's once-per-run set, so that training does not
    warn about them again (the returned report names them).

    Args:
        dataset: a ``CocoDataset`` / ``VOCDataset`` (or subclass); initialised here if lazily built.
        name: how the table names it (default: the class name).
        cache: an :class:`ImageCache` to reuse and extend (default: none, every image is read).
        read_images: False checks the annotations only (no missing / unreadable / size / duplicate
            findings).

    Returns:
        a :class:`DatasetReport`.
    """
    dataset.full_init()
    records = [dataset.get_data_info(i) for i in range(len(dataset))]
    report = DatasetReport(name=name or type(dataset).__name__, num_images=len(records),
                           num_boxes=sum(len(r['instances']) for r in records),
                           test_mode=bool(dataset.test_mode))
    issues = getattr(dataset, 'annotation_issues', None)
    if issues is not None:
        for kind, files in issues.files.items():
            report.files[kind].extend(files)
    paths = [r['img_path'] for r in records]
    entries = (cache or ImageCache()).inspect_all(paths) if read_images else {}
    by_hash = defaultdict(list)
    for record in records:
        path = record['img_path']
        if not any(not inst['ignore_flag'] for inst in record['instances']):
            report.files[NO_BOX].append(path)
        if not read_images:
            continue
        entry = entries[path]
        if entry.get('missing'):
            report.files[MISSING].append(path)
            report.unreadable.append(path)
            continue
        report.hashes[path] = entry['sha1']
        by_hash[entry['sha1']].append(path)
        if entry['height'] is None:
            report.files[UNREADABLE].append(path)
            report.unreadable.append(path)
        elif (entry['height'], entry['width']) != (record['height'], record['width']):
            report.files[SIZE_MISMATCH].append(
                f"{path} (annotated {record['width']}x{record['height']}, "
                f"decoded {entry['width']}x{entry['height']})")
    for paths in by_hash.values():
        if len(paths) > 1:
            report.files[DUPLICATE].append(' = '.join(paths))
    REPORTED_UNREADABLE.update(report.unreadable)
    return report


def shared_files(first: DatasetReport, second: DatasetReport) -> list:
    """Image contents present in both reports' datasets (e.g. train images leaking into val), as
    ``'a = b'`` strings."""
    by_hash = defaultdict(list)
    for path, digest in first.hashes.items():
        by_hash[digest].append(path)
    return [f'{by_hash[d][0]} = {path}' for path, d in second.hashes.items() if d in by_hash]


def format_report(reports: list, extra_rows: list = (), max_files: int = 5) -> str:
    """One text table for several :class:`DatasetReport`: a row per dataset and kind of finding that
    occurred, with its count and the first ``max_files`` files named (``max_files=None``: all).

    Args:
        extra_rows: further ``(dataset, kind, files)`` rows, e.g. duplicates across splits.
    """
    def named(files):
        shown = files if max_files is None else files[:max_files]
        more = len(files) - len(shown)
        return ', '.join(shown) + (f', ... {more} more' if more else '')

    lines = [(r.name, 'images / boxes', f'{r.num_images} / {r.num_boxes}', '') for r in reports]
    findings = [(r.name, kind, r.files[kind]) for r in reports for kind in KINDS] + list(extra_rows)
    lines += [(name, kind, str(len(files)), named(files)) for name, kind, files in findings if files]
    header = ('dataset', 'check', 'count', 'files')
    widths = [max(len(str(x[i])) for x in lines + [header]) for i in range(3)]
    fmt = '  '.join(f'{{:<{w}}}' for w in widths) + '  {}'
    out = [fmt.format(*header), fmt.format(*('-' * w for w in widths), '-----')]
    out += [fmt.format(*line).rstrip() for line in lines]
    return '\n'.join(out)
