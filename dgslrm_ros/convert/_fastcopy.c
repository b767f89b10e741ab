/* Row interleaving for PointCloud2 packing at memory speed (loaded with ctypes by convert/fastcopy.py).
 *
 * numpy copies a 12-byte column of a 60-byte row with one indexed inner-loop call per row, which costs
 * 5-10x a memcpy of the same bytes; here each row of each column is one fixed-size memcpy the compiler
 * inlines. Plain C (no Python API): the extension only needs a C compiler at build time, and
 * convert/fastcopy.py falls back to numpy when the library is absent.
 */
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#define DG_EXPORT __declspec(dllexport)
#else
#define DG_EXPORT __attribute__((visibility("default")))
#endif
/* x86-64: also compile the byte shuffles for AVX2 and SSSE3 (picked at load time by the CPU's features);
 * baseline SSE2 has no byte shuffle, so the plain loop would stay scalar. ARM's NEON needs nothing. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DG_SHUFFLE_CLONES __attribute__((target_clones("avx2", "ssse3", "default")))
#else
#define DG_SHUFFLE_CLONES
#endif

#define DG_BLOCK 256 /* rows per pass: a block of every column stays in L1 while it is copied */

/* One column of `count` rows: `width` bytes from each source row to each destination row. The width
 * switch sits outside the row loop so every branch is a tight loop of constant-size moves. */
static void copy_column(uint8_t *dst, int64_t dst_stride, const uint8_t *src, int64_t src_stride, int64_t count,
                        int64_t width) {
#define DG_ROWS(W) for (int64_t i = 0; i < count; ++i) memcpy(dst + i * dst_stride, src + i * src_stride, W)
    switch (width) {
        case 4: DG_ROWS(4); break;
        case 8: DG_ROWS(8); break;
        case 12: DG_ROWS(12); break;
        case 16: DG_ROWS(16); break;
        default: DG_ROWS((size_t)width);
    }
#undef DG_ROWS
}

static inline uint32_t channel(float value) {
    /* round half to even, as numpy's rint: adding and removing 2^23 leaves no fraction bits, so the FPU's
     * default rounding does it (exact for |v| < 2^23; larger values are clamped below anyway) */
    float v = value * 255.0f;
    v = v > 0.0f ? v : 0.0f; /* also NaN */
    v = v < 255.0f ? v : 255.0f;
    v = (v + 8388608.0f) - 8388608.0f; /* not folded: without -ffast-math the compiler keeps IEEE rounding */
    return (uint32_t)(int32_t)v; /* a 32-bit signed conversion is one instruction everywhere */
}

static void pack_rgb_rows(const float *colors, int64_t count, uint8_t *dst, int64_t dst_stride) {
    for (int64_t i = 0; i < count; ++i) {
        const float *c = colors + 3 * i;
        uint32_t packed = (channel(c[0]) << 16) | (channel(c[1]) << 8) | channel(c[2]);
        memcpy(dst + i * dst_stride, &packed, 4);
    }
}

static void unpack_rgb_rows(const uint8_t *src, int64_t src_stride, int64_t count, float *colors) {
    for (int64_t i = 0; i < count; ++i) {
        uint32_t packed;
        memcpy(&packed, src + i * src_stride, 4);
        colors[3 * i] = (float)((packed >> 16) & 0xFFu) / 255.0f; /* divide, as numpy does */
        colors[3 * i + 1] = (float)((packed >> 8) & 0xFFu) / 255.0f;
        colors[3 * i + 2] = (float)(packed & 0xFFu) / 255.0f;
    }
}

/* dst[i * dst_stride + dst_off[c] : + width[c]] = src[c][i * src_stride[c] : + width[c]] for every row i, column c. */
DG_EXPORT DG_SHUFFLE_CLONES void dg_interleave(uint8_t *dst, int64_t dst_stride, int64_t rows, int32_t columns,
                             const uint8_t *const *src, const int64_t *src_stride, const int64_t *dst_off,
                             const int64_t *width, const float *rgb, int64_t rgb_off) {
    for (int64_t start = 0; start < rows; start += DG_BLOCK) {
        int64_t count = rows - start < DG_BLOCK ? rows - start : DG_BLOCK;
        for (int32_t c = 0; c < columns; ++c)
            copy_column(dst + start * dst_stride + dst_off[c], dst_stride, src[c] + start * src_stride[c],
                        src_stride[c], count, width[c]);
        /* the packed colour in the same pass, while the block's rows are in cache */
        if (rgb) pack_rgb_rows(rgb + 3 * start, count, dst + start * dst_stride + rgb_off, dst_stride);
    }
}

/* The inverse: dst[c][i * dst_stride[c] : + width[c]] = src[i * src_stride + src_off[c] : + width[c]]. */
DG_EXPORT DG_SHUFFLE_CLONES void dg_deinterleave(const uint8_t *src, int64_t src_stride, int64_t rows, int32_t columns,
                               uint8_t *const *dst, const int64_t *dst_stride, const int64_t *src_off,
                               const int64_t *width, float *rgb, int64_t rgb_off) {
    for (int64_t start = 0; start < rows; start += DG_BLOCK) {
        int64_t count = rows - start < DG_BLOCK ? rows - start : DG_BLOCK;
        for (int32_t c = 0; c < columns; ++c)
            copy_column(dst[c] + start * dst_stride[c], dst_stride[c], src + start * src_stride + src_off[c],
                        src_stride, count, width[c]);
        if (rgb) unpack_rgb_rows(src + start * src_stride + rgb_off, src_stride, count, rgb + 3 * start);
    }
}

/* colors float32 [rows, 3] in [0, 1] -> uint32 0x00RRGGBB at dst + i * dst_stride (RViz's packed rgb). */
DG_EXPORT void dg_pack_rgb(const float *colors, int64_t rows, uint8_t *dst, int64_t dst_stride) {
    pack_rgb_rows(colors, rows, dst, dst_stride);
}

/* The inverse: uint32 0x00RRGGBB at src + i * src_stride -> colors float32 [rows, 3] in [0, 1]. */
DG_EXPORT void dg_unpack_rgb(const uint8_t *src, int64_t src_stride, int64_t rows, float *colors) {
    unpack_rgb_rows(src, src_stride, rows, colors);
}

/* Image rows -> RGB: out[r, x, k] = src[r * step + x * channels + order[k]] for `rows` rows of `width` pixels
 * (bgr8, bgra8, rgba8 and mono8 decode; rows may be padded: `step` >= width * channels). */
DG_EXPORT DG_SHUFFLE_CLONES void dg_pixels_to_rgb(const uint8_t *src, int64_t step, int64_t rows, int64_t width, int32_t channels,
                                int32_t r, int32_t g, int32_t b, uint8_t *out) {
    for (int64_t y = 0; y < rows; ++y) {
        const uint8_t *in = src + y * step;
        uint8_t *o = out + y * width * 3;
        if (channels == 4 && r == 2 && g == 1 && b == 0) { /* bgra8: constant indices, the common case */
            for (int64_t x = 0; x < width; ++x) { o[3 * x] = in[4 * x + 2]; o[3 * x + 1] = in[4 * x + 1]; o[3 * x + 2] = in[4 * x]; }
        } else if (channels == 3 && r == 2 && g == 1 && b == 0) { /* bgr8 */
            for (int64_t x = 0; x < width; ++x) { o[3 * x] = in[3 * x + 2]; o[3 * x + 1] = in[3 * x + 1]; o[3 * x + 2] = in[3 * x]; }
        } else {
            for (int64_t x = 0; x < width; ++x) {
                const uint8_t *p = in + x * channels;
                o[3 * x] = p[r]; o[3 * x + 1] = p[g]; o[3 * x + 2] = p[b];
            }
        }
    }
}
