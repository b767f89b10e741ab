"""Decode a video, an image folder or a bag's image topic, and pick the frames to pose.

Frames are picked on their source times: from `start` seconds on, at most one per 1/`fps` (all when
`fps` is None), at most `frames` of them, each resized so its long side is at most `max_size`
pixels (COLMAP on a CPU slows with the pixel count; the model sees 64-256 px anyway).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from dgslrm_ros.posing.errors import PoseOptionError, SourceError, require_cv2

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FOLDER_FPS = 10.0  # stamps of an image folder when --fps is not given


@dataclass(frozen=True)
class FramePick:
    """Which frames to take from a source."""

    start: float = 0.0  # seconds from the first frame of the source
    frames: int | None = None  # at most this many (None = all)
    fps: float | None = None  # at most this many per second (None = every frame); an image folder's rate
    max_size: int = 640  # long side in pixels after resizing (0 = keep)

    def __post_init__(self) -> None:
        if self.start < 0:
            raise PoseOptionError(f"start must be >= 0 s, got {self.start}")
        if self.frames is not None and self.frames < 1:
            raise PoseOptionError(f"frames must be >= 1, got {self.frames}")
        if self.fps is not None and self.fps <= 0:
            raise PoseOptionError(f"fps must be > 0, got {self.fps}")
        if self.max_size < 0:
            raise PoseOptionError(f"max_size must be >= 0 (0 keeps the size), got {self.max_size}")


@dataclass
class PickedFrames:
    """The frames to pose, in time order."""

    rgb: list[np.ndarray]  # T x [H, W, 3] uint8, all the same size
    stamps_ns: np.ndarray  # [T] int64, the stamps the posed bag will carry
    source_index: list[int]  # T: index of each frame in its source (video frame number, file rank, message rank)
    source: str  # "video" | "folder" | "bag"
    source_size: tuple[int, int]  # (width, height) before resizing

    def __len__(self) -> int:
        return len(self.rgb)


class _Picker:
    """Streaming frame choice on source times (s): start offset, rate cap, count cap."""

    def __init__(self, pick: FramePick) -> None:
        self.pick = pick
        self.first: float | None = None
        self.next_time: float | None = None
        self.taken = 0

    @property
    def full(self) -> bool:
        return self.pick.frames is not None and self.taken >= self.pick.frames

    def take(self, time_s: float) -> bool:
        if self.first is None:
            self.first = time_s
        if self.full or time_s < self.first + self.pick.start - 1e-9:
            return False
        if self.pick.fps is not None:
            # ticks every 1/fps from the first frame taken; a quarter period of slack so 30 -> 10 fps
            # takes every third frame rather than drifting
            period = 1.0 / self.pick.fps
            slack = 0.25 * period
            if self.next_time is not None and time_s < self.next_time - slack:
                return False
            self.next_time = (time_s if self.next_time is None else self.next_time) + period
            while self.next_time <= time_s - slack:  # a gap in the source: do not burst to catch up
                self.next_time += period
        self.taken += 1
        return True


def resize_long_side(rgb: np.ndarray, max_size: int) -> np.ndarray:
    """[H, W, 3] uint8 -> the same with max(H, W) <= max_size (area filter), unchanged if smaller."""
    height, width = rgb.shape[:2]
    if max_size <= 0 or max(height, width) <= max_size:
        return rgb
    cv2 = require_cv2()
    factor = max_size / max(height, width)
    size = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _collect(items: Iterable[tuple[float, int, Any]], pick: FramePick, source: str,
             stamp_base_ns: int | None, progress: bool, total: int | None) -> PickedFrames:
    """items: (time s, source index, rgb [H, W, 3] uint8, or a function decoding it only when picked)."""
    from tqdm import tqdm

    picker = _Picker(pick)
    rgb, stamps, index = [], [], []
    source_size: tuple[int, int] | None = None
    bar = tqdm(total=total if pick.frames is None else min(total or pick.frames, pick.frames),
               desc=f"read {source}", unit="frame", disable=not progress)
    for time_s, rank, image in items:
        if not picker.take(time_s):
            if picker.full:
                break
            continue
        if callable(image):
            image = image()
        if image is None:
            raise SourceError(f"frame {rank} of the {source} could not be decoded")
        if source_size is None:
            source_size = (image.shape[1], image.shape[0])
        elif (image.shape[1], image.shape[0]) != source_size:
            raise SourceError(f"frame {rank} of the {source} is {image.shape[1]}x{image.shape[0]} px, the first "
                              f"was {source_size[0]}x{source_size[1]}; one camera needs one image size")
        rgb.append(resize_long_side(image, pick.max_size))
        base = 0 if stamp_base_ns is None else stamp_base_ns
        stamps.append(base + int(round(time_s * 1e9)))
        index.append(rank)
        bar.update(1)
    bar.close()
    return PickedFrames(rgb=rgb, stamps_ns=np.asarray(stamps, dtype=np.int64), source_index=index, source=source,
                        source_size=source_size or (0, 0))


def read_video(path: str | Path, pick: FramePick, progress: bool = True) -> PickedFrames:
    """Frames of a video file (anything OpenCV's FFmpeg backend reads). Stamps: a fixed non-zero
    epoch plus the frame's time in the video (frame number / the container's frame rate)."""
    from dgslrm_ros.bags.synth import DEFAULT_START_NS

    cv2 = require_cv2()
    path = Path(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(f"cannot open video {path}: OpenCV could not read it (expected a video file such as "
                          ".mp4/.avi/.mkv; check the path, or convert it with ffmpeg)")
    rate = capture.get(cv2.CAP_PROP_FPS)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if not rate or rate <= 0 or not np.isfinite(rate):
        capture.release()
        raise SourceError(f"video {path} reports no frame rate; extract its frames to a folder and pose that with --fps")

    def decode() -> np.ndarray | None:
        ok, bgr = capture.retrieve()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    def frames() -> Iterator[tuple[float, int, Callable[[], np.ndarray | None]]]:
        rank = 0
        while True:
            if not capture.grab():  # grab without decoding: unpicked frames cost little
                return
            yield rank / rate, rank, decode
            rank += 1

    try:
        picked = _collect(frames(), pick, "video", DEFAULT_START_NS, progress, total)
    finally:
        capture.release()
    if len(picked) == 0 and pick.start == 0:
        raise SourceError(f"video {path} holds no decodable frame (OpenCV read none); is it a video file?")
    return picked


def read_folder(path: str | Path, pick: FramePick, progress: bool = True) -> PickedFrames:
    """Images of a folder in name order; stamps at --fps (default 10 per second) from a fixed epoch."""
    from dgslrm_ros.bags.synth import DEFAULT_START_NS

    cv2 = require_cv2()
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"folder {path} holds no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})")
    rate = pick.fps or FOLDER_FPS
    # the rate names the folder's timing; every image is taken (no rate cap)
    folder_pick = FramePick(start=pick.start, frames=pick.frames, fps=None, max_size=pick.max_size)

    def frames() -> Iterator[tuple[float, int, np.ndarray | None]]:
        for rank, file in enumerate(files):
            bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SourceError(f"cannot read image {file} (not an image OpenCV can decode); remove it or convert it")
            yield rank / rate, rank, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    return _collect(frames(), folder_pick, "folder", DEFAULT_START_NS, progress, len(files))


def read_bag_images(path: str | Path, pick: FramePick, image_topic: str = "image", progress: bool = True) -> PickedFrames:
    """Images of a bag's image topic (any encoding the node accepts, compressed or raw); stamps kept."""
    from dgslrm_ros.bags.reader import BagReader, BagReadError, ImageRecord

    reader = BagReader(path, image_topic=image_topic, camera_info_topic="\0none", pose_topic="\0none",
                       ground_truth=False, strict=True)
    try:
        found = reader.topics()
    except BagReadError as error:
        raise SourceError(str(error)) from error
    if image_topic.lstrip("/") not in found:
        raise SourceError(f"bag {path} has no image topic {image_topic!r}; it has {sorted(found)}; "
                          "pass the right one with --image-topic")

    def frames() -> Iterator[tuple[float, int, np.ndarray | None]]:
        rank = 0
        try:
            for record in reader:
                if isinstance(record, ImageRecord):
                    yield record.stamp_ns / 1e9, rank, record.rgb
                    rank += 1
        except BagReadError as error:
            raise SourceError(str(error)) from error

    picked = _collect(frames(), pick, "bag", None, progress, None)
    if len(picked) and not np.all(np.diff(picked.stamps_ns) > 0):
        raise SourceError(f"bag {path}: the image stamps on {image_topic!r} are not strictly increasing")
    return picked


def read_source(path: str | Path, pick: FramePick, image_topic: str = "image", progress: bool = True) -> PickedFrames:
    """A video file, an image folder, or a bag (a directory with metadata.yaml, or a .mcap/.db3 file)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path} does not exist (expected a video file, a folder of images, or a bag)")
    if path.is_dir():
        if (path / "metadata.yaml").exists() or any(path.glob("*.mcap")) or any(path.glob("*.db3")):
            return read_bag_images(path, pick, image_topic, progress)
        return read_folder(path, pick, progress)
    if path.suffix in (".mcap", ".db3"):
        return read_bag_images(path, pick, image_topic, progress)
    return read_video(path, pick, progress)
