"""A plain pre-LayerNorm transformer over all tokens of a window (bidirectional, nanoGPT-like).

Attention goes through `scaled_dot_product_attention`, so CUDA picks flash / memory-efficient kernels
(bf16 under autocast) and the CPU uses its fused kernel; nothing here is causal.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:  # [B, N, C] -> [B, N, C]
        batch, count, channels = x.shape
        qkv = self.qkv(x).reshape(batch, count, 3, self.heads, channels // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, N, C / heads]
        y = F.scaled_dot_product_attention(q, k, v)  # bidirectional: no mask
        return self.proj(y.transpose(1, 2).reshape(batch, count, channels))


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc = nn.Linear(width, hidden)
        self.proj = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = MLP(width, int(round(width * mlp_ratio)))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """`layers` blocks and a final LayerNorm; optionally recomputes each block in backward."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float, activation_checkpointing: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.activation_checkpointing = activation_checkpointing

    def forward(self, x: Tensor) -> Tensor:  # [B, N, C] -> [B, N, C]
        for block in self.blocks:
            if self.activation_checkpointing and self.training and x.requires_grad:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.ln_f(x)
