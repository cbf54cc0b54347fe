"""Data checks before a run: what is wrong with a dataset's images and annotations, in one table.

Two halves:

- While a dataset loads its annotations, :class:`AnnotationIssues` records, per file, the boxes that
  were clipped or dropped (``box_sanity``) and the annotations of categories the dataset does not know
  (a COCO ``category_id`` or a VOC ``<name>`` outside the dataset's classes). Those annotations are
  skipped, but never silently: the dataset warns once with their count.
- :func:`check_dataset` then reads every image file once: missing or undecodable files (with the
  reason), files cut short that are read as a viewer reads them, images whose size differs from the
  annotation's (e.g. an EXIF rotation the annotation did not expect), images without boxes and
  byte-identical duplicates (content hash). Training images are checked from their headers (size,
  EXIF orientation) and end markers, about 40x faster than decoding; a file whose header or end looks
  wrong, or whose header size differs from the annotation, is decoded to be sure. A file with a sound
  header and end but broken pixel data therefore passes, and the training loader skips it and names it
  (``LoadImageFromFile(on_error='skip')``). Test-mode datasets are decoded in full, since evaluation
  cannot skip an image mid-run; ``decode_all`` decodes training images too. File size and modification
  time key a cache, so a second check of unchanged data reads no image and takes about as long as
  ``stat``.

:func:`format_report` renders the findings of one or more datasets as one table naming the files. The
checks only report; whether a finding stops a run is the caller's decision (``det.engine.preflight``).

Unreadable images of a test-mode dataset are left out of evaluation rather than stopping a run: the
run's start-up check registers them (:func:`leave_out_of_evaluation`), and det's datasets built in test
mode afterwards drop them and list them in ``metainfo['unreadable_images']``, from which the metric
says what it covers (:func:`split_left_out`).
"""
import hashlib
import json
import os
import os.path as osp
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from .transforms.image_decoding import decode, header_size, looks_cut_short
from .transforms.loading import REPORTED_UNREADABLE

# Kinds of findings, in the order the table lists them.
MISSING = 'missing image'
UNREADABLE = 'unreadable image'
TRUNCATED = 'truncated image, read'
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
KINDS = (MISSING, UNREADABLE, TRUNCATED, SIZE_MISMATCH, INVALID_BOX, CLIPPED_BOX, UNKNOWN_CATEGORY,
         JSON_FILLED, ORPHAN_ANNOTATION, UNUSED_CLASS, NO_BOX, DUPLICATE)
# Findings that mean lost or wrong training signal (a truncated image's missing rows are filled in);
# images without boxes are valid negatives.
PROBLEM_KINDS = (MISSING, UNREADABLE, TRUNCATED, SIZE_MISMATCH, INVALID_BOX, CLIPPED_BOX, UNKNOWN_CATEGORY,
                 JSON_FILLED, ORPHAN_ANNOTATION, UNUSED_CLASS, DUPLICATE)

CACHE_VERSION = 2

# Unreadable images that test-mode datasets built from now on in this process leave out of evaluation.
_LEFT_OUT = set()


def leave_out_of_evaluation(paths) -> None:
    """Have det's test-mode datasets built after this call (in this process) leave the image files
    ``paths`` out: they cannot be read, and a test-mode pipeline cannot skip an image mid-run.
    Called by the start-up check of a run (``det.engine.preflight.check_before_run``) unless it is strict."""
    _LEFT_OUT.update(paths)


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


def split_left_out(dataset, name: str) -> list:
    """The records of a test-mode ``dataset`` to evaluate: those whose image is not registered by
    :func:`leave_out_of_evaluation`. The others go to ``dataset.left_out`` and their paths to
    ``metainfo['unreadable_images']`` (for the metric); a dataset left without images is an error
    that says why."""
    dataset.left_out = [r for r in dataset.data_list if r['img_path'] in _LEFT_OUT]
    if not dataset.left_out:
        return dataset.data_list
    kept = [r for r in dataset.data_list if r['img_path'] not in _LEFT_OUT]
    if not kept:
        raise no_images_error(name, f'none of its {len(dataset.data_list)} images can be read (the data '
                                    'check names them)')
    dataset._metainfo['unreadable_images'] = [r['img_path'] for r in dataset.left_out]
    return kept


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


def _inspect(path: str, decode_all: bool) -> dict:
    """Hash one image file and find its upright size: ``dict(key, sha1, height, width, decoded,
    truncated, reason)``, or ``dict(missing=True)`` when the file does not exist.

    The size comes from the header unless ``decode_all``, the header does not parse, or the file lacks
    its end marker; then the file is decoded (``decoded=True``): height and width are None when it does
    not decode (``reason`` says why), and ``truncated`` says it was cut short and read anyway."""
    try:
        key = _file_key(path)
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return dict(missing=True)
    entry = dict(key=key, sha1=hashlib.sha1(data.tobytes()).hexdigest(), decoded=False, truncated=False,
                 reason='')
    size = None if decode_all or looks_cut_short(data) else header_size(data)
    if size is None:
        decoded = decode(data)
        size = (None, None) if decoded.img is None else decoded.img.shape[:2]
        entry.update(decoded=True, truncated=decoded.truncated, reason=decoded.reason)
    entry.update(height=size[0], width=size[1])
    return entry


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

    def inspect_all(self, paths: list, decode_all: bool = False) -> dict:
        """``{path: entry}`` for ``paths``, inspecting only files that are new or changed (or, with
        ``decode_all``, known from their header only).

        Decoding runs in the calling thread on purpose: OpenCV used from a thread pool leaves threading
        state behind that deadlocks processes forked later (the data loader's workers)."""
        found, todo = {}, []
        for path in dict.fromkeys(paths):
            entry = self.entries.get(osp.abspath(path))
            try:
                fresh = (entry is not None and entry.get('key') == _file_key(path)
                         and (entry['decoded'] or not decode_all))
            except OSError:
                fresh = False
            if fresh:
                found[path] = entry
            else:
                todo.append(path)
        for path in todo:
            found[path] = entry = _inspect(path, decode_all)
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


def _header_size_differs(entry: dict, record: dict) -> bool:
    return (not entry.get('missing') and not entry['decoded']
            and (entry['height'], entry['width']) != (record['height'], record['width']))


def check_dataset(dataset, name: str = None, cache: ImageCache = None, read_images: bool = True,
                  decode_all: bool = False) -> DatasetReport:
    """Check every image and annotation of a loaded det dataset (records with ``img_path``, ``height``,
    ``width``, ``instances``; see :class:`~det.datasets.CocoDataset`), including the records a
    test-mode dataset left out of evaluation (:func:`split_left_out`).

    Unreadable files are also added to the image loader's once-per-run set, so that training does not
    warn about them again (the returned report names them).

    Args:
        dataset: a ``CocoDataset`` / ``VOCDataset`` (or subclass); initialised here if lazily built.
        name: how the table names it (default: the class name).
        cache: an :class:`ImageCache` to reuse and extend (default: none, every image is read).
        read_images: False checks the annotations only (no missing / unreadable / truncated / size /
            duplicate findings).
        decode_all: decode every image; by default a training dataset's images are checked from their
            headers and end markers (see the module docstring), a test-mode dataset's are decoded.

    Returns:
        a :class:`DatasetReport`.
    """
    dataset.full_init()
    records = [dataset.get_data_info(i) for i in range(len(dataset))] + list(getattr(dataset, 'left_out', []))
    report = DatasetReport(name=name or type(dataset).__name__, num_images=len(records),
                           num_boxes=sum(len(r['instances']) for r in records),
                           test_mode=bool(dataset.test_mode))
    issues = getattr(dataset, 'annotation_issues', None)
    if issues is not None:
        for kind, files in issues.files.items():
            report.files[kind].extend(files)
    entries = {}
    if read_images:
        cache = cache or ImageCache()
        entries = cache.inspect_all([r['img_path'] for r in records], decode_all or report.test_mode)
        # A size read from the header that differs from the annotation is confirmed by decoding.
        differing = [r['img_path'] for r in records if _header_size_differs(entries[r['img_path']], r)]
        entries.update(cache.inspect_all(differing, decode_all=True))
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
            report.files[UNREADABLE].append(f"{path} ({entry['reason']})")
            report.unreadable.append(path)
            continue
        if entry['truncated']:
            report.files[TRUNCATED].append(path)
        if (entry['height'], entry['width']) != (record['height'], record['width']):
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
