"""COLMAP through pycolmap on CPU: SIFT, sequential or exhaustive matching, incremental mapping with
one shared camera, the largest model kept, then an undistorted pinhole camera for the bag.

pycolmap's own pixel convention (pixel centres at +0.5) is the library's; CameraInfo's OpenCV
convention is applied once, where the bag is written.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from dgslrm_ros.posing.errors import PoseError, PoseOptionError, RegistrationError, require_cv2, require_pycolmap


@dataclass(frozen=True)
class ColmapOptions:
    """What `dgslrm pose` lets a user change; the defaults pose a 50-100 frame clip in a minute or two."""

    max_features: int = 4096  # SIFT features per image
    matching: str = "auto"  # auto | sequential | exhaustive
    exhaustive_below: int = 40  # auto: exhaustive for fewer frames than this (pairs grow as T^2)
    overlap: int = 10  # sequential: each frame is matched with this many following ones
    camera_model: str = "SIMPLE_RADIAL"  # one camera shared by all frames
    init_min_inliers: int = 50  # COLMAP's 100 rejects the short, narrow-baseline starts of hand-held clips
    quadratic_overlap: bool = False  # sequential: also pair i with i+2, i+4, i+8...
    threads: int = -1  # -1 = all cores
    seed: int = 0  # COLMAP's RANSAC / initial-pair choices; fixed so a run repeats
    # Incremental mapping is retried with seeds seed, seed + 1, ... until a model registers every frame:
    # one thread repeats a run exactly, but a seed can start from a bad pair and split the clip (the
    # README's real clip: seed 0 registers 19 of 52 frames at f = 1238 px, seeds 1-3 all 52 at 442-467 px)
    attempts: int = 4
    verbose: bool = False  # COLMAP's own log on stderr

    def __post_init__(self) -> None:
        if self.matching not in ("auto", "sequential", "exhaustive"):
            raise PoseOptionError(f"matching must be auto, sequential or exhaustive, got {self.matching!r}")
        if self.max_features < 64 or self.overlap < 1 or self.init_min_inliers < 8 or self.attempts < 1:
            raise PoseOptionError(f"max_features >= 64, overlap >= 1, init_min_inliers >= 8, attempts >= 1 expected, "
                                  f"got {self.max_features}, {self.overlap}, {self.init_min_inliers}, {self.attempts}")

    def matching_for(self, num_frames: int) -> str:
        if self.matching != "auto":
            return self.matching
        return "exhaustive" if num_frames < self.exhaustive_below else "sequential"


@dataclass
class SparseModel:
    """The largest reconstruction, indexed by frame number (0..T-1 of the frames given)."""

    camera_model: str
    camera_params: np.ndarray  # [P] float64, COLMAP's parameter order for camera_model
    width: int
    height: int
    cam_from_world: dict[int, np.ndarray]  # frame -> [4, 4] float64, COLMAP world units
    points: np.ndarray  # [N, 3] float64, COLMAP world units
    colors: np.ndarray  # [N, 3] uint8
    observed: dict[int, np.ndarray]  # frame -> [n] int64 rows of `points` seen in that frame
    mean_reprojection_error: float  # px
    matching: str
    model_sizes: list[int]  # registered frames of every model COLMAP made, largest first
    attempts: list[dict[str, Any]] = field(default_factory=list)  # per mapping seed tried: seed, model_sizes
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    @property
    def registered(self) -> list[int]:
        return sorted(self.cam_from_world)


def _frame_name(index: int) -> str:
    return f"{index:06d}.png"


def _quiet(pycolmap: Any, verbose: bool) -> None:
    # glog prints every stage at INFO; keep warnings and errors unless asked
    pycolmap.logging.minloglevel = 0 if verbose else 2


def _rigid_matrix(rigid: Any) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3] = np.asarray(rigid.matrix(), dtype=np.float64)
    return matrix


def run_colmap(rgb: list[np.ndarray], workdir: str | Path, options: ColmapOptions = ColmapOptions(),
               progress: bool = True) -> SparseModel:
    """Pose T frames (each [H, W, 3] uint8, same size). `workdir` holds the images, database and models;
    the caller removes it. Raises RegistrationError when COLMAP builds no model at all."""
    from tqdm import tqdm

    pycolmap = require_pycolmap()
    cv2 = require_cv2()
    _quiet(pycolmap, options.verbose)
    pycolmap.set_random_seed(options.seed)  # extraction and matching; each mapping attempt sets its own
    workdir = Path(workdir)
    images, database, sparse = workdir / "images", workdir / "database.db", workdir / "sparse"
    images.mkdir(parents=True, exist_ok=True)
    sparse.mkdir(exist_ok=True)
    for index, frame in enumerate(rgb):
        cv2.imwrite(str(images / _frame_name(index)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    names = [_frame_name(i) for i in range(len(rgb))]
    seconds: dict[str, float] = {}
    device = pycolmap.Device.cpu

    # Features in chunks so the bar moves; every chunk after the first reuses the first's camera,
    # which keeps one camera shared by all frames.
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.sift.max_num_features = options.max_features
    extraction.num_threads = options.threads
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = options.camera_model
    start = time.perf_counter()
    chunk = 8
    with tqdm(total=len(names), desc="colmap features", unit="frame", disable=not progress) as bar:
        for first in range(0, len(names), chunk):
            pycolmap.extract_features(database, images, image_names=names[first:first + chunk],
                                      camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                      extraction_options=extraction, device=device)
            reader.existing_camera_id = 1
            bar.update(len(names[first:first + chunk]))
    seconds["features"] = time.perf_counter() - start

    matching = options.matching_for(len(names))
    match_options = pycolmap.FeatureMatchingOptions()
    match_options.num_threads = options.threads
    start = time.perf_counter()
    with tqdm(total=1, desc=f"colmap {matching} matching", unit="stage", disable=not progress) as bar:
        if matching == "exhaustive":
            pycolmap.match_exhaustive(database, matching_options=match_options, device=device)
        else:
            pairing = pycolmap.SequentialPairingOptions()
            pairing.overlap = options.overlap
            pairing.quadratic_overlap = options.quadratic_overlap
            pycolmap.match_sequential(database, matching_options=match_options, pairing_options=pairing, device=device)
        bar.update(1)
    seconds["matching"] = time.perf_counter() - start

    def map_once(seed: int) -> list[Any]:
        pycolmap.set_random_seed(seed)
        mapper = pycolmap.IncrementalPipelineOptions()
        mapper.num_threads = options.threads
        mapper.mapper.init_min_num_inliers = options.init_min_inliers
        mapper.min_model_size = 3
        mapper.random_seed = seed
        attempt_dir = sparse / f"seed_{seed}"
        attempt_dir.mkdir(exist_ok=True)
        with tqdm(total=len(names), desc=f"colmap mapping (seed {seed})", unit="frame", disable=not progress) as bar:
            models = pycolmap.incremental_mapping(database, images, attempt_dir, options=mapper,
                                                  initial_image_pair_callback=lambda: bar.update(2),
                                                  next_image_callback=lambda: bar.update(1))
        return sorted(models.values(), key=lambda model: model.num_reg_images(), reverse=True)

    start = time.perf_counter()
    ordered, attempts = best_mapping(map_once, range(options.seed, options.seed + options.attempts), len(names))
    seconds["mapping"] = time.perf_counter() - start
    if not ordered:
        raise RegistrationError(
            f"COLMAP built no model from the {len(names)} frames in {options.attempts} mapping attempt(s) (no pair "
            "of frames had enough matches with a wide enough baseline): the camera must move sideways, not only "
            "turn, over a textured, mostly static scene; try a longer stretch, a lower --fps (wider baselines) or "
            "more --max-features")
    return _to_sparse(ordered[0], names, matching, [m.num_reg_images() for m in ordered], attempts, seconds)


def best_mapping(map_once: Callable[[int], list[Any]], seeds: Iterable[int],
                 num_frames: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """Run `map_once(seed)` (models largest first) for each seed until one model registers all `num_frames`.

    Returns the models of the attempt whose largest model registered the most frames (the earliest
    such attempt on a tie) and, per attempt made, its seed and model sizes for the report."""
    best: list[Any] = []
    attempts: list[dict[str, Any]] = []
    for seed in seeds:
        models = map_once(seed)
        attempts.append({"seed": int(seed), "model_sizes": [int(m.num_reg_images()) for m in models]})
        if models and (not best or models[0].num_reg_images() > best[0].num_reg_images()):
            best = models
        if best and best[0].num_reg_images() >= num_frames:
            break
    return best, attempts


def _to_sparse(model: Any, names: list[str], matching: str, sizes: list[int], attempts: list[dict[str, Any]],
               seconds: dict[str, float]) -> SparseModel:
    if model.num_cameras() != 1:
        raise PoseError(f"COLMAP made {model.num_cameras()} cameras; expected one shared camera")
    camera = next(iter(model.cameras.values()))
    frame_of = {name: i for i, name in enumerate(names)}
    image_frame = {image_id: frame_of[image.name] for image_id, image in model.images.items() if image.has_pose}
    cam_from_world = {image_frame[image_id]: _rigid_matrix(model.images[image_id].cam_from_world())
                      for image_id in image_frame}
    point_ids = sorted(model.points3D)
    row_of = {pid: row for row, pid in enumerate(point_ids)}
    points = np.array([model.points3D[pid].xyz for pid in point_ids], dtype=np.float64).reshape(-1, 3)
    colors = np.array([model.points3D[pid].color for pid in point_ids], dtype=np.uint8).reshape(-1, 3)
    observed: dict[int, list[int]] = {frame: [] for frame in cam_from_world}
    for pid in point_ids:
        for element in model.points3D[pid].track.elements:
            frame = image_frame.get(element.image_id)
            if frame is not None:
                observed[frame].append(row_of[pid])
    return SparseModel(
        camera_model=camera.model_name, camera_params=np.asarray(camera.params, dtype=np.float64),
        width=int(camera.width), height=int(camera.height), cam_from_world=cam_from_world, points=points,
        colors=colors, observed={f: np.unique(np.asarray(rows, dtype=np.int64)) for f, rows in observed.items()},
        mean_reprojection_error=float(model.compute_mean_reprojection_error()), matching=matching,
        model_sizes=sizes, attempts=attempts, seconds=seconds,
    )


@dataclass(frozen=True)
class Undistortion:
    """The pinhole camera the bag carries and the remap from the COLMAP camera's images into it."""

    K: np.ndarray  # [3, 3] float64, library convention (pixel centres at +0.5)
    width: int
    height: int
    map_x: np.ndarray  # [height, width] float32, source x per output pixel (OpenCV remap convention)
    map_y: np.ndarray  # [height, width] float32

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """[H, W, 3] uint8 from the posed camera -> [height, width, 3] uint8 pinhole image."""
        cv2 = require_cv2()
        return cv2.remap(rgb, self.map_x, self.map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def undistortion(model: SparseModel) -> Undistortion:
    """A pinhole camera of the same size, focal length and principal point, and the pixel map into it.

    COLMAP's own undistorter resizes to keep every valid pixel, which for a strongly distorted
    phone lens gave 960x284 from 480x270; keeping K (as cv2.undistort does) keeps the bag's images
    the size of the frames picked. Barrel distortion (k < 0) leaves no blank corners; the rare
    pincushion edge repeats its border pixels."""
    pycolmap = require_pycolmap()
    camera = pycolmap.Camera.create_from_model_name(1, model.camera_model, 1.0, model.width, model.height)
    camera.params = model.camera_params
    fx, fy = camera.focal_length_x, camera.focal_length_y
    cx, cy = camera.principal_point_x, camera.principal_point_y
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    width, height = model.width, model.height
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)  # pixel centres, COLMAP convention
    rays = np.stack([(xs.ravel() - cx) / fx, (ys.ravel() - cy) / fy, np.ones(xs.size)], 1)  # [m, 3]
    source = camera.img_from_cam(rays, False).reshape(height, width, 2) - 0.5  # remap: centres on integers
    return Undistortion(K=K, width=width, height=height,
                        map_x=source[..., 0].astype(np.float32), map_y=source[..., 1].astype(np.float32))
