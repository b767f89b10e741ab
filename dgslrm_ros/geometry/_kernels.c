/* The geometry layer's CPU kernels (geometry/cpu_kernels.py): the plane sweep's cost volume and its
 * curves' medians, the static fit's per-frame sums, the chained 2D tracks and their lifted displacements,
 * each in one pass.
 *
 * Both replace chains of small elementwise torch ops that are memory traffic, not arithmetic, on a CPU
 * (the sweep: about 25 passes over [D, H, W] tensors per source frame, 60-80 ms per 64 px keyframe).
 * Their torch formulations stay (plane_sweep._aggregated_cost_torch, lifting._static_fit_sums_torch):
 * CUDA and machines without a C compiler run them. The arithmetic here follows them operation by
 * operation, with floating-point contraction off except where torch's own CPU kernel fuses (grid_sample's
 * corner sum), so the two agree to float rounding and, on this x86-64 machine, to the bit
 * (test/geometry/test_cpu_kernels.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
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
            out[px] = ((fabsf(v0 - ref[p]) + fabsf(v1 - ref[p + hw])) + fabsf(v2 - ref[p + 2 * hw])) / 3.0f;
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
        float *o = out + y * width; /* the columns' sums one offset at a time: vectorises (a per-pixel loop did not) */
        const float *cnt = count + y * width;
        for (int64_t x = 0; x < width; ++x) o[x] = row[x];
        for (int64_t j = 1; j < box; ++j)
            for (int64_t x = 0; x < width; ++x) o[x] = o[x] + row[x + j];
        for (int64_t x = 0; x < width; ++x) o[x] = o[x] / cnt[x];
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
    float *cost = malloc(sizeof(float) * hw); /* one source's costs at a time */
    uint8_t *inside = malloc(hw);
    float *lowest = malloc(sizeof(float) * keep * hw); /* [keep, HW]: each pixel's lowest costs so far, ascending */
    if (!sad || !rows || !cost || !inside || !lowest) {
        free(sad); free(rows); free(cost); free(inside); free(lowest);
        return -1;
    }
    for (int64_t d = first_plane; d < end_plane; ++d) {
        for (int64_t i = 0; i < keep * hw; ++i) lowest[i] = INFINITY;
        for (int64_t j = 0; j < num_sources; ++j) {
            dg_plane_sad(ref, sources + j * 3 * hw, directions + j * 3 * hw, offsets + 3 * j, depths[d], height, width,
                         r, sad, inside);
            dg_box_mean(sad, height, width, box, count, rows, cost);
            for (int64_t p = 0; p < hw; ++p)
                if (!inside[p]) cost[p] = INFINITY;
            /* insert into the ascending lists without branches (min / max down the list), every pixel at once:
             * a per-pixel insertion sort mispredicted its way to a third of the sweep's time */
            for (int64_t i = 0; i < keep; ++i) {
                float *low = lowest + i * hw;
                for (int64_t p = 0; p < hw; ++p) {
                    const float a = low[p], c = cost[p];
                    low[p] = c < a ? c : a;
                    cost[p] = c < a ? a : c;
                }
            }
        }
        /* the mean of the finite ones, summed lowest first; 1 where no source sees the point */
        float *agg = out + d * hw;
        for (int64_t p = 0; p < hw; ++p) {
            float total = 0.0f, finite = 0.0f;
            for (int64_t i = 0; i < keep; ++i) {
                const float c = lowest[i * hw + p];
                const int seen = c < INFINITY;
                total = total + (seen ? c : 0.0f);
                finite = finite + (float)seen;
            }
            agg[p] = finite > 0.0f ? total / finite : 1.0f;
        }
    }
    free(sad); free(rows); free(cost); free(inside); free(lowest);
    return 0;
}

/* ---- Threads: each kernel splits its work into `count` jobs (count <= DG_MAX_THREADS) of `size` bytes each,
 * run(jobs[0]) here and the others on their own threads (inline where no thread can be had). ---- */
enum { DG_MAX_THREADS = 64 };

static int64_t dg_thread_count(int64_t requested, int64_t work_items) {
    int64_t n = requested < 1 ? 1 : requested > DG_MAX_THREADS ? DG_MAX_THREADS : requested;
    return n > work_items ? work_items : n;
}

static void dg_run_jobs(void *(*run)(void *), void *jobs, size_t size, int64_t count) {
    pthread_t ids[DG_MAX_THREADS];
    int started[DG_MAX_THREADS] = {0};
    char *job = jobs;
    for (int64_t i = 1; i < count; ++i) started[i] = pthread_create(&ids[i], NULL, run, job + i * size) == 0;
    run(job);
    for (int64_t i = 1; i < count; ++i) {
        if (started[i]) pthread_join(ids[i], NULL);
        else run(job + i * size);
    }
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
    dg_job jobs[DG_MAX_THREADS];
    threads = dg_thread_count(threads, num_planes);
    for (int64_t i = 0; i < threads; ++i) {
        jobs[i] = *whole;
        jobs[i].first_plane = num_planes * i / threads;
        jobs[i].end_plane = num_planes * (i + 1) / threads;
    }
    dg_run_jobs(dg_run, jobs, sizeof(dg_job), threads);
    int status = 0;
    for (int64_t i = 0; i < threads; ++i) status |= jobs[i].status;
    return status;
}

/* ---- The static fit's sums (lifting.static_fit): per keyframe pixel i and band hypothesis h, over the frames
 * n, the capped reprojection residual of its track, the frames counted, and the band ends' spread. ---- */

/* hypot as glibc computes a float one: the squares and their sum in double, one rounding at the end */
DG_INLINE float dg_hypot(float x, float y) { return (float)sqrt((double)x * (double)x + (double)y * (double)y); }

typedef struct {
    const float *hypotheses; /* [D, N] z-depths, N = Kf * HW */
    const float *a;          /* [T, 3, Kf] per frame: where the keyframe's camera centre lands (homogeneous px) */
    const float *b;          /* [T, 3, N] per frame: the pixel ray's direction there */
    const float *positions;  /* [Kf, T, HW, 2] the track (px) */
    const uint8_t *valid;    /* [Kf, T, HW] tracked */
    int64_t num_hypotheses, num_keyframes, num_frames, hw, first, end; /* pixels [first, end) of N */
    float cap;
    float *total;  /* [D, N] */
    int32_t *seen; /* [D, N] */
    float *spread; /* [N] */
} dg_fit_job;

enum { DG_MAX_HYPOTHESES = 64 };

/* The per-pixel kernels (static fit, chaining, lifting) work on chunks of up to DG_CHUNK pixels of one keyframe
 * together: the inner loops run over them. */
enum { DG_CHUNK = 256 };

/* The chunk starting at keyframe pixel i0 (of Kf * HW, a job's range ending at `end`): its length. */
DG_INLINE int64_t dg_chunk_length(int64_t i0, int64_t end, int64_t hw) {
    int64_t len = end - i0;
    len = len < DG_CHUNK ? len : DG_CHUNK;
    return len < hw - i0 % hw ? len : hw - i0 % hw; /* a chunk stays inside one keyframe */
}

DG_CLONES static void dg_static_fit_sums(const dg_fit_job *job) {
    const int64_t d_count = job->num_hypotheses, kf = job->num_keyframes, t = job->num_frames, hw = job->hw;
    const int64_t n_all = kf * hw;
    const float cap = job->cap;
    float total[DG_MAX_HYPOTHESES][DG_CHUNK], spread[DG_CHUNK], ends_u[2][DG_CHUNK], ends_v[2][DG_CHUNK];
    int32_t seen[DG_MAX_HYPOTHESES][DG_CHUNK];
    uint8_t behind[DG_CHUNK];
    float track_u[DG_CHUNK], track_v[DG_CHUNK];
    for (int64_t i0 = job->first; i0 < job->end;) {
        const int64_t k = i0 / hw, p0 = i0 % hw;
        const int64_t len = dg_chunk_length(i0, job->end, hw);
        for (int64_t h = 0; h < d_count; ++h)
            for (int64_t j = 0; j < len; ++j) { total[h][j] = 0.0f; seen[h][j] = 0; }
        for (int64_t j = 0; j < len; ++j) spread[j] = 0.0f;
        for (int64_t n = 0; n < t; ++n) {
            const float *bx = job->b + n * 3 * n_all + i0, *by = bx + n_all, *bz = by + n_all;
            const float *an = job->a + n * 3 * kf;
            const float ax = an[k], ay = an[kf + k], az = an[2 * kf + k];
            const uint8_t *tracked = job->valid + (k * t + n) * hw + p0;
            const float *pos = job->positions + ((k * t + n) * hw + p0) * 2;
            for (int64_t j = 0; j < len; ++j) { track_u[j] = pos[2 * j]; track_v[j] = pos[2 * j + 1]; }
            /* the band's ends: how far apart they land (NaN behind the camera, then 0) */
            for (int64_t j = 0; j < len; ++j) behind[j] = 0;
            for (int e = 0; e < 2; ++e) {
                const float *hyp = job->hypotheses + (e ? d_count - 1 : 0) * n_all + i0;
                for (int64_t j = 0; j < len; ++j) {
                    const float x = hyp[j] * bx[j] + ax, y = hyp[j] * by[j] + ay, z = hyp[j] * bz[j] + az;
                    const float safe = fabsf(z) < 1e-12f ? 1e-12f : z;
                    ends_u[e][j] = x / safe;
                    ends_v[e][j] = y / safe;
                    behind[j] |= (uint8_t)!(z > 1e-6f);
                }
            }
            for (int64_t j = 0; j < len; ++j) {
                float apart = dg_hypot(ends_u[0][j] - ends_u[1][j], ends_v[0][j] - ends_v[1][j]);
                apart = behind[j] ? 0.0f : apart; /* NaN -> 0 (nan_to_num) */
                apart = apart != apart ? 0.0f : (apart > FLT_MAX ? FLT_MAX : apart);
                apart = apart * (tracked[j] ? 1.0f : 0.0f);
                spread[j] = spread[j] > apart ? spread[j] : apart;
            }
            for (int64_t h = 0; h < d_count; ++h) {
                const float *hyp = job->hypotheses + h * n_all + i0;
                float *tot = total[h];
                int32_t *cnt = seen[h];
                for (int64_t j = 0; j < len; ++j) {
                    const float x = hyp[j] * bx[j] + ax, y = hyp[j] * by[j] + ay, z = hyp[j] * bz[j] + az;
                    const float u = x / z, v = y / z;
                    const int32_t counted = (z > 1e-6f) & (tracked[j] != 0) & (fabsf(u) < INFINITY);
                    float r = dg_hypot(u - track_u[j], v - track_v[j]);
                    r = (r != r) | (r > cap) ? cap : r; /* nan_to_num(cap), clamp(max=cap) */
                    tot[j] = tot[j] + r * (float)counted;
                    cnt[j] += counted;
                }
            }
        }
        for (int64_t h = 0; h < d_count; ++h) {
            for (int64_t j = 0; j < len; ++j) {
                job->total[h * n_all + i0 + j] = total[h][j];
                job->seen[h * n_all + i0 + j] = seen[h][j];
            }
        }
        for (int64_t j = 0; j < len; ++j) job->spread[i0 + j] = spread[j];
        i0 += len;
    }
}

static void *dg_fit_run(void *arg) {
    dg_static_fit_sums(arg);
    return NULL;
}

/* ---- Chained 2D tracks (flow_tracks.chain_tracks): every keyframe pixel followed frame to frame through the
 * consecutive-pair flows, towards both ends of the window, with each step's forward-backward check. ---- */

/* flow_tracks._sample of a 2-channel field [2, H, W] at `len` pixels (u, v), in two passes that each vectorise
 * (one pixel at a time the steps are a serial chain of divisions and dependent loads): where and with which
 * weights grid_sample reads (bilinear, border padding, align_corners=False, from the grid coordinate
 * u / W * 2 - 1 that _sample builds), then the reads. */
typedef struct {
    int32_t corner[4][DG_CHUNK]; /* nw, ne, sw, se: indices into a [H, W] plane */
    float weight[4][DG_CHUNK];   /* their bilinear weights */
} dg_taps;

DG_INLINE void dg_flow_taps(const float *u, const float *v, int64_t len, int64_t height, int64_t width, dg_taps *taps) {
    const float fw = (float)width, fh = (float)height, half_w = fw / 2.0f, half_h = fh / 2.0f;
    const float max_x = (float)(width - 1), max_y = (float)(height - 1);
    for (int64_t j = 0; j < len; ++j) {
        /* grid_sample's unnormalisation as torch's vectorised CPU kernel does it: one fused multiply-add */
        float x = fmaf(u[j] / fw * 2.0f - 1.0f, half_w, half_w - 0.5f);
        float y = fmaf(v[j] / fh * 2.0f - 1.0f, half_h, half_h - 0.5f);
        x = x > 0.0f ? x : 0.0f;
        y = y > 0.0f ? y : 0.0f;
        x = x < max_x ? x : max_x;
        y = y < max_y ? y : max_y;
        const int32_t ix = (int32_t)x, iy = (int32_t)y; /* x, y >= 0: truncation is floor */
        const float w = x - (float)ix, e = 1.0f - w, n = y - (float)iy, s = 1.0f - n;
        /* A corner past the border (x clamped to W - 1) has weight 0 already (w = 0): torch reads 0 there and
         * adds 0 x weight, this reads the corner in the border and adds it x 0, the same sum for finite flow. */
        const int32_t east = ix + 1 < (int32_t)width, south = (iy + 1 < (int32_t)height) * (int32_t)width;
        const int32_t a = iy * (int32_t)width + ix;
        taps->corner[0][j] = a;
        taps->corner[1][j] = a + east;
        taps->corner[2][j] = a + south;
        taps->corner[3][j] = a + south + east;
        taps->weight[0][j] = s * e;
        taps->weight[1][j] = s * w;
        taps->weight[2][j] = n * e;
        taps->weight[3][j] = n * w;
    }
}

/* The field's two channels at the taps, accumulated as torch's CPU kernel does (fused multiply-adds, nw first). */
DG_INLINE void dg_flow_read(const float *field, int64_t hw, const dg_taps *taps, int64_t len, float *fx, float *fy) {
    const float *f0 = field, *f1 = field + hw;
    for (int64_t j = 0; j < len; ++j) {
        const int32_t a = taps->corner[0][j], b = taps->corner[1][j], c = taps->corner[2][j], d = taps->corner[3][j];
        const float nw = taps->weight[0][j], ne = taps->weight[1][j], sw = taps->weight[2][j], se = taps->weight[3][j];
        fx[j] = fmaf(f0[d], se, fmaf(f0[c], sw, fmaf(f0[b], ne, f0[a] * nw)));
        fy[j] = fmaf(f1[d], se, fmaf(f1[c], sw, fmaf(f1[b], ne, f1[a] * nw)));
    }
}

typedef struct {
    const float *forward, *backward; /* [T-1, 2, H, W]: flow n -> n+1, and n+1 -> n */
    const int32_t *keyframes;        /* [Kf] */
    int64_t num_keyframes, num_frames, height, width, first, end; /* keyframe pixels [first, end) of Kf * HW */
    float tolerance, relative;
    float *positions; /* [Kf, T, HW, 2] */
    uint8_t *valid;   /* [Kf, T, HW] */
    float *error;     /* [Kf, T, HW] */
} dg_chain_job;

DG_CLONES static void dg_chain_tracks(const dg_chain_job *job) {
    const int64_t t = job->num_frames, height = job->height, width = job->width, hw = height * width;
    const float fw = (float)width, fh = (float)height;
    float u[DG_CHUNK], v[DG_CHUNK], err[DG_CHUNK];
    float mx[DG_CHUNK], my[DG_CHUNK], bx[DG_CHUNK], by[DG_CHUNK];
    uint8_t alive[DG_CHUNK];
    dg_taps taps;
    for (int64_t i0 = job->first; i0 < job->end;) {
        const int64_t k = i0 / hw, p0 = i0 % hw, own = job->keyframes[k];
        const int64_t len = dg_chunk_length(i0, job->end, hw);
        float *pos = job->positions + (k * t * hw + p0) * 2; /* frame m's entries at + m * hw * 2 */
        uint8_t *ok = job->valid + k * t * hw + p0;
        float *err_out = job->error + k * t * hw + p0;
        for (int64_t j = 0; j < len; ++j) {
            pos[own * hw * 2 + 2 * j] = (float)((p0 + j) % width) + 0.5f;
            pos[own * hw * 2 + 2 * j + 1] = (float)((p0 + j) / width) + 0.5f;
            ok[own * hw + j] = 1;
            err_out[own * hw + j] = 0.0f;
        }
        for (int direction = 1; direction >= -1; direction -= 2) {
            for (int64_t j = 0; j < len; ++j) {
                u[j] = pos[own * hw * 2 + 2 * j];
                v[j] = pos[own * hw * 2 + 2 * j + 1];
                err[j] = 0.0f;
                alive[j] = 1;
            }
            for (int64_t n = own; n + direction >= 0 && n + direction < t; n += direction) {
                /* the flow from frame n to its neighbour, and back */
                const float *there = direction > 0 ? job->forward + n * 2 * hw : job->backward + (n - 1) * 2 * hw;
                const float *back = direction > 0 ? job->backward + n * 2 * hw : job->forward + (n - 1) * 2 * hw;
                const int64_t m = n + direction;
                dg_flow_taps(u, v, len, height, width, &taps);
                dg_flow_read(there, hw, &taps, len, mx, my);
                for (int64_t j = 0; j < len; ++j) {
                    u[j] = u[j] + mx[j]; /* landed */
                    v[j] = v[j] + my[j];
                }
                dg_flow_taps(u, v, len, height, width, &taps);
                dg_flow_read(back, hw, &taps, len, bx, by);
                float *pos_m = pos + m * hw * 2, *err_m = err_out + m * hw;
                uint8_t *ok_m = ok + m * hw;
                for (int64_t j = 0; j < len; ++j) {
                    const float disagreement = dg_hypot(mx[j] + bx[j], my[j] + by[j]);
                    const int inside = (u[j] >= 0.0f) & (u[j] <= fw) & (v[j] >= 0.0f) & (v[j] <= fh);
                    const int consistent = disagreement <= job->tolerance + job->relative * dg_hypot(mx[j], my[j]);
                    alive[j] = (uint8_t)(alive[j] & inside & consistent);
                    err[j] = err[j] + disagreement;
                    pos_m[2 * j] = u[j];
                    pos_m[2 * j + 1] = v[j];
                    ok_m[j] = alive[j];
                    err_m[j] = err[j];
                }
            }
        }
        i0 += len;
    }
}

static void *dg_chain_run(void *arg) {
    dg_chain_tracks(arg);
    return NULL;
}

/* ---- The lifted displacements (lifting.lift_tracks): every keyframe pixel's point put, in each frame, on the ray
 * through its tracked pixel at the camera depth its keyframe position has; lost frames hold the nearest
 * tracked frame's displacement towards the keyframe. ---- */

typedef struct {
    const float *anchor;        /* [3, N] keyframe points, N = Kf * HW */
    const float *rotation;      /* [T, 3, 3] world_T_cam rotations */
    const float *translation;   /* [T, 3] */
    const float *k_inverse;     /* [T, 3, 3] */
    const float *positions;     /* [Kf, T, HW, 2] */
    const uint8_t *valid;       /* [Kf, T, HW] */
    const int32_t *keyframes;   /* [Kf] */
    int64_t num_keyframes, num_frames, hw, first, end; /* pixels [first, end) of N */
    float *offsets;             /* [Kf, T, 3, HW] */
} dg_lift_job;

DG_CLONES static void dg_lift_tracks(const dg_lift_job *job) {
    const int64_t t = job->num_frames, hw = job->hw, n_all = job->num_keyframes * hw;
    for (int64_t i0 = job->first; i0 < job->end;) {
        const int64_t k = i0 / hw, p0 = i0 % hw, own = job->keyframes[k];
        const int64_t len = dg_chunk_length(i0, job->end, hw);
        const float *ax = job->anchor + i0, *ay = ax + n_all, *az = ay + n_all;
        for (int64_t n = 0; n < t; ++n) {
            const float *r = job->rotation + 9 * n, *tr = job->translation + 3 * n, *q = job->k_inverse + 9 * n;
            const float *pos = job->positions + ((k * t + n) * hw + p0) * 2;
            float *ox = job->offsets + ((k * t + n) * 3) * hw + p0, *oy = ox + hw, *oz = oy + hw;
            for (int64_t j = 0; j < len; ++j) {
                /* the anchor's depth in camera n: the third row of R^T (anchor - t) */
                const float dx = ax[j] - tr[0], dy = ay[j] - tr[1], dz = az[j] - tr[2];
                const float z = r[2] * dx + r[5] * dy + r[8] * dz;
                /* the tracked pixel's ray, camera z = 1: R (K^-1 (u, v, 1)) */
                const float u = pos[2 * j], v = pos[2 * j + 1];
                const float cx = q[0] * u + q[1] * v + q[2], cy = q[3] * u + q[4] * v + q[5];
                const float cz = q[6] * u + q[7] * v + q[8];
                const float rx = r[0] * cx + r[1] * cy + r[2] * cz;
                const float ry = r[3] * cx + r[4] * cy + r[5] * cz;
                const float rz = r[6] * cx + r[7] * cy + r[8] * cz;
                const float x = (tr[0] + z * rx) - ax[j], y = (tr[1] + z * ry) - ay[j], w = (tr[2] + z * rz) - az[j];
                ox[j] = x == x ? x : 0.0f; /* nan_to_num(0) */
                oy[j] = y == y ? y : 0.0f;
                oz[j] = w == w ? w : 0.0f;
            }
        }
        /* the keyframe itself: zero; then outwards from it, a lost frame takes its neighbour towards the keyframe */
        for (int c = 0; c < 3; ++c) {
            float *o = job->offsets + ((k * t + own) * 3 + c) * hw + p0;
            for (int64_t j = 0; j < len; ++j) o[j] = 0.0f;
        }
        for (int direction = 1; direction >= -1; direction -= 2) {
            for (int64_t n = own + direction; n >= 0 && n < t; n += direction) {
                const uint8_t *tracked = job->valid + (k * t + n) * hw + p0;
                for (int c = 0; c < 3; ++c) {
                    float *o = job->offsets + ((k * t + n) * 3 + c) * hw + p0;
                    const float *prev = job->offsets + ((k * t + n - direction) * 3 + c) * hw + p0;
                    for (int64_t j = 0; j < len; ++j) o[j] = tracked[j] ? o[j] : prev[j];
                }
            }
        }
        i0 += len;
    }
}

static void *dg_lift_run(void *arg) {
    dg_lift_tracks(arg);
    return NULL;
}

/* ---- The sweep's cost-curve median (plane_sweep._pick): per pixel the lower median of its D plane costs, the
 * value torch.median gives (the k-th smallest from 0, k = (D - 1) / 2; NaN where any cost is NaN). Chosen by
 * rank: v_i is it where at most k costs lie below v_i and more than k at or below it; the counts
 * run over DG_CHUNK pixels at once without branches (a per-pixel quickselect mispredicted its way to 2.4 ms
 * at 64 px, torch's reduction over the leading dim 2.8 ms). The result is one of the inputs: exact. ---- */
typedef struct {
    const float *values; /* [D, N] */
    int64_t d, n, first, end, rank;
    float *out; /* [N] */
} dg_median_job;

DG_CLONES static void dg_median_chunk(const float *values, int64_t d, int64_t n, int64_t p0, int64_t len, int64_t rank,
                                      float *out) {
    int32_t below[DG_CHUNK], at_or_below[DG_CHUNK];
    uint8_t nan[DG_CHUNK];
    const int32_t k = (int32_t)rank; /* 0-based: (D - 1) / 2 is the lower median */
    for (int64_t q = 0; q < len; ++q) nan[q] = 0;
    for (int64_t i = 0; i < d; ++i) {
        const float *vi = values + i * n + p0;
        for (int64_t q = 0; q < len; ++q) { below[q] = 0; at_or_below[q] = 0; nan[q] |= vi[q] != vi[q]; }
        for (int64_t j = 0; j < d; ++j) {
            const float *vj = values + j * n + p0;
            for (int64_t q = 0; q < len; ++q) {
                below[q] += vj[q] < vi[q];
                at_or_below[q] += vj[q] <= vi[q];
            }
        }
        for (int64_t q = 0; q < len; ++q)
            if (below[q] <= k && k < at_or_below[q]) out[p0 + q] = vi[q];
    }
    for (int64_t q = 0; q < len; ++q)
        if (nan[q]) out[p0 + q] = NAN;
}

static void *dg_median_run(void *arg) {
    const dg_median_job *job = arg;
    for (int64_t p0 = job->first; p0 < job->end; p0 += DG_CHUNK) {
        const int64_t len = job->end - p0 < DG_CHUNK ? job->end - p0 : DG_CHUNK;
        dg_median_chunk(job->values, job->d, job->n, p0, len, job->rank, job->out);
    }
    return NULL;
}

/* ---- The Python module: argument checks, then the kernel with the GIL released. ---- */

/* Take a C-contiguous buffer of `count` items of struct format `format` (f: float32, i: int32, B: one-byte
 * bool); writable where asked. On failure the Python error is set and -1 returned. */
static int dg_take_typed(PyObject *obj, Py_buffer *view, Py_ssize_t count, char format, int writable, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    const char got = f[0] == '<' || f[0] == '=' || f[0] == '@' ? f[1] : f[0];
    const int same = format == 'B' ? (got == '?' || got == 'B' || got == 'b') && view->itemsize == 1
                                   : got == format && view->itemsize == 4;
    if (!same || view->len != count * view->itemsize) {
        PyErr_Format(PyExc_ValueError, "_kernels: %s must hold %zd %s values, got %zd bytes of '%s'", name, count,
                     format == 'f' ? "float32" : format == 'i' ? "int32" : "bool", view->len, f);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int dg_take(PyObject *obj, Py_buffer *view, Py_ssize_t floats, int writable, const char *name) {
    return dg_take_typed(obj, view, floats, 'f', writable, name);
}

static void dg_release(Py_buffer *views, int count) {
    for (int i = 0; i < count; ++i) PyBuffer_Release(&views[i]);
}

/* dg_take_typed for `count` buffers, those from `first_out` on writable; on failure none is held. */
static int dg_take_all(PyObject **objs, Py_buffer *views, int count, const Py_ssize_t *counts, const char *formats,
                       int first_out, const char **names) {
    for (int i = 0; i < count; ++i) {
        if (dg_take_typed(objs[i], &views[i], counts[i], formats[i], i >= first_out, names[i])) {
            dg_release(views, i);
            return -1;
        }
    }
    return 0;
}

/* Every keyframe index inside the T frames; otherwise a ValueError naming the kernel. */
static int dg_check_keyframes(const int32_t *keyframes, long long kf, long long t, const char *kernel) {
    for (long long k = 0; k < kf; ++k) {
        if (keyframes[k] < 0 || keyframes[k] >= t) {
            PyErr_Format(PyExc_ValueError, "_kernels.%s: keyframe %d outside the %lld frames", kernel, keyframes[k], t);
            return -1;
        }
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
        PyErr_Format(PyExc_ValueError, "_kernels.aggregated_cost: bad sizes S=%lld D=%lld H=%lld W=%lld box=%lld keep=%lld",
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

/* static_fit_sums(hypotheses, a, b, positions, valid, D, Kf, T, HW, cap, total, seen, spread, threads):
 * hypotheses [D, N], a [T, 3, Kf], b [T, 3, N], positions [Kf, T, HW, 2] float32, valid [Kf, T, HW] bool
 * (one byte each); out total [D, N] float32, seen [D, N] int32, spread [N] float32; N = Kf * HW. */
static PyObject *py_static_fit_sums(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[8];
    long long d_count, kf, t, hw, threads;
    float cap;
    if (!PyArg_ParseTuple(args, "OOOOOLLLLfOOOL", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &d_count, &kf, &t,
                          &hw, &cap, &objs[5], &objs[6], &objs[7], &threads))
        return NULL;
    if (d_count < 2 || d_count > DG_MAX_HYPOTHESES || kf < 1 || t < 1 || hw < 1 || kf * hw > (1LL << 30) ||
        kf * t * hw > (1LL << 34)) {
        PyErr_Format(PyExc_ValueError, "_kernels.static_fit_sums: bad sizes D=%lld Kf=%lld T=%lld HW=%lld", d_count, kf,
                     t, hw);
        return NULL;
    }
    const Py_ssize_t n_all = (Py_ssize_t)(kf * hw);
    const Py_ssize_t counts[8] = {d_count * n_all, t * 3 * kf, t * 3 * n_all, kf * t * hw * 2, kf * t * hw,
                                  d_count * n_all, d_count * n_all, n_all};
    const char *formats = "ffffBfif"; /* B: bool bytes (numpy's '?') */
    const char *names[8] = {"hypotheses", "a", "b", "positions", "valid", "total", "seen", "spread"};
    Py_buffer v[8];
    if (dg_take_all(objs, v, 8, counts, formats, 5, names)) return NULL;
    dg_fit_job jobs[DG_MAX_THREADS];
    threads = dg_thread_count(threads, n_all);
    Py_BEGIN_ALLOW_THREADS
    for (long long i = 0; i < threads; ++i) {
        jobs[i] = (dg_fit_job){v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, d_count, kf, t, hw,
                               n_all * i / threads, n_all * (i + 1) / threads, cap, v[5].buf, v[6].buf, v[7].buf};
    }
    dg_run_jobs(dg_fit_run, jobs, sizeof(dg_fit_job), threads);
    Py_END_ALLOW_THREADS
    dg_release(v, 8);
    Py_RETURN_NONE;
}

/* chain_tracks(forward, backward, keyframes, Kf, T, H, W, tolerance, relative, positions, valid, error, threads):
 * forward / backward [T-1, 2, H, W] float32, keyframes [Kf] int32 (each in [0, T)); out positions [Kf, T, HW, 2]
 * float32, valid [Kf, T, HW] bool (one byte each), error [Kf, T, HW] float32, every entry written. */
static PyObject *py_chain_tracks(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[6];
    long long kf, t, height, width, threads;
    float tolerance, relative;
    if (!PyArg_ParseTuple(args, "OOOLLLLffOOOL", &objs[0], &objs[1], &objs[2], &kf, &t, &height, &width, &tolerance,
                          &relative, &objs[3], &objs[4], &objs[5], &threads))
        return NULL;
    if (kf < 1 || t < 2 || height < 1 || width < 1 || height * width > (1LL << 30) ||
        kf * t * height * width > (1LL << 34)) {
        PyErr_Format(PyExc_ValueError, "_kernels.chain_tracks: bad sizes Kf=%lld T=%lld H=%lld W=%lld", kf, t, height,
                     width);
        return NULL;
    }
    const Py_ssize_t hw = (Py_ssize_t)(height * width);
    const Py_ssize_t counts[6] = {(t - 1) * 2 * hw, (t - 1) * 2 * hw, kf, kf * t * hw * 2, kf * t * hw, kf * t * hw};
    const char *formats = "ffifBf";
    const char *names[6] = {"forward", "backward", "keyframes", "positions", "valid", "error"};
    Py_buffer v[6];
    if (dg_take_all(objs, v, 6, counts, formats, 3, names)) return NULL;
    const int32_t *keyframes = v[2].buf;
    if (dg_check_keyframes(keyframes, kf, t, "chain_tracks")) {
        dg_release(v, 6);
        return NULL;
    }
    dg_chain_job jobs[DG_MAX_THREADS];
    const long long items = kf * hw;
    threads = dg_thread_count(threads, items);
    Py_BEGIN_ALLOW_THREADS
    for (long long i = 0; i < threads; ++i) {
        jobs[i] = (dg_chain_job){v[0].buf, v[1].buf, keyframes, kf, t, height, width, items * i / threads,
                                 items * (i + 1) / threads, tolerance, relative, v[3].buf, v[4].buf, v[5].buf};
    }
    dg_run_jobs(dg_chain_run, jobs, sizeof(dg_chain_job), threads);
    Py_END_ALLOW_THREADS
    dg_release(v, 6);
    Py_RETURN_NONE;
}

/* lift_tracks(anchor, rotation, translation, k_inverse, positions, valid, keyframes, Kf, T, HW, offsets, threads):
 * anchor [3, Kf * HW], rotation [T, 3, 3], translation [T, 3], k_inverse [T, 3, 3], positions [Kf, T, HW, 2]
 * float32, valid [Kf, T, HW] bool, keyframes [Kf] int32 (each in [0, T)); out offsets [Kf, T, 3, HW] float32. */
static PyObject *py_lift_tracks(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[8];
    long long kf, t, hw, threads;
    if (!PyArg_ParseTuple(args, "OOOOOOOLLLOL", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &objs[6],
                          &kf, &t, &hw, &objs[7], &threads))
        return NULL;
    if (kf < 1 || t < 1 || hw < 1 || kf * hw > (1LL << 30) || kf * t * hw > (1LL << 32)) {
        PyErr_Format(PyExc_ValueError, "_kernels.lift_tracks: bad sizes Kf=%lld T=%lld HW=%lld", kf, t, hw);
        return NULL;
    }
    const Py_ssize_t counts[8] = {3 * kf * hw, t * 9, t * 3, t * 9, kf * t * hw * 2, kf * t * hw, kf, kf * t * 3 * hw};
    const char *formats = "fffffBif";
    const char *names[8] = {"anchor", "rotation", "translation", "k_inverse", "positions", "valid", "keyframes",
                            "offsets"};
    Py_buffer v[8];
    if (dg_take_all(objs, v, 8, counts, formats, 7, names)) return NULL;
    const int32_t *keyframes = v[6].buf;
    if (dg_check_keyframes(keyframes, kf, t, "lift_tracks")) {
        dg_release(v, 8);
        return NULL;
    }
    dg_lift_job jobs[DG_MAX_THREADS];
    const long long items = kf * hw;
    threads = dg_thread_count(threads, items);
    Py_BEGIN_ALLOW_THREADS
    for (long long i = 0; i < threads; ++i) {
        jobs[i] = (dg_lift_job){v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf, keyframes, kf, t, hw,
                                items * i / threads, items * (i + 1) / threads, v[7].buf};
    }
    dg_run_jobs(dg_lift_run, jobs, sizeof(dg_lift_job), threads);
    Py_END_ALLOW_THREADS
    dg_release(v, 8);
    Py_RETURN_NONE;
}

/* plane_median(values, D, N, out, threads[, rank]): values [D, N] float32; out [N] float32, each pixel's value of
 * 0-based rank `rank` in ascending order (default (D - 1) / 2: the lower median), torch.kthvalue's (rank + 1). */
static PyObject *py_plane_median(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[2];
    long long d, n, threads, rank = -1;
    if (!PyArg_ParseTuple(args, "OLLOL|L", &objs[0], &d, &n, &objs[1], &threads, &rank)) return NULL;
    if (rank < 0) rank = (d - 1) / 2;
    if (d < 1 || n < 1 || d * n > (1LL << 34) || rank >= d) {
        PyErr_Format(PyExc_ValueError, "_kernels.plane_median: bad sizes D=%lld N=%lld rank=%lld", d, n, rank);
        return NULL;
    }
    const Py_ssize_t counts[2] = {d * n, n};
    const char *names[2] = {"values", "out"};
    Py_buffer v[2];
    if (dg_take_all(objs, v, 2, counts, "ff", 1, names)) return NULL;
    dg_median_job jobs[DG_MAX_THREADS];
    threads = dg_thread_count(threads, n);
    Py_BEGIN_ALLOW_THREADS
    for (long long i = 0; i < threads; ++i)
        jobs[i] = (dg_median_job){v[0].buf, d, n, n * i / threads, n * (i + 1) / threads, rank, v[1].buf};
    dg_run_jobs(dg_median_run, jobs, sizeof(dg_median_job), threads);
    Py_END_ALLOW_THREADS
    dg_release(v, 2);
    Py_RETURN_NONE;
}

static PyMethodDef dg_methods[] = {
    {"aggregated_cost", py_aggregated_cost, METH_VARARGS,
     "aggregated_cost(ref, sources, directions, offsets, depths, count, S, D, H, W, box, keep, out, threads): the sweep's "
     "aggregated cost volume [D, HW] (geometry/plane_sweep.py)"},
    {"plane_median", py_plane_median, METH_VARARGS,
     "plane_median(values, D, N, out, threads[, rank]): each column's value of 0-based rank (default the lower "
     "median, torch.median's value; rank r is torch.kthvalue's r + 1) (geometry/plane_sweep.py)"},
    {"static_fit_sums", py_static_fit_sums, METH_VARARGS,
     "static_fit_sums(hypotheses, a, b, positions, valid, D, Kf, T, HW, cap, total, seen, spread, threads): the "
     "static fit's residual sums, frame counts and band spread (geometry/lifting.py)"},
    {"chain_tracks", py_chain_tracks, METH_VARARGS,
     "chain_tracks(forward, backward, keyframes, Kf, T, H, W, tolerance, relative, positions, valid, error, threads): "
     "every keyframe pixel's chained 2D track (geometry/flow_tracks.py)"},
    {"lift_tracks", py_lift_tracks, METH_VARARGS,
     "lift_tracks(anchor, rotation, translation, k_inverse, positions, valid, keyframes, Kf, T, HW, offsets, threads): "
     "every keyframe pixel's lifted displacement in each frame (geometry/lifting.py)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef dg_module = {PyModuleDef_HEAD_INIT, "_kernels", "The geometry layer's CPU kernels "
                                       "(geometry/cpu_kernels.py)", -1, dg_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&dg_module); }
