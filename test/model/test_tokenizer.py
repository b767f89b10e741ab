import torch

from dgslrm_ros.core.cameras import camera_rays
from dgslrm_ros.model.tokenizer import normalize_timestamps, patchify, pixel_conditioning, unpatchify


def test_patchify_groups_space_time_cubes():
    stride, patch = 2, 4
    pixels = torch.randn(2, 6, 10, 8, 12)  # B, N, C, H, W
    tokens = patchify(pixels, stride, patch)
    rows, cols = 2, 3
    assert tokens.shape == (2, 3 * rows * cols, stride * 10 * patch * patch)
    # token (group g=1, row r=1, col c=2) holds frames 2..3, rows 4..7, cols 8..11, in (l, C, s, s) order
    g, r, c = 1, 1, 2
    token = tokens[:, (g * rows + r) * cols + c]
    cube = pixels[:, g * stride:(g + 1) * stride, :, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]
    assert torch.equal(token, cube.reshape(2, -1))


def test_unpatchify_inverts_single_frame_patchify():
    pixels = torch.randn(2, 3, 5, 16, 8)
    tokens = patchify(pixels, 1, 4)  # (C, s, s) per token: the layout unpatchify reads
    assert torch.equal(unpatchify(tokens, 3, 4, 2, 4), pixels)


def test_normalize_timestamps_spans_window_and_keeps_epoch_precision():
    window = torch.tensor([[1.7e9 + 0.0, 1.7e9 + 0.1, 1.7e9 + 0.3]], dtype=torch.float64)
    out = normalize_timestamps(window, window)
    assert torch.allclose(out, torch.tensor([[-1.0, -1.0 + 2 / 3, 1.0]]), atol=1e-6)
    refs = torch.tensor([[1.7e9 - 0.3, 1.7e9 + 0.6]], dtype=torch.float64)
    assert torch.allclose(normalize_timestamps(refs, window), torch.tensor([[-3.0, 3.0]]), atol=1e-6)
    still = torch.full((1, 3), 5.0)
    assert torch.equal(normalize_timestamps(still, still), torch.zeros(1, 3))


def test_pixel_conditioning_channels():
    frames = torch.rand(1, 2, 3, 4, 6)
    K = torch.tensor([[5.0, 0, 3], [0, 5.0, 2], [0, 0, 1]]).expand(1, 2, 3, 3)
    world_T_cam = torch.eye(4).repeat(1, 2, 1, 1)
    world_T_cam[0, 1, :3, 3] = torch.tensor([1.0, 2.0, 3.0])
    times = torch.tensor([[-1.0, 1.0]])
    pixels = pixel_conditioning(frames, K, world_T_cam, times)
    assert pixels.shape == (1, 2, 10, 4, 6)
    assert torch.allclose(pixels[:, :, :3], frames * 2 - 1)
    origins, dirs = camera_rays(K, world_T_cam, 4, 6)
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    assert torch.allclose(pixels[:, :, 3:6].movedim(2, -1), unit, atol=1e-6)
    assert torch.allclose(pixels[:, :, 6:9].movedim(2, -1), torch.linalg.cross(origins, unit, dim=-1), atol=1e-6)
    assert torch.equal(pixels[0, 0, 9], torch.full((4, 6), -1.0))
    assert torch.equal(pixels[0, 1, 9], torch.full((4, 6), 1.0))
