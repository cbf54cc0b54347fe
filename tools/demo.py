"""Draw a detector's boxes on images and videos: ``python tools/demo.py CONFIG CKPT INPUT... [options]``
(CKPT: a .pth file, or a work dir for its best checkpoint, else its latest).

INPUT: image files, folders (their images and videos, not recursive), globs such as ``'photos/*.jpg'``
(quoted, or the shell expands them) and video files (.mp4, .avi, .mov, .mkv, ... read with OpenCV).
Into ``--out-dir`` go each picture under its file name and each video as ``<name>.mp4``, with every
detection scoring at least ``--pred-score-thr`` drawn with its class name and score (images smaller
than ``--min-size`` on the long side are scaled up so the labels can be read), and
``predictions.json``: every detection (any score the model keeps) in COCO style, i.e. ``images``
(``id``, ``file_name``, ``width``, ``height``, and ``frame`` for a video's frames), ``annotations``
(``image_id``, ``category_id`` = label + 1, ``bbox`` [x, y, w, h] original pixels, ``score``) and
``categories``; pycocotools' ``COCO()`` reads it. An image that cannot be read is skipped and named;
the exit status is non-zero only if no input could be read. Options choose the inference:

    --scales 0.5 1 2 [--flip]         image pyramid (times the config's input size) and mirrored views
    --slice 512 [--overlap 0.2]       overlapping tiles of 512 px plus the whole image (--no-full-image:
                                      tiles only), for images much larger than the network input
    --merge nms|soft_nms|wbf [--iou-thr T]   how views or tiles are merged (default: nms, 0.5)
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys

import cv2
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from det.apis import init_detector, load_image
from det.engine import checkpoint_to_test
from det.inference import METHODS, multi_view_predict, sliced_predict, split_test_pipeline
from det.visualization import DISPLAY_SIZE, draw_detections

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.mpg', '.mpeg', '.wmv', '.webm')
PREDICTIONS = 'predictions.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='a .pth file, or a work dir: its best checkpoint, else its latest')
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image or video files, folders of them, or globs')
    parser.add_argument('--out-dir', default='demo_out', help='where pictures, videos and predictions go')
    parser.add_argument('--pred-score-thr', '--score-thr', dest='score_thr', type=float, default=0.3,
                        help='draw detections scoring at least this')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda, cuda:1')
    parser.add_argument('--min-size', type=int, default=DISPLAY_SIZE,
                        help='scale drawn pictures up to at least this long side (0: keep the input size)')
    parser.add_argument('--no-save-vis', action='store_true', help='write no drawn pictures or videos')
    parser.add_argument('--no-save-pred', action='store_true', help=f'write no {PREDICTIONS}')
    parser.add_argument('--scales', type=float, nargs='+', default=[1.0],
                        help='pyramid scales, times the config input size')
    parser.add_argument('--flip', action='store_true', help='add a mirrored view at every scale')
    parser.add_argument('--slice', type=int, metavar='SIZE', help='predict overlapping tiles of SIZE pixels')
    parser.add_argument('--overlap', type=float, default=0.2, help='tile overlap ratio (with --slice)')
    parser.add_argument('--no-full-image', action='store_true',
                        help='with --slice: tiles only, no whole-image pass')
    parser.add_argument('--merge', choices=METHODS, default='nms', help='how views or tiles are merged')
    parser.add_argument('--iou-thr', type=float, help='merge IoU threshold (default 0.5; 0.55 for wbf)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.slice is not None and (args.scales != [1.0] or args.flip):
        parser.error('--slice cannot be combined with --scales or --flip')
    return args


def _is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def find_inputs(inputs: list) -> list:
    """Image and video files named, inside folders named (sorted) and matching globs (sorted). Output
    names are file names, so two inputs with the same name are an error."""
    media = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    paths = []
    for item in inputs:
        if osp.isdir(item):
            paths += [osp.join(item, n) for n in sorted(os.listdir(item)) if n.lower().endswith(media)]
        elif osp.isfile(item):
            paths.append(item)
        elif glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item) if osp.isfile(p) and p.lower().endswith(media))
            if not matches:
                raise FileNotFoundError(f'no image or video matches {item}')
            paths += matches
        else:
            raise FileNotFoundError(f'no such file or folder: {item}')
    outputs = [_output_name(p) for p in paths]
    repeated = sorted({n for n in outputs if outputs.count(n) > 1})
    if repeated:
        raise ValueError(f'several inputs would be written as {repeated}; they would overwrite each other')
    return paths


def _output_name(path: str) -> str:
    """The drawn file's name: the image's own, or ``<stem>.mp4`` for a video."""
    name = osp.basename(path)
    return osp.splitext(name)[0] + '.mp4' if _is_video(path) else name


class Predictor:
    """The chosen inference (plain, pyramid / flip, or sliced) of one BGR image -> ``InstanceData``
    on the CPU (xyxy original pixels, ``scores``, ``labels``)."""

    def __init__(self, model, args):
        self.model, self.args = model, args
        _, self.view_pipeline = split_test_pipeline(model.cfg)
        self.merge_cfg = dict(method=args.merge,
                              iou_thr=args.iou_thr or (0.55 if args.merge == 'wbf' else 0.5))

    def __call__(self, img):
        args = self.args
        if args.slice is not None:
            pred = sliced_predict(self.model, img, self.view_pipeline, args.slice, args.overlap,
                                  full_image=not args.no_full_image, merge_cfg=self.merge_cfg)
        else:
            pred, = multi_view_predict(self.model, [img], self.view_pipeline, args.scales, args.flip,
                                       self.merge_cfg)
        return pred.cpu()


class Predictions:
    """The COCO-style ``predictions.json`` being collected."""

    def __init__(self, classes):
        self.images, self.annotations = [], []
        self.categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]

    def add(self, file_name: str, img, pred, frame: int = None) -> None:
        image = dict(id=len(self.images) + 1, file_name=file_name, width=img.shape[1], height=img.shape[0])
        if frame is not None:
            image['frame'] = frame
        self.images.append(image)
        for (x1, y1, x2, y2), label, score in zip(pred.bboxes.tolist(), pred.labels.tolist(),
                                                  pred.scores.tolist()):
            w, h = x2 - x1, y2 - y1
            self.annotations.append(dict(id=len(self.annotations) + 1, image_id=image['id'],
                                         category_id=int(label) + 1, bbox=[x1, y1, w, h], area=w * h,
                                         score=score, iscrowd=0))

    def write(self, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(dict(images=self.images, annotations=self.annotations, categories=self.categories), f)


def _frame_count(path: str) -> int:
    capture = cv2.VideoCapture(path)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return max(count, 0)


def run_video(path, predict, predictions, args, classes, progress) -> int:
    """Predict and draw every frame of the video at ``path``; returns the number of frames read."""
    capture = cv2.VideoCapture(path)
    writer, frames = None, 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            pred = predict(frame)
            predictions.add(osp.basename(path), frame, pred, frame=frames)
            if not args.no_save_vis:
                canvas = draw_detections(frame, pred, classes, args.score_thr, args.min_size)
                if writer is None:
                    out = osp.join(args.out_dir, _output_name(path))
                    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
                    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                             (canvas.shape[1], canvas.shape[0]))
                    if not writer.isOpened():
                        raise OSError(f'could not open {out} for writing')
                writer.write(canvas)
            frames += 1
            progress.update()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return frames


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = find_inputs(args.inputs)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    if not paths:
        sys.exit(f'error: no images or videos found in {args.inputs}')
    try:
        checkpoint = checkpoint_to_test(args.checkpoint)
    except FileNotFoundError as error:
        sys.exit(f'error: {error}')
    model = init_detector(args.config, checkpoint, args.device, args.cfg_options)
    classes = model.dataset_meta.get('classes', ())
    predict = Predictor(model, args)
    predictions = Predictions(classes)
    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(sum(_frame_count(p) if _is_video(p) else 1 for p in paths), file=sys.stdout)
    done, skipped = [], []
    for path in paths:
        if _is_video(path):
            if run_video(path, predict, predictions, args, classes, progress):
                done.append(path)
            else:
                skipped.append(path)
                print(f'\nskipped {path}: no frame could be read', file=sys.stderr)
            continue
        try:
            img = load_image(path, path)['img']
        except (OSError, ValueError) as error:  # missing, truncated or not an image: name it and go on
            skipped.append(path)
            print(f'\nskipped {error}', file=sys.stderr)
            progress.update()
            continue
        pred = predict(img)
        predictions.add(osp.basename(path), img, pred)
        if not args.no_save_vis:
            out = osp.join(args.out_dir, _output_name(path))
            if not cv2.imwrite(out, draw_detections(img, pred, classes, args.score_thr, args.min_size)):
                sys.exit(f'error: could not write {out}')
        done.append(path)
        progress.update()
    if skipped:
        print(f'\n{len(skipped)} of {len(paths)} inputs skipped (could not be read): {", ".join(skipped)}',
              file=sys.stderr)
    if not done:
        sys.exit(f'error: none of the {len(paths)} inputs could be read')
    print(f'\n{len(done)} of {len(paths)} inputs read, {len(predictions.annotations)} detections')
    if not args.no_save_vis:
        print(f'pictures and videos drawn into {args.out_dir}')
    if not args.no_save_pred:
        predictions.write(osp.join(args.out_dir, PREDICTIONS))
        print(f'predictions written to {osp.join(args.out_dir, PREDICTIONS)}')

if __name__ == '__main__':
    main()
