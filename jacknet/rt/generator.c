/*
 * Known test signals played from a JACK process callback, for tests, the
 * demo and the benchmarks (jacknet.testing.signals is its Python face).
 * Same rules as rt.c: no Python, no locks, no allocation on JACK's thread.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt.h"

/* ---------------------------------------------------------------- generator */

/*
 * A known, non-periodic test signal: a hash of (channel, frame time) scaled
 * to [-0.5, 0.5).  24 significant bits, so float32 carries it exactly, and a
 * receiver can check any sample without a copy of what was sent.
 */
float jn_test_sample(uint32_t ch, uint32_t t)
{
    uint32_t h = t * 0x9E3779B1u + (ch + 1) * 0x85EBCA77u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return (float)(h >> 8) * (1.0f / 16777216.0f) - 0.5f;
}

/*
 * A music-like known signal for lossy codecs: three tones with whole-sample
 * periods (so the phase is exact at any frame time) plus a little of the
 * noise above, which makes its alignment unique.  Doubles throughout, so the
 * numpy twin matches it to the last float32 bit on the same libm.
 */
float jn_music_sample(uint32_t ch, uint32_t t)
{
    static const uint32_t periods[3] = {211, 37, 13};
    static const double gains[3] = {0.3, 0.15, 0.06};
    double s = 0.05 * jn_test_sample(ch, t);
    for (int k = 0; k < 3; k++) {
        uint32_t p = periods[k] + (k == 0 ? 2 * ch : 0);
        s += gains[k] * sin(6.283185307179586 * (double)(t % p) / (double)p + ch);
    }
    return (float)s;
}



jn_generator *jn_generator_new(uint32_t nch)
{
    if (nch == 0 || nch > JN_MAX_CHANNELS)
        return NULL;
    jn_generator *g = calloc(1, sizeof *g);
    if (g)
        g->nch = nch;
    return g;
}

void jn_generator_free(jn_generator *g)
{
    free(g);
}

/*
 * The JACK transport as audio, for transport sync tests: channel 0 is the
 * transport frame of each sample over 2^24 (exact in float32 below 2^24),
 * channel 1 is 0.5 while rolling and 0 otherwise, and channel 2 is always
 * 0.75, so a sample a receiver concealed or faded is told apart.
 */
static void transport_signal(jn_generator *g, uint32_t nframes)
{
    jn_position pos;
    int32_t state = g->api.transport_query(g->client, &pos);
    for (uint32_t ch = 0; ch < g->nch; ch++) {
        float *out = g->api.port_get_buffer(g->ports[ch], nframes);
        for (uint32_t i = 0; i < nframes; i++) {
            uint32_t frame = pos.frame + (state == 1 ? i : 0);
            out[i] = ch == 0 ? (float)(frame & 0xFFFFFF) * (1.0f / 16777216.0f)
                   : ch == 1 ? (state == 1 ? 0.5f : 0.0f)
                   : 0.75f;
        }
    }
}

int jn_generator_process(uint32_t nframes, void *arg)
{
    jn_generator *g = arg;
    uint32_t t = g->api.last_frame_time(g->client);
    int mode = LOAD(&g->mode);
    if (mode == JN_GEN_TRANSPORT) {
        transport_signal(g, nframes);
        STORE(&g->cycles, g->cycles + 1);
        return 0;
    }
    for (uint32_t ch = 0; ch < g->nch; ch++) {
        float *out = g->api.port_get_buffer(g->ports[ch], nframes);
        for (uint32_t i = 0; i < nframes; i++) {
            if (mode == JN_GEN_NOISE)
                out[i] = jn_test_sample(ch, t + i);
            else if (mode == JN_GEN_MUSIC)
                out[i] = jn_music_sample(ch, t + i);
            else if (mode == JN_GEN_TONE && g->rate)  /* exact phase: (f t mod rate) / rate */
                out[i] = 0.5f * (float)sin(6.283185307179586 *
                    (double)(((uint64_t)g->tone_hz * (t + i)) % g->rate) / (double)g->rate);
            else if (mode == JN_GEN_IMPULSE && g->impulse_interval)
                out[i] = (t + i) % g->impulse_interval == 0 ? 1.0f : 0.0f;
            else
                out[i] = 0.0f;
        }
    }
    STORE(&g->cycles, g->cycles + 1);
    return 0;
}

/* ----------------------------------------------------------------- stalling */

int32_t jn_test_stall_next;

int jn_stalling_capture_process(uint32_t nframes, void *arg)
{
    if (__atomic_exchange_n(&jn_test_stall_next, 0, __ATOMIC_ACQ_REL))
        for (;;)
            pause();  /* a cancellation point: closing the client ends the thread */
    return jn_capture_process(nframes, arg);
}
