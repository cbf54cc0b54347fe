"""Draw a detector's boxes on images: ``python tools/demo.py CONFIG CKPT INPUT... [options]``.

INPUT: image files or folders (their images, not recursive). Each picture is written to ``--out-dir``
under its file name, with every detection scoring at least ``--score-thr`` drawn with its class name
and score. Options choose the inference:

    --scales 0.5 1 2 [--flip]         image pyramid (times the config's input size) and mirrored views
    --slice 512 [--overlap 0.2]       overlapping tiles of 512 px plus the whole image (--no-full-image:
                                      tiles only), for images much larger than the network input
    --merge nms|soft_nms|wbf [--iou-thr T]   how views or tiles are merged (default: nms, 0.5)
"""
import argparse
import os
import os.path as osp
import sys

import cv2
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from det.apis import init_detector, load_image
from det.inference import METHODS, multi_view_predict, sliced_predict, split_test_pipeline
from det.visualization import draw_boxes

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image files or folders of images')
    parser.add_argument('--out-dir', default='demo_out', help='where the pictures are written')
    parser.add_argument('--score-thr', type=float, default=0.3, help='draw detections scoring at least this')
    parser.add_argument('--device', default='cpu')
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


def find_images(inputs: list) -> list:
    """Image files named, and the images inside folders named, sorted within each folder. Output names
    are file names, so two inputs with the same name are an error."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            names = sorted(n for n in os.listdir(item) if n.lower().endswith(IMAGE_EXTENSIONS))
            paths += [osp.join(item, n) for n in names]
        elif osp.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f'no such file or folder: {item}')
    basenames = [osp.basename(p) for p in paths]
    repeated = sorted({n for n in basenames if basenames.count(n) > 1})
    if repeated:
        raise ValueError(f'several inputs are named {repeated}; their pictures would overwrite each other')
    return paths


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = find_images(args.inputs)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    if not paths:
        sys.exit(f'error: no images found in {args.inputs}')
    model = init_detector(args.config, args.checkpoint, args.device, args.cfg_options)
    classes = model.dataset_meta.get('classes', ())
    _, view_pipeline = split_test_pipeline(model.cfg)
    merge_cfg = dict(method=args.merge, iou_thr=args.iou_thr or (0.55 if args.merge == 'wbf' else 0.5))
    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(len(paths))
    for path in paths:
        img = load_image(path, path)['img']
        if args.slice is not None:
            pred = sliced_predict(model, img, view_pipeline, args.slice, args.overlap,
                                  full_image=not args.no_full_image, merge_cfg=merge_cfg)
        else:
            pred, = multi_view_predict(model, [img], view_pipeline, args.scales, args.flip, merge_cfg)
        pred = pred[pred.scores >= args.score_thr].cpu()
        canvas = draw_boxes(img, pred.bboxes.numpy(), pred.labels.numpy(), classes, pred.scores.numpy())
        out = osp.join(args.out_dir, osp.basename(path))
        if not cv2.imwrite(out, canvas):
            sys.exit(f'error: could not write {out}')
        progress.update()
    print(f'\n{len(paths)} pictures written to {args.out_dir}')


if __name__ == '__main__':
    main()
