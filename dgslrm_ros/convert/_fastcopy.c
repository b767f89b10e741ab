/* PointCloud2 and Image byte shuffles near memory speed: the CPython extension behind convert/fastcopy.py.
 *
 * numpy copies a 12-byte column of a 60-byte row with one indexed inner-loop call per row, which costs
 * 10-50x a memcpy of the same bytes; here rows are written from their columns with fixed-size copies
 * the compiler inlines. The kernels are plain C; the module functions at the end take numpy arrays (any
 * C-contiguous buffer), check that each holds the bytes the kernel touches, and release the GIL while it
 * runs. A CPython extension rather than a ctypes library: ctypes spent ~2 us per pointer argument on this
 * machine, which at the node's 1000 trajectories was as much as the copy itself. Without a C compiler the
 * package installs without it and convert/fastcopy.py uses numpy (the same bytes).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* x86-64: also compile the byte shuffles for AVX2 and SSSE3 (picked at load time by the CPU's features);
 * baseline SSE2 has no byte shuffle, so the plain loop would stay scalar. ARM's NEON needs nothing. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DG_SHUFFLE_CLONES __attribute__((target_clones("avx2", "ssse3", "default")))
#else
#define DG_SHUFFLE_CLONES
#endif

static inline uint32_t channel(float value) {
    /* round half to even, as numpy's rint: adding and removing 2^23 leaves no fraction bits, so the FPU's
     * default rounding does it (exact for |v| < 2^23; larger values are clamped below anyway) */
    float v = value * 255.0f;
    v = v > 0.0f ? v : 0.0f; /* also NaN */
    v = v < 255.0f ? v : 255.0f;
    v = (v + 8388608.0f) - 8388608.0f; /* not folded: without -ffast-math the compiler keeps IEEE rounding */
    return (uint32_t)(int32_t)v; /* a 32-bit signed conversion is one instruction everywhere */
}

#if defined(__x86_64__) && defined(__GNUC__)
/* bgr8 -> rgb, five pixels per 16-byte shuffle (SSSE3): bytes 2 1 0 5 4 3 ... of each load; the 16th
 * byte written is garbage that the next step overwrites, so the loop stops 6 pixels before the row end
 * and the scalar tail finishes the row. Returns the pixels done. */
__attribute__((target("ssse3"))) static int64_t bgr_row_ssse3(const uint8_t *in, uint8_t *o, int64_t width) {
    const __m128i order = _mm_setr_epi8(2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 15);
    int64_t x = 0;
    for (; x + 6 <= width; x += 5)
        _mm_storeu_si128((__m128i *)(o + 3 * x), _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 3 * x)), order));
    return x;
}
#endif

/* Image rows -> RGB: out[r, x, k] = src[r * step + x * channels + order[k]] for `rows` rows of `width` pixels
 * (bgr8, bgra8, rgba8 and mono8 decode; rows may be padded: `step` >= width * channels). */
DG_SHUFFLE_CLONES static void dg_pixels_to_rgb(const uint8_t *src, int64_t step, int64_t rows, int64_t width, int32_t channels,
                                int32_t r, int32_t g, int32_t b, uint8_t *out) {
    for (int64_t y = 0; y < rows; ++y) {
        const uint8_t *in = src + y * step;
        uint8_t *o = out + y * width * 3;
        if (channels == 4 && r == 2 && g == 1 && b == 0) { /* bgra8: constant indices, the common case */
            for (int64_t x = 0; x < width; ++x) { o[3 * x] = in[4 * x + 2]; o[3 * x + 1] = in[4 * x + 1]; o[3 * x + 2] = in[4 * x]; }
        } else if (channels == 3 && r == 2 && g == 1 && b == 0) { /* bgr8 */
            int64_t x = 0;
#if defined(__x86_64__) && defined(__GNUC__)
            if (__builtin_cpu_supports("ssse3")) x = bgr_row_ssse3(in, o, width);
#endif
            for (; x < width; ++x) { o[3 * x] = in[3 * x + 2]; o[3 * x + 1] = in[3 * x + 1]; o[3 * x + 2] = in[3 * x]; }
        } else {
            for (int64_t x = 0; x < width; ++x) {
                const uint8_t *p = in + x * channels;
                o[3 * x] = p[r]; o[3 * x + 1] = p[g]; o[3 * x + 2] = p[b];
            }
        }
    }
}

/* The colour of one Gaussian row: float r g b in [0, 1] <-> uint32 0x00RRGGBB (the rule of numpy's
 * pack_rgb_into / unpack_rgb_from in fastcopy.py, which divide). */
static inline uint32_t packed_color3(const float *c) { return (channel(c[0]) << 16) | (channel(c[1]) << 8) | channel(c[2]); }
static float dg_byte_to_unit[256]; /* i / 255.0f, filled when the module loads: a division per channel was
                                    * a third of the unpacking (multiplying by 1/255 differs in the last bit) */
static void dg_fill_byte_to_unit(void) {
    for (int i = 0; i < 256; ++i) dg_byte_to_unit[i] = (float)i / 255.0f;
}
static inline void unpack_color3(uint32_t packed, float *c) {
    c[0] = dg_byte_to_unit[(packed >> 16) & 0xFFu];
    c[1] = dg_byte_to_unit[(packed >> 8) & 0xFFu];
    c[2] = dg_byte_to_unit[packed & 0xFFu];
}

/* The same, all three channels at once. Both read or write a fourth float past the row's three (the next
 * row's red), so callers use them for every row but the last. SSE2 (every x86-64): the packing was half
 * of the `gaussians` row's time, one channel at a time. The SSE rounding (MXCSR default, to nearest even)
 * and maxps's NaN rule (max(NaN, 0) = 0) give exactly packed_color3's bytes. */
#if defined(__SSE2__)
#include <emmintrin.h>
static inline uint32_t packed_color4(const float *c) {
    __m128 v = _mm_mul_ps(_mm_loadu_ps(c), _mm_set1_ps(255.0f));
    v = _mm_min_ps(_mm_max_ps(v, _mm_setzero_ps()), _mm_set1_ps(255.0f));
    __m128i i = _mm_cvtps_epi32(v);
    i = _mm_packus_epi16(_mm_packs_epi32(i, i), i); /* bytes r g b x */
    uint32_t rgbx = (uint32_t)_mm_cvtsi128_si32(i);
    return __builtin_bswap32(rgbx << 8); /* 0x00RRGGBB */
}
static inline void unpack_color4(uint32_t packed, float *c) {
    _mm_storeu_ps(c, _mm_setr_ps(dg_byte_to_unit[(packed >> 16) & 0xFFu], dg_byte_to_unit[(packed >> 8) & 0xFFu],
                                 dg_byte_to_unit[packed & 0xFFu], 0.0f)); /* built in registers, stored whole */
}
#else
static inline uint32_t packed_color4(const float *c) { return packed_color3(c); }
static inline void unpack_color4(uint32_t packed, float *c) { unpack_color3(packed, c); }
#endif

/* The two clouds of the contract, one row at a time: each output row is written front to back straight
 * from its columns, which runs at 1-2x a memcpy. (Assembling the row in a local buffer and storing it
 * whole is 5x slower: the wide load of the buffer waits for the narrow stores into it to retire.)
 * The `gaussians` packing moves the 12-byte columns of every row but the last as 16 bytes: the extra 4
 * land where the next store (of this row, or of the next row) writes anyway, so a row takes 6 stores
 * instead of 9 (the same on unpacking measured slower).
 * Layouts: convert/pointcloud.py GAUSSIAN_DTYPE (60-byte rows) and TRAJECTORY_DTYPE (24-byte rows). */
static inline void move16(void *dst, const void *src) { memcpy(dst, src, 16); }

static void dg_pack_gaussians(const float *means, const float *colors, const float *opacities,
                              const float *scales, const float *quats, const float *velocities, int64_t n,
                              uint8_t *dst) {
    for (int64_t i = 0; i + 1 < n; ++i) { /* in this order: each wide store's spill is overwritten after it */
        uint8_t *o = dst + 60 * i;
        uint32_t packed = packed_color4(colors + 3 * i);
        move16(o, means + 3 * i);
        memcpy(o + 12, &packed, 4);
        memcpy(o + 16, opacities + i, 4);
        move16(o + 20, scales + 3 * i);
        move16(o + 32, quats + 4 * i);
        move16(o + 48, velocities + 3 * i); /* spills into the next row's x, written next */
    }
    if (n > 0) { /* the last row: exact widths, nothing read or written past the arrays */
        const int64_t i = n - 1;
        uint8_t *o = dst + 60 * i;
        uint32_t packed = packed_color3(colors + 3 * i);
        memcpy(o, means + 3 * i, 12);
        memcpy(o + 12, &packed, 4);
        memcpy(o + 16, opacities + i, 4);
        memcpy(o + 20, scales + 3 * i, 12);
        memcpy(o + 32, quats + 4 * i, 16);
        memcpy(o + 48, velocities + 3 * i, 12);
    }
}

static void dg_unpack_gaussians(const uint8_t *src, int64_t n, float *means, float *colors, float *opacities,
                                float *scales, float *quats, float *velocities) {
    for (int64_t i = 0; i < n; ++i) { /* exact widths: 16-byte moves that spill measured slower here */
        const uint8_t *r = src + 60 * i;
        uint32_t packed;
        memcpy(means + 3 * i, r, 12);
        memcpy(&packed, r + 12, 4);
        if (i + 1 < n)
            unpack_color4(packed, colors + 3 * i);
        else
            unpack_color3(packed, colors + 3 * i);
        memcpy(opacities + i, r + 16, 4);
        memcpy(scales + 3 * i, r + 20, 12);
        memcpy(quats + 4 * i, r + 32, 16);
        memcpy(velocities + 3 * i, r + 48, 12);
    }
}

/* 1 when a sample's x, y or z is NaN or infinite (all exponent bits set), for the cloud's is_dense. */
static inline int64_t nonfinite_xyz(const float *p) {
    uint32_t v[3];
    memcpy(v, p, 12);
    return ((v[0] & 0x7f800000u) == 0x7f800000u) | ((v[1] & 0x7f800000u) == 0x7f800000u) |
           ((v[2] & 0x7f800000u) == 0x7f800000u);
}

/* One `trajectories` row: x y z t track_id visible (24 bytes). */
static inline void pack_trajectory_row(const float *xyz, const float *time, const uint32_t *id, const float *vis,
                                       uint8_t *o) {
    memcpy(o, xyz, 12);
    memcpy(o + 12, time, 4);
    memcpy(o + 16, id, 4);
    memcpy(o + 20, vis, 4);
}

#if defined(__SSE2__)
/* SSE2: four samples of one track (96 bytes: 24 floats) per step, read as whole vectors and rearranged in
 * registers, so every output row is written with 16-byte stores instead of four narrow ones (1.5-2x
 * faster than the row loop, docs/benchmarks.md). Lanes: _MM_SHUFFLE(d, c, b, a) takes a, b from the first
 * operand and c, d from the second. */
#define DG_SHUF(lo, hi, a, b, c, d) _mm_shuffle_ps((lo), (hi), _MM_SHUFFLE(d, c, b, a))
static inline int nonfinite_mask(__m128 v) {
    const __m128i exponent = _mm_set1_epi32(0x7f800000);
    return _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(v), exponent), exponent)));
}
#define DG_TRAJECTORY_QUADS 1
#endif

/* tracks [m, t, 3], times [t] (shared by every track) or [m, t] (times_per_track), ids [m] uint32,
 * visible [m, t] -> rows x y z t track_id visible, track-major. Returns how many samples have a
 * non-finite x, y or z (0: the cloud is dense). */
static int64_t dg_pack_trajectories(const float *tracks, const float *times, int32_t times_per_track,
                                       const uint32_t *ids, const float *visible, int64_t m, int64_t t, uint8_t *dst) {
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < m; ++i) {
        const float *ti = times + (times_per_track ? i * t : 0);
        const int64_t base = i * t;
        int64_t j = 0;
#ifdef DG_TRAJECTORY_QUADS
        const __m128 id = _mm_castsi128_ps(_mm_set1_epi32((int)ids[i]));
        for (; j + 4 <= t; j += 4) {
            const int64_t k = base + j;
            const float *p = tracks + 3 * k;
            __m128 a0 = _mm_loadu_ps(p), a1 = _mm_loadu_ps(p + 4), a2 = _mm_loadu_ps(p + 8); /* x0 y0 z0 x1 | y1 z1 x2 y2 | z2 x3 y3 z3 */
            __m128 tt = _mm_loadu_ps(ti + j), vv = _mm_loadu_ps(visible + k);
            __m128 iv01 = _mm_unpacklo_ps(id, vv), iv23 = _mm_unpackhi_ps(id, vv); /* id v0 id v1 | id v2 id v3 */
            float *o = (float *)(dst + 24 * k);
            _mm_storeu_ps(o, DG_SHUF(a0, DG_SHUF(a0, tt, 2, 2, 0, 0), 0, 1, 0, 2));      /* x0 y0 z0 t0 */
            _mm_storeu_ps(o + 4, DG_SHUF(iv01, DG_SHUF(a0, a1, 3, 3, 0, 0), 0, 1, 0, 2)); /* id v0 x1 y1 */
            _mm_storeu_ps(o + 8, DG_SHUF(DG_SHUF(a1, tt, 1, 1, 1, 1), iv01, 0, 2, 2, 3)); /* z1 t1 id v1 */
            _mm_storeu_ps(o + 12, DG_SHUF(a1, DG_SHUF(a2, tt, 0, 0, 2, 2), 2, 3, 0, 2));  /* x2 y2 z2 t2 */
            _mm_storeu_ps(o + 16, DG_SHUF(iv23, a2, 0, 1, 1, 2));                         /* id v2 x3 y3 */
            _mm_storeu_ps(o + 20, DG_SHUF(DG_SHUF(a2, tt, 3, 3, 3, 3), iv23, 0, 2, 2, 3)); /* z3 t3 id v3 */
            int bad = nonfinite_mask(a0) | (nonfinite_mask(a1) << 4) | (nonfinite_mask(a2) << 8); /* 3 bits a sample */
            if (bad)
                for (int s = 0; s < 4; ++s) nonfinite += ((bad >> (3 * s)) & 7) != 0;
        }
#endif
        for (; j < t; ++j) {
            const int64_t k = base + j;
            pack_trajectory_row(tracks + 3 * k, ti + j, ids + i, visible + k, dst + 24 * k);
            nonfinite += nonfinite_xyz(tracks + 3 * k);
        }
    }
    return nonfinite;
}

/* The inverse; ids [m] from each track's first sample. Returns the number of samples whose track_id
 * differs from their row's first (the layout requires 0). */
static int64_t dg_unpack_trajectories(const uint8_t *src, int64_t m, int64_t t, float *tracks, float *times,
                                         uint32_t *ids, float *visible) {
    int64_t mismatched = 0;
    for (int64_t i = 0; i < m; ++i) {
        const int64_t base = i * t;
        uint32_t first = 0;
        if (t)
            memcpy(&first, src + 24 * base + 16, 4);
        int64_t j = 0;
#ifdef DG_TRAJECTORY_QUADS
        const __m128i id = _mm_set1_epi32((int)first);
        __m128i row_bad = _mm_setzero_si128();
        for (; j + 4 <= t; j += 4) {
            const int64_t k = base + j;
            const float *r = (const float *)(src + 24 * k);
            __m128 r0 = _mm_loadu_ps(r), r1 = _mm_loadu_ps(r + 4), r2 = _mm_loadu_ps(r + 8);  /* x0 y0 z0 t0 | id v0 x1 y1 | z1 t1 id v1 */
            __m128 r3 = _mm_loadu_ps(r + 12), r4 = _mm_loadu_ps(r + 16), r5 = _mm_loadu_ps(r + 20); /* the same for samples 2, 3 */
            float *p = tracks + 3 * k;
            _mm_storeu_ps(p, DG_SHUF(r0, DG_SHUF(r0, r1, 2, 2, 2, 2), 0, 1, 0, 2));                      /* x0 y0 z0 x1 */
            _mm_storeu_ps(p + 4, DG_SHUF(DG_SHUF(r1, r2, 3, 3, 0, 0), r3, 0, 2, 0, 1));                  /* y1 z1 x2 y2 */
            _mm_storeu_ps(p + 8, DG_SHUF(DG_SHUF(r3, r4, 2, 2, 2, 2), DG_SHUF(r4, r5, 3, 3, 0, 0), 0, 2, 0, 2)); /* z2 x3 y3 z3 */
            _mm_storeu_ps(times + k, DG_SHUF(DG_SHUF(r0, r2, 3, 3, 1, 1), DG_SHUF(r3, r5, 3, 3, 1, 1), 0, 2, 0, 2));
            __m128 iv01 = DG_SHUF(r1, r2, 0, 1, 2, 3), iv23 = DG_SHUF(r4, r5, 0, 1, 2, 3);           /* id v id v */
            _mm_storeu_ps(visible + k, DG_SHUF(iv01, iv23, 1, 3, 1, 3));
            /* +1 in a lane whose id differs (cmpeq: -1 where equal), summed once per track below: a popcount
             * per step cost a third of the loop (no popcnt instruction in the x86-64 baseline) */
            row_bad = _mm_add_epi32(row_bad, _mm_add_epi32(_mm_cmpeq_epi32(_mm_castps_si128(DG_SHUF(iv01, iv23, 0, 2, 0, 2)), id),
                                                           _mm_set1_epi32(1)));
        }
        if (_mm_movemask_epi8(_mm_cmpeq_epi32(row_bad, _mm_setzero_si128())) != 0xFFFF) {
            int32_t lanes[4];
            _mm_storeu_si128((__m128i *)lanes, row_bad);
            mismatched += (int64_t)lanes[0] + lanes[1] + lanes[2] + lanes[3];
        }
#endif
        for (; j < t; ++j) {
            const int64_t k = base + j;
            const uint8_t *r = src + 24 * k;
            uint32_t id_k;
            memcpy(tracks + 3 * k, r, 12);
            memcpy(times + k, r + 12, 4);
            memcpy(&id_k, r + 16, 4);
            mismatched += id_k != first;
            memcpy(visible + k, r + 20, 4);
        }
        ids[i] = first;
    }
    return mismatched;
}

/* ---- The Python module: argument checks, then a kernel with the GIL released. ---- */

typedef struct {
    const char *name; /* for the error message */
    int writable;
    Py_ssize_t need; /* bytes the kernel touches */
} dg_arg;

/* Take the buffers of objs[0..n) (C-contiguous, writable where asked) and check their sizes; on failure
 * release the ones already taken, set the Python error and return -1. */
static int dg_acquire(PyObject *const *objs, const dg_arg *spec, int n, Py_buffer *views) {
    for (int i = 0; i < n; ++i) {
        if (PyObject_GetBuffer(objs[i], &views[i], PyBUF_C_CONTIGUOUS | (spec[i].writable ? PyBUF_WRITABLE : 0)) < 0) {
            for (int k = 0; k < i; ++k) PyBuffer_Release(&views[k]);
            return -1;
        }
        if (views[i].len < spec[i].need) {
            PyErr_Format(PyExc_ValueError, "_fastcopy: %s holds %zd bytes, the call needs %zd", spec[i].name,
                         views[i].len, spec[i].need);
            for (int k = 0; k <= i; ++k) PyBuffer_Release(&views[k]);
            return -1;
        }
    }
    return 0;
}

static void dg_release(Py_buffer *views, int n) {
    for (int i = 0; i < n; ++i) PyBuffer_Release(&views[i]);
}

/* A count argument: 0 <= value < 2^40, so every byte size below fits an int64 comfortably. */
static int dg_count(PyObject *obj, const char *name, int64_t *out) {
    long long v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v >= (1LL << 40)) {
        PyErr_Format(PyExc_ValueError, "_fastcopy: %s must be in [0, 2^40), got %lld", name, v);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int dg_nargs(Py_ssize_t nargs, Py_ssize_t expected, const char *function) {
    if (nargs == expected) return 0;
    PyErr_Format(PyExc_TypeError, "_fastcopy.%s takes %zd arguments, got %zd", function, expected, nargs);
    return -1;
}

/* pixels_to_rgb(src, step, rows, width, channels, r, g, b, out): see dg_pixels_to_rgb. */
static PyObject *py_pixels_to_rgb(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t step, rows, width, channels, order[3];
    if (dg_nargs(nargs, 9, "pixels_to_rgb") || dg_count(args[1], "step", &step) || dg_count(args[2], "rows", &rows) ||
        dg_count(args[3], "width", &width) || dg_count(args[4], "channels", &channels) ||
        dg_count(args[5], "r", &order[0]) || dg_count(args[6], "g", &order[1]) || dg_count(args[7], "b", &order[2]))
        return NULL;
    if (channels < 1 || channels > 4 || order[0] >= channels || order[1] >= channels || order[2] >= channels ||
        step < width * channels) {
        PyErr_Format(PyExc_ValueError, "_fastcopy.pixels_to_rgb: bad layout (step %lld, width %lld, channels %lld)",
                     (long long)step, (long long)width, (long long)channels);
        return NULL;
    }
    PyObject *objs[2] = {args[0], args[8]};
    const dg_arg spec[2] = {{"src", 0, rows ? (rows - 1) * step + width * channels : 0}, {"out", 1, rows * width * 3}};
    Py_buffer v[2];
    if (dg_acquire(objs, spec, 2, v)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    dg_pixels_to_rgb(v[0].buf, step, rows, width, (int32_t)channels, (int32_t)order[0], (int32_t)order[1],
                     (int32_t)order[2], v[1].buf);
    Py_END_ALLOW_THREADS
    dg_release(v, 2);
    Py_RETURN_NONE;
}

/* pack_gaussians(means, colors, opacities, scales, quats, velocities, table): n = the table's rows. */
static PyObject *py_pack_gaussians(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t n;
    if (dg_nargs(nargs, 8, "pack_gaussians") || dg_count(args[6], "n", &n)) return NULL;
    PyObject *objs[7] = {args[0], args[1], args[2], args[3], args[4], args[5], args[7]};
    const dg_arg spec[7] = {{"means", 0, 12 * n}, {"colors", 0, 12 * n}, {"opacities", 0, 4 * n}, {"scales", 0, 12 * n},
                            {"quats", 0, 16 * n}, {"velocities", 0, 12 * n}, {"table", 1, 60 * n}};
    Py_buffer v[7];
    if (dg_acquire(objs, spec, 7, v)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    dg_pack_gaussians(v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf, n, v[6].buf);
    Py_END_ALLOW_THREADS
    dg_release(v, 7);
    Py_RETURN_NONE;
}

/* unpack_gaussians(table, n, means, colors, opacities, scales, quats, velocities) */
static PyObject *py_unpack_gaussians(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t n;
    if (dg_nargs(nargs, 8, "unpack_gaussians") || dg_count(args[1], "n", &n)) return NULL;
    PyObject *objs[7] = {args[0], args[2], args[3], args[4], args[5], args[6], args[7]};
    const dg_arg spec[7] = {{"table", 0, 60 * n}, {"means", 1, 12 * n}, {"colors", 1, 12 * n}, {"opacities", 1, 4 * n},
                            {"scales", 1, 12 * n}, {"quats", 1, 16 * n}, {"velocities", 1, 12 * n}};
    Py_buffer v[7];
    if (dg_acquire(objs, spec, 7, v)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    dg_unpack_gaussians(v[0].buf, n, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf, v[6].buf);
    Py_END_ALLOW_THREADS
    dg_release(v, 7);
    Py_RETURN_NONE;
}

/* How many of n times are not finite-and-<= 0 (the layout's rule for `t`). */
static int64_t dg_bad_times(const float *times, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        memcpy(&bits, times + i, 4);
        bad += !(times[i] <= 0.0f) | ((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad;
}

/* pack_trajectories(tracks, times, times_per_track, ids, visible, m, t, table)
 *   -> (samples with a non-finite x, y or z, times that are not finite and <= 0) */
static PyObject *py_pack_trajectories(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t m, t;
    if (dg_nargs(nargs, 8, "pack_trajectories") || dg_count(args[5], "m", &m) || dg_count(args[6], "t", &t)) return NULL;
    int per_track = PyObject_IsTrue(args[2]);
    if (per_track < 0) return NULL;
    const int64_t k = m * t, nt = per_track ? k : t;
    PyObject *objs[5] = {args[0], args[1], args[3], args[4], args[7]};
    const dg_arg spec[5] = {{"tracks", 0, 12 * k}, {"times", 0, 4 * nt}, {"ids", 0, 4 * m}, {"visible", 0, 4 * k},
                            {"table", 1, 24 * k}};
    Py_buffer v[5];
    if (dg_acquire(objs, spec, 5, v)) return NULL;
    int64_t nonfinite, bad_times;
    Py_BEGIN_ALLOW_THREADS
    bad_times = dg_bad_times(v[1].buf, nt);
    nonfinite = dg_pack_trajectories(v[0].buf, v[1].buf, per_track, v[2].buf, v[3].buf, m, t, v[4].buf);
    Py_END_ALLOW_THREADS
    dg_release(v, 5);
    return Py_BuildValue("(LL)", (long long)nonfinite, (long long)bad_times);
}

/* unpack_trajectories(table, m, t, tracks, times, ids, visible) -> samples whose track_id is not their row's */
static PyObject *py_unpack_trajectories(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t m, t;
    if (dg_nargs(nargs, 7, "unpack_trajectories") || dg_count(args[1], "m", &m) || dg_count(args[2], "t", &t)) return NULL;
    const int64_t k = m * t;
    PyObject *objs[5] = {args[0], args[3], args[4], args[5], args[6]};
    const dg_arg spec[5] = {{"table", 0, 24 * k}, {"tracks", 1, 12 * k}, {"times", 1, 4 * k}, {"ids", 1, 4 * m},
                            {"visible", 1, 4 * k}};
    Py_buffer v[5];
    if (dg_acquire(objs, spec, 5, v)) return NULL;
    int64_t mismatched;
    Py_BEGIN_ALLOW_THREADS
    mismatched = dg_unpack_trajectories(v[0].buf, m, t, v[1].buf, v[2].buf, v[3].buf, v[4].buf);
    Py_END_ALLOW_THREADS
    dg_release(v, 5);
    return PyLong_FromLongLong((long long)mismatched);
}

static PyMethodDef dg_methods[] = {
    {"pixels_to_rgb", (PyCFunction)(void (*)(void))py_pixels_to_rgb, METH_FASTCALL,
     "pixels_to_rgb(src, step, rows, width, channels, r, g, b, out): image rows -> RGB uint8"},
    {"pack_gaussians", (PyCFunction)(void (*)(void))py_pack_gaussians, METH_FASTCALL,
     "pack_gaussians(means, colors, opacities, scales, quats, velocities, n, table): `gaussians` rows"},
    {"unpack_gaussians", (PyCFunction)(void (*)(void))py_unpack_gaussians, METH_FASTCALL,
     "unpack_gaussians(table, n, means, colors, opacities, scales, quats, velocities)"},
    {"pack_trajectories", (PyCFunction)(void (*)(void))py_pack_trajectories, METH_FASTCALL,
     "pack_trajectories(tracks, times, times_per_track, ids, visible, m, t, table) -> (nonfinite xyz, bad times)"},
    {"unpack_trajectories", (PyCFunction)(void (*)(void))py_unpack_trajectories, METH_FASTCALL,
     "unpack_trajectories(table, m, t, tracks, times, ids, visible) -> samples with another track_id"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef dg_module = {PyModuleDef_HEAD_INIT, "_fastcopy",
                                       "PointCloud2 / Image byte shuffles (convert/fastcopy.py)", -1, dg_methods};

PyMODINIT_FUNC PyInit__fastcopy(void) {
    dg_fill_byte_to_unit();
    return PyModule_Create(&dg_module);
}
