"""Throughput of the Python augmentation references (Albumentations 2.0.8, imgaug 0.4.0), in img/s.

    python bench_reference.py --images 224 --threads 1 --repeats 3 --json
    python bench_reference.py --images mixed --threads 2 --ops hflip,rotate,classification --json
    python bench_reference.py --images /path/to/pngs --threads 1      # PNGs the Rust side wrote
    python bench_reference.py --list                                  # op names, one a line

Run it with the venv from setup_venv.sh (`~/.cache/kindling-augment-venv/bin/python`).

Image sets (uint8 RGB arrays, decoded, made in-process; the Rust side can make the same ones, see
`make_image` and README.md): `224` = 64 images 224x224, `512` = 32 images 512x512, `mixed` = 48
images with height and width each in 300..=640, or a folder: every *.png in it (sorted by name,
decoded to RGB with cv2).

Timing: for each op and library the transform is built once, then applied to every image of the
set (one call per image, p=1, the output made a C-contiguous array); one warm-up pass, then the
median wall time of --repeats passes; img/s = images / median seconds. Ops whose per-image cost
is extreme are run on the first few images only (imgaug PiecewiseAffine: 4); `images_timed` in
the JSON says how many. A library without the op reports null; an op that raises reports null
and the message under `errors`.

Threads: OMP/OPENBLAS/MKL_NUM_THREADS=T are set before numpy and cv2 are imported and
cv2.setNumThreads(0) (OpenCV's own pool off) in every process. T=1 runs in this process. T>1
starts T worker processes (fork) that each take a contiguous 1/T share of the images and run the
same passes in lock-step; img/s is total images / wall time of the slowest worker's pass
(the parent times dispatch to last reply), i.e. what T rayon threads on the Rust side compare to.

Output with --json: one object
  {"versions": {...}, "threads": T, "set": "224", "images": N, "repeats": R, "seed": S,
   "img_per_s": {"albumentations": {op: v}, "imgaug": {op: v or null}},
   "images_timed": {lib: {op: n}}  (only ops timed on fewer than N images),
   "errors": {lib: {op: "message"}}}
Without --json a table is printed. Progress goes to stderr.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the committed files


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", default="224",
                    help="224 | 512 | mixed | a folder of PNGs (default 224)")
    ap.add_argument("--threads", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes, median (default 3)")
    ap.add_argument("--ops", default="all", help="comma-separated op names or 'all' (default)")
    ap.add_argument("--libs", default="albumentations,imgaug",
                    help="comma-separated subset of albumentations,imgaug")
    ap.add_argument("--seed", type=int, default=42, help="image-set and augmentation seed")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--list", action="store_true", help="print the op names and exit")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
_T = str(max(1, ARGS.threads)) if ARGS is not None else "1"
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = _T

sys.path.insert(0, HERE)
import compat  # noqa: E402,F401  (numpy aliases for imgaug, before imgaug)
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import cv2  # noqa: E402

cv2.setNumThreads(0)
warnings.filterwarnings("ignore")

import albucore  # noqa: E402
import albumentations as A  # noqa: E402
import imgaug  # noqa: E402
import imgaug.augmenters as iaa  # noqa: E402
from imgaug.augmentables.bbs import BoundingBox, BoundingBoxesOnImage  # noqa: E402
from imgaug.augmentables.kps import Keypoint, KeypointsOnImage  # noqa: E402

VERSIONS = {"python": sys.version.split()[0], "numpy": np.__version__, "opencv": cv2.__version__,
            "albumentations": A.__version__, "albucore": albucore.__version__,
            "imgaug": imgaug.__version__}
LIBS = ("albumentations", "imgaug")

# ------------------------------------------------------------------------------ image sets
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(z):
    """splitmix64 output function on uint64 numpy arrays (or ints): wraps mod 2^64."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def make_image(seed, i, h, w):
    """Image i of a set: integer-only, so any language reproduces it exactly.

    r(y, x)   = splitmix64(seed ^ (i << 48) ^ (y << 24) ^ x)   (64-bit wrapping, XOR)
    gx        = x * 255 // (w - 1),  gy = y * 255 // (h - 1)
    check     = ((x // 16 + y // 16 + i) % 2) * 128 + 64          (16-px checkerboard)
    base      = [(3*gx + check) // 4, (3*gy + check) // 4, (gx + gy) // 2]
    noise[c]  = ((r >> (16*c)) & 31) - 16                         (c = 0, 1, 2)
    pixel[c]  = clamp(base[c] + noise[c], 0, 255)
    """
    y = np.arange(h, dtype=np.uint64)[:, None]
    x = np.arange(w, dtype=np.uint64)[None, :]
    key = np.uint64(seed) ^ (np.uint64(i) << np.uint64(48)) ^ (y << np.uint64(24)) ^ x
    r = splitmix64(key)
    xi = np.arange(w, dtype=np.int64)[None, :]
    yi = np.arange(h, dtype=np.int64)[:, None]
    gx = np.broadcast_to(xi * 255 // max(w - 1, 1), (h, w))
    gy = np.broadcast_to(yi * 255 // max(h - 1, 1), (h, w))
    check = ((xi // 16 + yi // 16 + i) % 2) * 128 + 64
    base = [(3 * gx + check) // 4, (3 * gy + check) // 4, (gx + gy) // 2]
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        noise = ((r >> np.uint64(16 * c)) & np.uint64(31)).astype(np.int64) - 16
        out[..., c] = np.clip(base[c] + noise, 0, 255)
    return out


def set_shapes(name, seed):
    """(h, w) of each image. mixed: h = 300 + s(2i) % 341, w = 300 + s(2i+1) % 341 with
    s(k) = splitmix64(seed ^ 0xA5A5A5A5 ^ k)."""
    if name == "224":
        return [(224, 224)] * 64
    if name == "512":
        return [(512, 512)] * 32
    if name == "mixed":
        out = []
        for i in range(48):
            a = int(splitmix64(seed ^ 0xA5A5A5A5 ^ (2 * i)))
            b = int(splitmix64(seed ^ 0xA5A5A5A5 ^ (2 * i + 1)))
            out.append((300 + a % 341, 300 + b % 341))
        return out
    raise ValueError(name)


def load_images(spec, seed):
    if spec in ("224", "512", "mixed"):
        return [make_image(seed, i, h, w) for i, (h, w) in enumerate(set_shapes(spec, seed))]
    if not os.path.isdir(spec):
        raise SystemExit(f"--images: not 224, 512, mixed or a folder: {spec}")
    files = sorted(f for f in os.listdir(spec) if f.lower().endswith(".png"))
    if not files:
        raise SystemExit(f"--images: no .png files in {spec}")
    out = []
    for f in files:
        im = cv2.imread(os.path.join(spec, f), cv2.IMREAD_COLOR)
        out.append(np.ascontiguousarray(cv2.cvtColor(im, cv2.COLOR_BGR2RGB)))
    return out


def make_targets(seed, i, h, w):
    """Detection targets of image i: 8 pascal_voc boxes (x1 < x2, y1 < y2, inside the image,
    sides 10..50% of the image side) with labels 0..7, and 16 keypoints (x, y) inside it."""
    rng = np.random.default_rng([seed, i])
    bw = rng.uniform(0.1, 0.5, 8) * w
    bh = rng.uniform(0.1, 0.5, 8) * h
    x1 = rng.uniform(0, 1, 8) * (w - bw)
    y1 = rng.uniform(0, 1, 8) * (h - bh)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1).round(2)
    kps = np.stack([rng.uniform(0, w - 1, 16), rng.uniform(0, h - 1, 16)], 1).round(2)
    return boxes, list(range(8)), kps


# ------------------------------------------------------------------------------ ops
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def per_shape(fn):
    """A factory called with (h, w) for ops whose parameters depend on the image size."""
    fn.per_shape = True
    return fn


# Each op: (albumentations factory or None, imgaug factory or None). Factories take no argument,
# or (h, w) when marked per_shape. README.md lists the same calls.
def _a_rrc():
    return A.RandomResizedCrop(size=(224, 224), p=1)


OPS = {
    "hflip": (lambda: A.HorizontalFlip(p=1), lambda: iaa.Fliplr(1.0)),
    "vflip": (lambda: A.VerticalFlip(p=1), lambda: iaa.Flipud(1.0)),
    "rotate": (lambda: A.Rotate(limit=(-30, 30), interpolation=cv2.INTER_LINEAR,
                                border_mode=cv2.BORDER_CONSTANT, fill=0, p=1),
               lambda: iaa.Affine(rotate=(-30, 30), order=1, mode="constant", cval=0)),
    "affine": (lambda: A.Affine(scale=(0.9, 1.1), keep_ratio=True,
                                translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)},
                                rotate=(-25, 25), shear={"x": (-8, 8), "y": (-8, 8)},
                                interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT,
                                fill=0, p=1),
               lambda: iaa.Affine(scale=(0.9, 1.1),
                                  translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)},
                                  rotate=(-25, 25), shear={"x": (-8, 8), "y": (-8, 8)},
                                  order=1, mode="constant", cval=0)),
    "rot90": (lambda: A.RandomRotate90(p=1), lambda: iaa.Rot90((1, 3), keep_size=False)),
    "random_resized_crop": (_a_rrc, None),
    "resize": (lambda: A.Resize(256, 256, interpolation=cv2.INTER_LINEAR, p=1),
               lambda: iaa.Resize({"height": 256, "width": 256}, interpolation="linear")),
    "crop": (per_shape(lambda h, w: A.RandomCrop(height=int(0.8 * h), width=int(0.8 * w), p=1)),
             lambda: iaa.Crop(percent=(0, 0.2), keep_size=False)),
    "pad": (per_shape(lambda h, w: A.PadIfNeeded(min_height=h + 2 * int(0.1 * h),
                                                 min_width=w + 2 * int(0.1 * w),
                                                 border_mode=cv2.BORDER_CONSTANT, fill=0, p=1)),
            lambda: iaa.Pad(percent=0.1, pad_mode="constant", pad_cval=0, keep_size=False)),
    "crop_and_pad": (lambda: A.CropAndPad(percent=(-0.2, 0.2), keep_size=False, p=1),
                     lambda: iaa.CropAndPad(percent=(-0.2, 0.2), keep_size=False)),
    "gaussian_blur": (lambda: A.GaussianBlur(blur_limit=0, sigma_limit=(0.5, 2.0), p=1),
                      lambda: iaa.GaussianBlur(sigma=(0.5, 2.0))),
    "average_blur": (lambda: A.Blur(blur_limit=(3, 7), p=1), lambda: iaa.AverageBlur(k=(3, 7))),
    "median_blur": (lambda: A.MedianBlur(blur_limit=(3, 7), p=1),
                    lambda: iaa.MedianBlur(k=(3, 7))),
    "motion_blur": (lambda: A.MotionBlur(blur_limit=(3, 7), p=1),
                    lambda: iaa.MotionBlur(k=(3, 7))),
    "gaussian_noise": (lambda: A.GaussNoise(std_range=(0.04, 0.2), per_channel=True, p=1),
                       lambda: iaa.AdditiveGaussianNoise(scale=(10, 50), per_channel=True)),
    "salt_and_pepper": (lambda: A.SaltAndPepper(amount=(0.01, 0.06), p=1),
                        lambda: iaa.SaltAndPepper(0.05)),
    "dropout": (lambda: A.PixelDropout(dropout_prob=0.05, per_channel=False, drop_value=0, p=1),
                lambda: iaa.Dropout(p=0.05)),
    "coarse_dropout": (lambda: A.CoarseDropout(num_holes_range=(1, 8),
                                               hole_height_range=(0.05, 0.15),
                                               hole_width_range=(0.05, 0.15), fill=0, p=1),
                       lambda: iaa.CoarseDropout(0.05, size_percent=0.1)),
    "brightness": (lambda: A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0,
                                                      p=1),
                   lambda: iaa.MultiplyBrightness((0.8, 1.2))),
    "contrast": (lambda: A.RandomBrightnessContrast(brightness_limit=0, contrast_limit=0.2, p=1),
                 lambda: iaa.LinearContrast((0.8, 1.2))),
    "multiply": (lambda: A.MultiplicativeNoise(multiplier=(0.8, 1.2), per_channel=False,
                                               elementwise=False, p=1),
                 lambda: iaa.Multiply((0.8, 1.2))),
    "hue_saturation": (lambda: A.HueSaturationValue(hue_shift_limit=20, sat_shift_limit=30,
                                                    val_shift_limit=0, p=1),
                       lambda: iaa.AddToHueAndSaturation((-20, 20))),
    "grayscale": (lambda: A.ToGray(num_output_channels=3, method="weighted_average", p=1),
                  lambda: iaa.Grayscale(alpha=1.0)),
    "gamma": (lambda: A.RandomGamma(gamma_limit=(50, 200), p=1),
              lambda: iaa.GammaContrast((0.5, 2.0))),
    "equalize": (lambda: A.Equalize(mode="cv", by_channels=True, p=1),
                 lambda: iaa.AllChannelsHistogramEqualization()),
    "clahe": (lambda: A.CLAHE(clip_limit=(1, 4), tile_grid_size=(8, 8), p=1),
              lambda: iaa.CLAHE(clip_limit=(1, 4), tile_grid_size_px=8)),
    "invert": (lambda: A.InvertImg(p=1), lambda: iaa.Invert(1.0)),
    "solarize": (lambda: A.Solarize(threshold_range=(0.5, 0.5), p=1),
                 lambda: iaa.Solarize(1.0, threshold=128)),
    "posterize": (lambda: A.Posterize(num_bits=4, p=1), lambda: iaa.Posterize(4)),
    "sharpen": (lambda: A.Sharpen(alpha=(0.0, 1.0), lightness=(0.75, 1.5), method="kernel", p=1),
                lambda: iaa.Sharpen(alpha=(0.0, 1.0), lightness=(0.75, 1.5))),
    "emboss": (lambda: A.Emboss(alpha=(0.0, 1.0), strength=(0.5, 1.5), p=1),
               lambda: iaa.Emboss(alpha=(0.0, 1.0), strength=(0.5, 1.5))),
    "channel_shuffle": (lambda: A.ChannelShuffle(p=1), lambda: iaa.ChannelShuffle(1.0)),
    "jpeg": (lambda: A.ImageCompression(compression_type="jpeg", quality_range=(50, 95), p=1),
             lambda: iaa.JpegCompression(compression=(5, 50))),
    "elastic": (lambda: A.ElasticTransform(alpha=50, sigma=5, interpolation=cv2.INTER_LINEAR,
                                           border_mode=cv2.BORDER_CONSTANT, p=1),
                lambda: iaa.ElasticTransformation(alpha=50, sigma=5, order=1, mode="constant")),
    "perspective": (lambda: A.Perspective(scale=(0.05, 0.1), keep_size=True, p=1),
                    lambda: iaa.PerspectiveTransform(scale=(0.05, 0.1), keep_size=True)),
    "grid_distortion": (lambda: A.GridDistortion(p=1), None),
    # Albumentations 2.0.8 has PiecewiseAffine too (skimage's warp), ~6 s per 512² image
    # measured: not timed.
    "piecewise_affine": (None, lambda: iaa.PiecewiseAffine(scale=(0.01, 0.05))),
    "normalize": (lambda: A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                      max_pixel_value=255.0, p=1), None),
    # pipelines
    "classification": (lambda: A.Compose([A.RandomResizedCrop(size=(224, 224), p=1),
                                          A.HorizontalFlip(p=0.5),
                                          A.RandomBrightnessContrast(0.2, 0.2, p=0.5),
                                          A.Normalize(p=1)]), None),
    "tutorial": (lambda: A.Compose([A.Affine(rotate=(-25, 25), p=1),
                                    A.GaussNoise(std_range=(10 / 255, 60 / 255), p=1),
                                    A.RandomCropFromBorders(crop_left=0.2, crop_right=0.2,
                                                            crop_top=0.2, crop_bottom=0.2, p=1)]),
                 lambda: iaa.Sequential([iaa.Affine(rotate=(-25, 25)),
                                         iaa.AdditiveGaussianNoise(scale=(10, 60)),
                                         iaa.Crop(percent=(0, 0.2))])),
    "detection": (lambda: A.Compose(
        [A.Affine(scale=(0.8, 1.2), rotate=(-15, 15),
                  translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)}, keep_ratio=True, p=1),
         A.HorizontalFlip(p=0.5),
         A.PadIfNeeded(512, 512, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1),
         A.RandomCrop(512, 512, p=1)],
        bbox_params=A.BboxParams(format="pascal_voc", min_visibility=0.3, label_fields=["labels"]),
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False)),
        lambda: iaa.Sequential([
            iaa.Affine(scale=(0.8, 1.2), rotate=(-15, 15),
                       translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)}, order=1),
            iaa.Fliplr(0.5),
            iaa.PadToFixedSize(width=512, height=512, pad_mode="constant", pad_cval=0),
            iaa.CropToFixedSize(width=512, height=512)])),
}
PIPELINES = ("classification", "tutorial", "detection")
IMGAUG_CAP = {"piecewise_affine": 4}   # PiecewiseAffine: 0.2–2 s per image


class Runner:
    """Applies one (lib, op) to a list of images; transforms cached per image shape if needed."""

    def __init__(self, lib, op, seed):
        self.lib, self.op, self.seed = lib, op, seed
        fac = OPS[op][0 if lib == "albumentations" else 1]
        self.factory = fac
        self.shaped = getattr(fac, "per_shape", False)
        self.cache = {}
        self.det = op == "detection"

    def transform(self, img):
        key = img.shape[:2] if self.shaped else None
        t = self.cache.get(key)
        if t is None:
            t = self.factory(*img.shape[:2]) if self.shaped else self.factory()
            if self.lib == "albumentations":
                t.set_random_seed(self.seed)
            else:
                t.seed_(self.seed)
            self.cache[key] = t
        return t

    def __call__(self, img, targets):
        t = self.transform(img)
        if self.lib == "albumentations":
            if self.det:
                boxes, labels, kps = targets
                r = t(image=img, bboxes=boxes, labels=labels, keypoints=kps)
                return np.ascontiguousarray(r["image"]), r["bboxes"], r["keypoints"]
            return np.ascontiguousarray(t(image=img)["image"])
        if self.det:
            boxes, labels, kps = targets
            bbs = BoundingBoxesOnImage([BoundingBox(*b, label=l) for b, l in zip(boxes, labels)],
                                       shape=img.shape)
            kpo = KeypointsOnImage([Keypoint(x, y) for x, y in kps], shape=img.shape)
            im, bbs, kpo = t(image=img, bounding_boxes=bbs, keypoints=kpo)
            bbs = bbs.remove_out_of_image_fraction_(0.7).clip_out_of_image_()
            return np.ascontiguousarray(im), bbs, kpo
        return np.ascontiguousarray(t(image=img))


def run_pass(runner, images, targets):
    # Fresh copies of the inputs, untimed, as the Rust side makes before each pass (its ops
    # consume their input): both sides then read freshly written images, as a data loader's
    # decoded images are. Reusing the same arrays on every pass instead kept the reference's
    # inputs clean in the cache (no write-back when evicted), which favoured it on the
    # memory-bound ops (flips, crops) by up to 2x at 512 px.
    images = [im.copy() for im in images]
    t0 = time.perf_counter()
    for img, tg in zip(images, targets):
        runner(img, tg)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------ workers
def _worker(conn, images, targets, seed, wid):
    random.seed(seed + wid)
    np.random.seed(seed + wid)
    imgaug.seed(seed + wid)
    runners = {}
    while True:
        msg = conn.recv()
        if msg is None:
            break
        lib, op, n = msg
        try:
            key = (lib, op)
            if key not in runners:
                runners[key] = Runner(lib, op, seed + 1000 * wid)
            sub_i = images if n is None else images[:n]
            sub_t = targets if n is None else targets[:n]
            conn.send(("ok", run_pass(runners[key], sub_i, sub_t)))
        except Exception as e:  # noqa: BLE001
            conn.send(("err", f"{type(e).__name__}: {e}"))
    conn.close()


class Pool:
    """T forked workers, each with a contiguous share of the images."""

    def __init__(self, images, targets, threads, seed):
        ctx = mp.get_context("fork")
        self.conns, self.procs, self.sizes = [], [], []
        n = len(images)
        bounds = [n * k // threads for k in range(threads + 1)]
        for k in range(threads):
            a, b = bounds[k], bounds[k + 1]
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, images[a:b], targets[a:b], seed, k),
                            daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
            self.sizes.append(b - a)

    def run(self, lib, op, cap):
        """One pass over all images (or `cap` images split over the workers); returns
        (wall seconds, images done)."""
        shares = self.sizes if cap is None else [
            cap * (k + 1) // len(self.conns) - cap * k // len(self.conns)
            for k in range(len(self.conns))]
        t0 = time.perf_counter()
        for c, s in zip(self.conns, shares):
            c.send((lib, op, None if cap is None else s))
        replies = [c.recv() for c in self.conns]
        dt = time.perf_counter() - t0
        for kind, val in replies:
            if kind == "err":
                raise RuntimeError(val)
        return dt, sum(shares)

    def close(self):
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(timeout=10)


class Local:
    def __init__(self, images, targets, seed):
        random.seed(seed)
        np.random.seed(seed)
        imgaug.seed(seed)
        self.images, self.targets, self.seed = images, targets, seed
        self.runners = {}

    def run(self, lib, op, cap):
        key = (lib, op)
        if key not in self.runners:
            self.runners[key] = Runner(lib, op, self.seed)
        imgs = self.images if cap is None else self.images[:cap]
        tgs = self.targets if cap is None else self.targets[:cap]
        return run_pass(self.runners[key], imgs, tgs), len(imgs)

    def close(self):
        pass


# ------------------------------------------------------------------------------ main
def main(args):
    if args.list:
        print("\n".join(OPS))
        return 0
    ops = list(OPS) if args.ops == "all" else [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise SystemExit(f"unknown ops: {unknown}; --list prints the names")
    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    assert all(lib in LIBS for lib in libs), libs
    threads = max(1, args.threads)

    t0 = time.perf_counter()
    images = load_images(args.images, args.seed)
    targets = [make_targets(args.seed, i, *im.shape[:2]) for i, im in enumerate(images)]
    n = len(images)
    print(f"set {args.images}: {n} images, made in {time.perf_counter() - t0:.1f}s; "
          f"threads {threads}, repeats {args.repeats}", file=sys.stderr)

    ex = Local(images, targets, args.seed) if threads == 1 else \
        Pool(images, targets, threads, args.seed)
    result = {lib: {} for lib in LIBS}
    timed, errors = {}, {}
    try:
        for op in ops:
            for lib in LIBS:
                fac = OPS[op][0 if lib == "albumentations" else 1]
                if fac is None or lib not in libs:
                    result[lib][op] = None
                    continue
                cap = IMGAUG_CAP.get(op) if lib == "imgaug" else None
                cap = None if cap is None or cap >= n else cap
                try:
                    ex.run(lib, op, cap)                       # warm-up
                    times = []
                    for _ in range(args.repeats):
                        dt, done = ex.run(lib, op, cap)
                        times.append(dt)
                    med = statistics.median(times)
                    result[lib][op] = round(done / med, 2)
                    if done != n:
                        timed.setdefault(lib, {})[op] = done
                    print(f"  {op:20s} {lib:15s} {result[lib][op]:10.1f} img/s"
                          f"{'' if done == n else f'  ({done} images)'}", file=sys.stderr)
                except Exception as e:  # noqa: BLE001
                    result[lib][op] = None
                    msg = f"{type(e).__name__}: {e}"
                    errors.setdefault(lib, {})[op] = msg
                    print(f"  {op:20s} {lib:15s} ERROR {msg}", file=sys.stderr)
                    if os.environ.get("BENCH_TRACEBACK"):
                        traceback.print_exc()
    finally:
        ex.close()

    doc = {"versions": VERSIONS, "threads": threads, "set": args.images, "images": n,
           "repeats": args.repeats, "seed": args.seed, "img_per_s": result}
    if timed:
        doc["images_timed"] = timed
    if errors:
        doc["errors"] = errors
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(f"{'op':22s}{'albumentations':>16s}{'imgaug':>12s}   img/s, set {args.images}, "
              f"{threads} thread(s)")
        for op in ops:
            a, b = result["albumentations"].get(op), result["imgaug"].get(op)
            fa = f"{a:16.1f}" if a is not None else f"{'-':>16s}"
            fb = f"{b:12.1f}" if b is not None else f"{'-':>12s}"
            print(f"{op:22s}{fa}{fb}")
    print(f"total {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
