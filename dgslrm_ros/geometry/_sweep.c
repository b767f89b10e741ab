/* The plane sweep's cost volume on a CPU in one pass: the C extension behind geometry/plane_sweep.py.
 *
 * The torch formulation (plane_sweep._aggregated_cost_torch, which CUDA and machines without a C
 * compiler run) makes about 25 passes over [D, H, W] tensors per source frame: project, divide, scale
 * to grid_sample's range, sample three channels, subtract, abs, mean, box sums, range tests, mask. On a
 * CPU that is memory traffic, not arithmetic: 60-80 ms per 64 px keyframe. Here each hypothesis plane
 * is swept once per source with everything kept in registers, the box sums run on one row buffer, and
 * the robust aggregation (mean of the `keep` lowest finite costs over the sources) is done per pixel.
 * The arithmetic follows the torch code operation by operation (torch's CPU grid_sample: unnormalise
 * (g + 1) * W / 2 - 0.5, clamp to the border, bilinear weights s*e, s*w, n*e, n*w), with floating-point
 * contraction off, so the two agree to float rounding (test/geometry/test_sweep_kernel.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>

/* x86-64: also compiled for x86-64-v3 (AVX2 + FMA, picked at load time), where fmaf is one instruction;
 * elsewhere fmaf is the C library's (exact, slower). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DG_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DG_CLONES
#endif
#define DG_INLINE static inline __attribute__((always_inline))

/* One source, one hypothesis: the SAD of every reference pixel [HW] against the source frame sampled where
 * the pixel's point at depth `dep` lands (written into `sad`, a [H + box - 1, W + box - 1] buffer whose
 * border stays zero), and whether it lands on the source image in front of it. */
DG_INLINE void dg_plane_sad(const float *ref, const float *src, const float *dir, const float *off, float dep,
                            int64_t height, int64_t width, int64_t r, float *sad, uint8_t *inside) {
    const int64_t hw = height * width, padded = width + 2 * r;
    const float to_gx = (float)(2.0 / (double)width), to_gy = (float)(2.0 / (double)height);
    const float half_w = (float)width / 2.0f, half_h = (float)height / 2.0f;
    const float max_x = (float)(width - 1), max_y = (float)(height - 1);
    const float fw = (float)width, fh = (float)height;
    const float *s0 = src, *s1 = src + hw, *s2 = src + 2 * hw;
    for (int64_t py = 0; py < height; ++py) {
        float *out = sad + (py + r) * padded + r;
        for (int64_t px = 0; px < width; ++px) {
            const int64_t p = py * width + px;
            const float hx = dep * dir[3 * p] + off[0];
            const float hy = dep * dir[3 * p + 1] + off[1];
            const float hz = dep * dir[3 * p + 2] + off[2];
            const float z = fabsf(hz) < 1e-9f ? 1e-9f : hz;
            const float u = hx / z, v = hy / z;
            inside[p] = (uint8_t)((hz > 1e-6f) & (u >= 0.0f) & (u <= fw) & (v >= 0.0f) & (v <= fh)); /* no branches: vectorised */
            /* grid_sample, align_corners=False, border padding: unnormalise, then clamp (NaN -> 0) */
            float x = ((u * to_gx - 1.0f) + 1.0f) * half_w - 0.5f;
            float y = ((v * to_gy - 1.0f) + 1.0f) * half_h - 0.5f;
            x = x > 0.0f ? x : 0.0f;
            y = y > 0.0f ? y : 0.0f;
            x = x < max_x ? x : max_x;
            y = y < max_y ? y : max_y;
            const int32_t ix = (int32_t)x, iy = (int32_t)y; /* x, y >= 0: truncation is floor */
            const float w = x - (float)ix, e = 1.0f - w, n = y - (float)iy, s = 1.0f - n;
            const float nw = s * e, ne = s * w, sw = n * e, se = n * w;
            /* a corner past the border has weight 0 (x is clamped to W - 1); torch reads 0 there, so do we */
            const int32_t east = ix + 1 < (int32_t)width, south = iy + 1 < (int32_t)height;
            const int32_t a = iy * (int32_t)width + ix, b = a + east, c = a + south * (int32_t)width, d = c + east;
            const float ke = (float)east, ks = (float)south, kse = ke * ks;
            /* torch's CPU kernel accumulates the corners with fused multiply-adds, in this order */
            const float v0 = fmaf(kse * s0[d], se, fmaf(ks * s0[c], sw, fmaf(ke * s0[b], ne, s0[a] * nw)));
            const float v1 = fmaf(kse * s1[d], se, fmaf(ks * s1[c], sw, fmaf(ke * s1[b], ne, s1[a] * nw)));
            const float v2 = fmaf(kse * s2[d], se, fmaf(ks * s2[c], sw, fmaf(ke * s2[b], ne, s2[a] * nw)));
            out[px] = (fabsf(v0 - ref[p]) + fabsf(v1 - ref[p + hw])) + fabsf(v2 - ref[p + 2 * hw]);
            out[px] = out[px] / 3.0f;
        }
    }
}

/* Mean over a box window of the padded SAD (plane_sweep._box_mean's order: the rows' sums first, i = 0 ..
 * box-1, then the columns'), divided by `count` [H, W]; `rows` is scratch of H * (W + box - 1) floats. */
DG_INLINE void dg_box_mean(const float *sad, int64_t height, int64_t width, int64_t box, const float *count,
                           float *rows, float *out) {
    const int64_t padded = width + box - 1;
    for (int64_t y = 0; y < height; ++y) {
        float *row = rows + y * padded;
        const float *top = sad + y * padded;
        for (int64_t x = 0; x < padded; ++x) row[x] = top[x];
        for (int64_t i = 1; i < box; ++i) {
            const float *next = top + i * padded;
            for (int64_t x = 0; x < padded; ++x) row[x] = row[x] + next[x];
        }
        float *o = out + y * width;
        const float *cnt = count + y * width;
        for (int64_t x = 0; x < width; ++x) {
            float total = row[x];
            for (int64_t j = 1; j < box; ++j) total = total + row[x + j];
            o[x] = total / cnt[x];
        }
    }
}

/* The aggregated cost [D, HW]: per plane, every source's box-averaged SAD (inf where the point leaves
 * the source), then per pixel the mean of the `keep` lowest finite ones, 1 where no source sees it. */
DG_CLONES static int dg_aggregated_cost(const float *ref, const float *sources, const float *directions,
                                        const float *offsets, const float *depths, const float *count,
                                        int64_t num_sources, int64_t first_plane, int64_t end_plane, int64_t height,
                                        int64_t width, int64_t box, int64_t keep, float *out) {
    const int64_t hw = height * width, r = box / 2;
    float *sad = calloc((size_t)((height + box - 1) * (width + box - 1)), sizeof(float));
    float *rows = malloc(sizeof(float) * height * (width + box - 1));
    float *cost = malloc(sizeof(float) * num_sources * hw);
    uint8_t *inside = malloc(hw);
    float *lowest = malloc(sizeof(float) * keep);
    if (!sad || !rows || !cost || !inside || !lowest) {
        free(sad); free(rows); free(cost); free(inside); free(lowest);
        return -1;
    }
    for (int64_t d = first_plane; d < end_plane; ++d) {
        for (int64_t j = 0; j < num_sources; ++j) {
            float *row = cost + j * hw;
            dg_plane_sad(ref, sources + j * 3 * hw, directions + j * 3 * hw, offsets + 3 * j, depths[d], height, width,
                         r, sad, inside);
            dg_box_mean(sad, height, width, box, count, rows, row);
            for (int64_t p = 0; p < hw; ++p)
                if (!inside[p]) row[p] = INFINITY;
        }
        float *agg = out + d * hw;
        for (int64_t p = 0; p < hw; ++p) {
            int64_t kept = 0; /* insertion into the ascending `lowest`, at most `keep` long */
            for (int64_t j = 0; j < num_sources; ++j) {
                const float c = cost[j * hw + p];
                if (kept == keep && !(c < lowest[keep - 1])) continue;
                int64_t i = kept < keep ? kept++ : keep - 1;
                while (i > 0 && lowest[i - 1] > c) { lowest[i] = lowest[i - 1]; --i; }
                lowest[i] = c;
            }
            float total = 0.0f;
            int64_t finite = 0;
            for (int64_t i = 0; i < kept; ++i)
                if (isfinite(lowest[i])) { total = total + lowest[i]; ++finite; }
            agg[p] = finite ? total / (float)finite : 1.0f;
        }
    }
    free(sad); free(rows); free(cost); free(inside); free(lowest);
    return 0;
}

/* The planes split over threads (the node's torch runs on all cores; one thread here would leave the
 * others idle during the sweep). */
typedef struct {
    const float *ref, *sources, *directions, *offsets, *depths, *count;
    int64_t num_sources, first_plane, end_plane, height, width, box, keep;
    float *out;
    int status;
} dg_job;

static void *dg_run(void *arg) {
    dg_job *job = arg;
    job->status = dg_aggregated_cost(job->ref, job->sources, job->directions, job->offsets, job->depths, job->count,
                                     job->num_sources, job->first_plane, job->end_plane, job->height, job->width,
                                     job->box, job->keep, job->out);
    return NULL;
}

static int dg_aggregated_cost_threads(const dg_job *whole, int64_t num_planes, int64_t threads) {
    enum { MAX_THREADS = 64 };
    dg_job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    threads = threads > num_planes ? num_planes : threads;
    for (int64_t i = 0; i < threads; ++i) {
        jobs[i] = *whole;
        jobs[i].first_plane = num_planes * i / threads;
        jobs[i].end_plane = num_planes * (i + 1) / threads;
    }
    for (int64_t i = 1; i < threads; ++i) started[i] = pthread_create(&ids[i], NULL, dg_run, &jobs[i]) == 0;
    dg_run(&jobs[0]);
    int status = jobs[0].status;
    for (int64_t i = 1; i < threads; ++i) {
        if (started[i]) {
            pthread_join(ids[i], NULL);
        } else {
            dg_run(&jobs[i]); /* no thread to be had: do its planes here */
        }
        status |= jobs[i].status;
    }
    return status;
}

/* ---- The Python module: argument checks, then the kernel with the GIL released. ---- */

static int dg_take(PyObject *obj, Py_buffer *view, Py_ssize_t floats, int writable, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->itemsize != 4 || !view->format || view->format[0] != 'f' || view->len != floats * 4) {
        PyErr_Format(PyExc_ValueError, "_sweep: %s must hold %zd float32 values, got %zd bytes of '%s'", name, floats,
                     view->len, view->format ? view->format : "?");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* aggregated_cost(ref, sources, directions, offsets, depths, count, S, D, H, W, box, keep, out, threads):
 * ref [3, H, W], sources [S, 3, H, W], directions [S, HW, 3], offsets [S, 3], depths [D], count [H, W],
 * out [D, HW], all float32 and C-contiguous (each buffer's size is checked against these shapes). */
static PyObject *py_aggregated_cost(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[7];
    long long height, width, box, keep, num_sources, num_planes, threads;
    if (!PyArg_ParseTuple(args, "OOOOOOLLLLLLOL", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &num_sources,
                          &num_planes, &height, &width, &box, &keep, &objs[6], &threads))
        return NULL;
    if (num_sources < 1 || num_planes < 1 || height < 1 || width < 1 || box < 1 || box % 2 == 0 || keep < 1 ||
        keep > num_sources || height * width > (1LL << 30)) {
        PyErr_Format(PyExc_ValueError, "_sweep.aggregated_cost: bad sizes S=%lld D=%lld H=%lld W=%lld box=%lld keep=%lld",
                     num_sources, num_planes, height, width, box, keep);
        return NULL;
    }
    const Py_ssize_t hw = (Py_ssize_t)(height * width);
    const Py_ssize_t floats[7] = {3 * hw, num_sources * 3 * hw, num_sources * hw * 3, num_sources * 3, num_planes, hw,
                                  num_planes * hw};
    const char *names[7] = {"ref", "sources", "directions", "offsets", "depths", "count", "out"};
    Py_buffer v[7];
    for (int i = 0; i < 7; ++i) {
        if (dg_take(objs[i], &v[i], floats[i], i == 6, names[i])) {
            for (int k = 0; k < i; ++k) PyBuffer_Release(&v[k]);
            return NULL;
        }
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    const dg_job whole = {v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf, num_sources, 0, num_planes,
                          height, width, box, keep, v[6].buf, 0};
    status = dg_aggregated_cost_threads(&whole, num_planes, threads);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 7; ++i) PyBuffer_Release(&v[i]);
    if (status) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef dg_methods[] = {
    {"aggregated_cost", py_aggregated_cost, METH_VARARGS,
     "aggregated_cost(ref, sources, directions, offsets, depths, count, S, D, H, W, box, keep, out, threads): the sweep's "
     "aggregated cost volume [D, HW] (geometry/plane_sweep.py)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef dg_module = {PyModuleDef_HEAD_INIT, "_sweep", "The plane sweep's cost volume on a CPU "
                                       "(geometry/plane_sweep.py)", -1, dg_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__sweep(void) { return PyModule_Create(&dg_module); }
