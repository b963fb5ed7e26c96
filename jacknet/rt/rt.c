/*
 * jacknet's real-time path: the only code that runs in JACK's process thread.
 *
 * Why C: a Python process callback needs the GIL, so any other Python thread
 * of the daemon (network, codec) can delay it by a whole switch interval and
 * cause an xrun.  These callbacks never touch Python: they copy between JACK
 * port buffers and preallocated rings, read the transport, bump counters and
 * post a semaphore.  No locks, no allocation, no I/O (sem_post is a futex
 * wake, which JACK's own examples use for the same purpose).
 *
 * The JACK functions are handed in as pointers taken from JACK-Client's own
 * handle on libjack, so this module needs neither JACK's headers nor a link
 * against libjack.  Threads share fields through GCC __atomic builtins.
 */
#include <math.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

#include "rt.h"

static uint64_t clock_advance(jn_clock *c, uint32_t frame_time)
{
    if (!c->started) {
        c->now = frame_time;
        c->started = 1;
    } else {
        c->now += (uint32_t)(frame_time - c->last);
    }
    c->last = frame_time;
    return c->now;
}

/* Copy n samples into / out of one channel's ring of `capacity` (a power of
 * two) starting at position idx, wrapping at the end. */
static void ring_put(float *ring, uint32_t capacity, uint64_t idx, const float *src, uint32_t n)
{
    uint32_t at = (uint32_t)(idx & (capacity - 1));
    uint32_t first = n < capacity - at ? n : capacity - at;
    memcpy(ring + at, src, first * sizeof(float));
    memcpy(ring, src + first, (n - first) * sizeof(float));
}

static void ring_zero(float *ring, uint32_t capacity, uint64_t idx, uint32_t n)
{
    uint32_t at = (uint32_t)(idx & (capacity - 1));
    uint32_t first = n < capacity - at ? n : capacity - at;
    memset(ring + at, 0, first * sizeof(float));
    memset(ring, 0, (n - first) * sizeof(float));
}

static void ring_get(const float *ring, uint32_t capacity, uint64_t idx, float *dst, uint32_t n)
{
    uint32_t at = (uint32_t)(idx & (capacity - 1));
    uint32_t first = n < capacity - at ? n : capacity - at;
    memcpy(dst, ring + at, first * sizeof(float));
    memcpy(dst + first, ring, (n - first) * sizeof(float));
}

/* -------------------------------------------------------------------- meter */

static int meter_init(jn_meter *m, uint32_t nch)
{
    m->nch = nch;
    m->slots = calloc((size_t)JN_LEVEL_SLOTS * nch, sizeof(jn_level));
    return m->slots != NULL;
}

/* One cycle of nch channels (bufs[ch] points at nframes samples). */
static void meter_block(jn_meter *m, const float *const *bufs, uint32_t nframes)
{
    uint64_t cycle = m->cycles;
    jn_level *slot = m->slots + (size_t)(cycle % JN_LEVEL_SLOTS) * m->nch;
    for (uint32_t ch = 0; ch < m->nch; ch++) {
        const float *x = bufs[ch];
        float peak = 0.0f, sumsq = 0.0f;
        uint32_t clips = 0;
        for (uint32_t i = 0; i < nframes; i++) {
            float a = fabsf(x[i]);
            peak = a > peak ? a : peak;
            sumsq += x[i] * x[i];
            clips += a >= 1.0f;
        }
        slot[ch] = (jn_level){peak, sumsq, clips, nframes};
    }
    STORE(&m->cycles, cycle + 1);
}

/*
 * Fold the cycles metered since `from` into two sums, a meter's tenth of a
 * second and the second it is part of (both, so the reader's fold costs
 * no Python); returns the cycle to read from next.  Slots the writer may
 * be overwriting while we read (the oldest few of the ring) are left out:
 * a reader that falls that far behind misses them.
 */
static void sums_add(jn_sums *s, const jn_level *slot, uint32_t nch)
{
    for (uint32_t ch = 0; ch < nch; ch++) {
        s->peak[ch] = slot[ch].peak > s->peak[ch] ? slot[ch].peak : s->peak[ch];
        s->sumsq[ch] += slot[ch].sumsq;
        s->clips[ch] += slot[ch].clips;
    }
    s->frames += slot[0].frames;
}

uint64_t jn_meter_read(jn_meter *m, uint64_t from, jn_sums *tenth, jn_sums *second)
{
    uint64_t end = LOAD(&m->cycles);
    uint64_t oldest = end > JN_LEVEL_SLOTS - 64 ? end - (JN_LEVEL_SLOTS - 64) : 0;
    if (from < oldest)
        from = oldest;
    for (uint64_t c = from; c < end; c++) {
        const jn_level *slot = m->slots + (size_t)(c % JN_LEVEL_SLOTS) * m->nch;
        sums_add(tenth, slot, m->nch);
        sums_add(second, slot, m->nch);
    }
    return end;
}

/* -------------------------------------------------------------------- watch */

int jn_watch_xrun(void *arg)
{
    jn_watch *w = arg;
    __atomic_fetch_add(&w->xruns, 1, __ATOMIC_RELAXED);
    return 0;
}

void jn_watch_shutdown(int code, const char *reason, void *arg)
{
    jn_watch *w = arg;
    (void)code;
    if (reason) {
        strncpy(w->reason, reason, sizeof w->reason - 1);
        w->reason[sizeof w->reason - 1] = 0;
    }
    STORE(&w->shutdown, 1);
}

void jn_jack_message(const char *msg)
{
    (void)msg;
}

/* ---------------------------------------------------------------- transport */

static void bbt_of(const jn_position *pos, jn_bbt *out)
{
    out->valid = (pos->valid & JN_POSITION_BBT) != 0;
    out->bar = pos->bar;
    out->beat = pos->beat;
    out->tick = pos->tick;
    out->bar_start_tick = pos->bar_start_tick;
    out->beats_per_bar = pos->beats_per_bar;
    out->beat_type = pos->beat_type;
    out->ticks_per_beat = pos->ticks_per_beat;
    out->beats_per_minute = pos->beats_per_minute;
}

/*
 * The BBT at transport `frame`, carried on from `ref` (the position at
 * `ref_frame`) at its tempo: what a timebase master writes each cycle.
 * Frames before ref_frame count back.  Bars and beats count from 1.
 */
void jn_bbt_at(const jn_bbt *ref, uint32_t ref_frame, uint32_t rate, uint32_t frame, jn_position *pos)
{
    double tpb = ref->ticks_per_beat, bpb = ref->beats_per_bar;
    if (!ref->valid || rate == 0 || tpb <= 0 || bpb < 1 || ref->beats_per_minute <= 0)
        return;
    double beat_len = 60.0 * rate / ref->beats_per_minute;       /* frames per beat */
    double ticks = ((double)ref->beat - 1 + ref->tick / tpb) * tpb
                   + (double)((int64_t)frame - (int64_t)ref_frame) / beat_len * tpb;
    double bar_ticks = bpb * tpb;
    double bars = floor(ticks / bar_ticks);                        /* whole bars from ref's bar */
    double in_bar = ticks - bars * bar_ticks;
    int32_t beat = (int32_t)floor(in_bar / tpb);
    int32_t tick = (int32_t)floor(in_bar - beat * tpb);
    if (tick >= (int32_t)tpb)
        tick = (int32_t)tpb - 1;
    pos->valid |= JN_POSITION_BBT;
    pos->bar = ref->bar + (int32_t)bars;
    pos->beat = beat + 1;
    pos->tick = tick;
    pos->bar_start_tick = ref->bar_start_tick + bars * bar_ticks;
    pos->beats_per_bar = ref->beats_per_bar;
    pos->beat_type = ref->beat_type;
    pos->ticks_per_beat = tpb;
    pos->beats_per_minute = ref->beats_per_minute;
}

/* ------------------------------------------------------------------ capture */

jn_capture *jn_capture_new(uint32_t nch, uint32_t capacity)
{
    if (nch == 0 || nch > JN_MAX_CHANNELS || capacity == 0 || (capacity & (capacity - 1)))
        return NULL;
    jn_capture *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->buf = calloc((size_t)nch * capacity, sizeof(float));
    if (!c->buf || !meter_init(&c->meter, nch)) {
        free(c->buf);
        free(c);
        return NULL;
    }
    c->nch = nch;
    c->capacity = capacity;
    sem_init(&c->wake, 0, 0);
    return c;
}

void jn_capture_free(jn_capture *c)
{
    if (!c)
        return;
    sem_destroy(&c->wake);
    free(c->meter.slots);
    free(c->buf);
    free(c);
}

/*
 * Append one cycle of audio.  ins[ch] points at nframes samples.  With
 * fill_max set, cycles JACK did not run this client in (up to fill_max
 * frames of them) are first filled with silence, so capture positions keep
 * counting JACK's frame clock: a sender that stamps packets with them never
 * shifts its stream against real time (meta.filled says where the silence is).
 */
void jn_capture_push(jn_capture *c, uint32_t frame_time, uint32_t nframes,
                     float *const *ins, const jn_position *pos, int32_t tstate)
{
    uint64_t w = c->wpos;
    uint32_t gap = 0;
    if (nframes > c->capacity)
        nframes = c->capacity;
    if (c->cycles && frame_time != c->next_frame_time) {
        c->discontinuities++;
        uint32_t missed = frame_time - c->next_frame_time;  /* mod 2^32: a step back is huge */
        if (missed <= c->fill_max && missed + nframes <= c->capacity / 2)
            gap = missed;
    }
    c->next_frame_time = frame_time + nframes;

    jn_cycle_meta *m = &c->meta[c->cycles % JN_META_SLOTS];
    m->wpos = w;
    m->frame_time = frame_time - gap;
    m->nframes = gap + nframes;
    m->filled = gap;
    m->transport_state = tstate;
    m->transport_frame = pos->frame;
    m->transport_rate = pos->frame_rate;
    bbt_of(pos, &m->bbt);

    STORE(&c->wbusy, w + gap + nframes);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (uint32_t ch = 0; ch < c->nch; ch++) {
        float *ring = c->buf + (size_t)ch * c->capacity;
        ring_zero(ring, c->capacity, w, gap);
        ring_put(ring, c->capacity, w + gap, ins[ch], nframes);
    }
    c->filled += gap;
    STORE(&c->wpos, w + gap + nframes);
    meter_block(&c->meter, (const float *const *)ins, nframes);
    STORE(&c->cycles, c->cycles + 1);
    sem_post(&c->wake);
}

int jn_capture_process(uint32_t nframes, void *arg)
{
    jn_capture *c = arg;
    float *ins[JN_MAX_CHANNELS];
    for (uint32_t ch = 0; ch < c->nch; ch++)
        ins[ch] = c->api.port_get_buffer(c->ports[ch], nframes);
    /* The cycle's own position (jack_get_current_transport_frame would add
     * the time since the cycle began). */
    jn_position pos;
    int32_t tstate = c->api.transport_query(c->client, &pos);
    jn_capture_push(c, c->api.last_frame_time(c->client), nframes, ins, &pos, tstate);
    return 0;
}

/*
 * Copy the next n frames into dst (planar, nch * n) and return the capture
 * position of the first one, or -1 if fewer than n frames are there.  When
 * the writer has lapped the reader the oldest audio is skipped and counted:
 * the writer never waits.
 */
int64_t jn_capture_read(jn_capture *c, float *dst, uint32_t n)
{
    if (n == 0 || n > c->capacity / 2)
        return -1;
    for (;;) {
        uint64_t w = LOAD(&c->wpos);
        if (w - c->rpos < n)
            return -1;
        if (w - c->rpos > c->capacity / 2) {
            uint64_t keep = c->capacity / 4 > n ? c->capacity / 4 : n;
            c->dropped += w - keep - c->rpos;
            c->rpos = w - keep;
        }
        uint64_t r = c->rpos;
        for (uint32_t ch = 0; ch < c->nch; ch++)
            ring_get(c->buf + (size_t)ch * c->capacity, c->capacity, r, dst + (size_t)ch * n, n);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (LOAD(&c->wbusy) <= r + c->capacity) {
            c->rpos = r + n;
            return (int64_t)r;
        }
        /* Overwritten while we copied: skip ahead and try again. */
        uint64_t w2 = LOAD(&c->wpos);
        c->dropped += w2 - c->capacity / 4 - r;
        c->rpos = w2 - c->capacity / 4;
    }
}

/* Transport snapshot of the cycle that captured frame pos (0 if forgotten). */
int jn_capture_meta(jn_capture *c, uint64_t pos, jn_cycle_meta *out)
{
    uint64_t cycles = LOAD(&c->cycles);
    uint64_t back = cycles < JN_META_SLOTS ? cycles : JN_META_SLOTS - 1;
    for (uint64_t k = 1; k <= back; k++) {
        jn_cycle_meta m = c->meta[(cycles - k) % JN_META_SLOTS];
        if (m.wpos <= pos && pos < m.wpos + m.nframes) {
            *out = m;
            return 1;
        }
    }
    return 0;
}

/* Whether any frame in [pos, pos + n) is silence filled in for missed cycles
 * (0 when the cycles that wrote them are forgotten). */
int jn_capture_filled_in(jn_capture *c, uint64_t pos, uint32_t n)
{
    uint64_t cycles = LOAD(&c->cycles);
    uint64_t back = cycles < JN_META_SLOTS ? cycles : JN_META_SLOTS - 1;
    for (uint64_t k = 1; k <= back; k++) {
        jn_cycle_meta m = c->meta[(cycles - k) % JN_META_SLOTS];
        if (m.wpos + m.nframes <= pos)
            break;  /* older cycles lie further back still */
        if (m.filled && m.wpos < pos + n && pos < m.wpos + m.filled)
            return 1;
    }
    return 0;
}

/* Forget what is buffered: the next read starts at the live position. */
void jn_capture_skip(jn_capture *c)
{
    c->rpos = LOAD(&c->wpos);
}

/* Wait for the next cycle; timeout in seconds.  Returns 0 when woken. */
int jn_capture_wait(jn_capture *c, double timeout)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double whole = floor(timeout);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((timeout - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(&c->wake, &ts) != 0) {
        if (errno != EINTR)
            return -1;
    }
    /* Several cycles may have posted; one wake-up serves them all. */
    while (sem_trywait(&c->wake) == 0)
        ;
    return 0;
}

/* ------------------------------------------------------------------ playout */

jn_playout *jn_playout_new(uint32_t nch, uint32_t capacity, uint32_t fade_len, float decay, float limit)
{
    if (nch == 0 || nch > JN_MAX_CHANNELS || capacity == 0 || (capacity & (capacity - 1)))
        return NULL;
    jn_playout *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->buf = calloc((size_t)nch * capacity, sizeof(float));
    p->stamp = calloc(capacity, sizeof(uint64_t));
    if (!p->buf || !p->stamp || !meter_init(&p->meter, nch)) {
        free(p->buf);
        free(p->stamp);
        free(p->meter.slots);
        free(p);
        return NULL;
    }
    p->nch = nch;
    p->capacity = capacity;
    p->fade_len = fade_len ? fade_len : 1;
    p->decay = decay;
    p->limit = limit;
    return p;
}

void jn_playout_free(jn_playout *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p->stamp);
    free(p->meter.slots);
    free(p);
}

/*
 * The last line of defence before a port: whatever a packet or a decoder
 * produced, a NaN or Inf is stored as silence and a sample beyond the limit
 * at the limit, each counted.  Done here, on the writing (network) thread,
 * so the JACK cycle never pays for it: the playout only copies, fades and
 * cross-fades stored samples, which cannot leave their range.
 */
static void put_safe(jn_playout *p, float *ring, uint64_t idx, const float *src, uint32_t n)
{
    uint32_t mask = p->capacity - 1;
    float limit = p->limit;
    for (uint32_t i = 0; i < n; i++) {
        float x = src[i];
        if (!isfinite(x)) {
            p->nonfinite_samples++;
            x = 0.0f;
        } else if (x > limit || x < -limit) {
            p->limited_samples++;
            x = x > 0 ? limit : -limit;
        }
        ring[(idx + i) & mask] = x;
    }
}

/*
 * Store n frames at ring index idx.  src is planar (src_nch * n); receiver
 * channels the source lacks get silence.  Samples are written before their
 * stamps, so the reader never sees a stamp ahead of its audio.
 */
void jn_playout_write(jn_playout *p, uint64_t idx, uint32_t n, uint32_t src_nch, const float *src)
{
    uint32_t mask = p->capacity - 1;
    for (uint32_t ch = 0; ch < p->nch; ch++) {
        float *ring = p->buf + (size_t)ch * p->capacity;
        if (ch < src_nch) {
            put_safe(p, ring, idx, src + (size_t)ch * n, n);
        } else {
            for (uint32_t i = 0; i < n; i++)
                ring[(idx + i) & mask] = 0.0f;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        STORE(&p->stamp[(idx + i) & mask], idx + i + 1);
}

int jn_playout_has(jn_playout *p, uint64_t idx)
{
    return LOAD(&p->stamp[idx & (p->capacity - 1)]) == idx + 1;
}

/*
 * One step of the concealment's decay, flushed to zero once far below
 * hearing (-400 dB): left alone it ends as the smallest denormal for as long
 * as the gap lasts, and denormals slow down every plugin downstream.
 */
static inline float decay_step(float hold, float decay)
{
    hold *= decay;
    return fabsf(hold) < 1e-20f ? 0.0f : hold;
}

/*
 * Closing: ramp the output down to silence over `len` frames and keep it
 * silent, so nothing downstream hears a cut when the ports go.
 */
static void fade_to_silence(jn_playout *p, uint32_t len, uint32_t nframes, float *const *outs)
{
    for (uint32_t i = 0; i < nframes; i++) {
        float g = p->fade_out_pos < len ? 1.0f - (float)p->fade_out_pos / (float)len : 0.0f;
        p->fade_out_pos += p->fade_out_pos < len;
        for (uint32_t ch = 0; ch < p->nch; ch++)
            outs[ch][i] *= g;
    }
}

/*
 * Play one cycle that starts at 64-bit receiver clock `now`.  Missing frames
 * are concealed without a step: the last output decays towards zero, and
 * audio that comes back is cross-faded in from that decaying value.  Once a
 * fade-in has completed, output equals the stored audio bit for bit.
 */
void jn_playout_run(jn_playout *p, uint64_t now, uint32_t nframes, float *const *outs)
{
    int locked = LOAD(&p->locked);
    int64_t offset = LOAD(&p->offset);
    uint64_t start = now - (uint64_t)offset;
    uint64_t count_from = LOAD(&p->count_from);
    uint32_t mask = p->capacity - 1;
    uint32_t missing = 0;
    if (offset != p->last_offset) {
        p->fade_pos = 0;          /* the mapping moved: never jump, fade */
        p->last_offset = offset;
    }
    /* The common case, a whole cycle present with no fade under way, is one
     * copy per channel: the frame-by-frame loop below strides across the
     * ring's channels and costs ten times more at 64 channels. */
    uint32_t present = 0;
    if (locked && p->fade_pos >= p->fade_len)
        while (present < nframes && LOAD(&p->stamp[(start + present) & mask]) == start + present + 1)
            present++;
    int whole = present == nframes;
    if (whole) {
        for (uint32_t ch = 0; ch < p->nch; ch++) {
            ring_get(p->buf + (size_t)ch * p->capacity, p->capacity, start, outs[ch], nframes);
            p->hold[ch] = outs[ch][nframes - 1];
        }
    }
    for (uint32_t i = 0; !whole && i < nframes; i++) {
        uint64_t idx = start + i;
        int valid = locked && LOAD(&p->stamp[idx & mask]) == idx + 1;
        const float *src = p->buf + (idx & mask);
        if (!valid) {
            missing += idx >= count_from;
            p->fade_pos = 0;
            for (uint32_t ch = 0; ch < p->nch; ch++) {
                p->hold[ch] = decay_step(p->hold[ch], p->decay);
                outs[ch][i] = p->hold[ch];
            }
        } else if (p->fade_pos < p->fade_len) {
            float g = (float)p->fade_pos / (float)p->fade_len;
            for (uint32_t ch = 0; ch < p->nch; ch++) {
                p->hold[ch] = decay_step(p->hold[ch], p->decay);
                float x = src[(size_t)ch * p->capacity];
                outs[ch][i] = g * x + (1.0f - g) * p->hold[ch];
            }
            p->fade_pos++;
        } else {
            for (uint32_t ch = 0; ch < p->nch; ch++) {
                float x = src[(size_t)ch * p->capacity];
                outs[ch][i] = x;
                p->hold[ch] = x;
            }
        }
    }
    if (locked) {
        p->concealed_frames += missing;
        p->underruns += missing != 0;
    }
    uint32_t fade_out = LOAD(&p->fade_out);
    if (fade_out)
        fade_to_silence(p, fade_out, nframes, outs);
    meter_block(&p->meter, (const float *const *)outs, nframes);
    STORE(&p->now, now);
    STORE(&p->read_end, start + nframes);
    STORE(&p->cycles, p->cycles + 1);
}

int jn_playout_process(uint32_t nframes, void *arg)
{
    jn_playout *p = arg;
    float *outs[JN_MAX_CHANNELS];
    for (uint32_t ch = 0; ch < p->nch; ch++)
        outs[ch] = p->api.port_get_buffer(p->ports[ch], nframes);
    uint64_t now = clock_advance(&p->clock, p->api.last_frame_time(p->client));
    jn_playout_run(p, now, nframes, outs);
    if (LOAD(&p->follow.enabled)) {
        jn_position pos;
        int32_t state = p->api.transport_query(p->client, &pos);
        jn_follow_cycle(p, now, nframes, state, pos.frame);
    }
    return 0;
}

/* ------------------------------------------------------------------- follow */

/*
 * One cycle of a following receiver, after it has played: publish what the
 * transport does in this cycle and carry out what is due.  JACK's timing
 * (jack2): a locate asked for in a cycle shows two cycles later; a start
 * makes the next cycle Starting, and the transport rolls in the cycle after
 * the one in which every slow-sync client said ready; a stop makes the next
 * cycle stopped, one period on.  So a roll at clock `at` to frame F is:
 * locate F and start now (at least three cycles before), and hold the sync
 * callback until the cycle before `at`.
 */
void jn_follow_cycle(jn_playout *p, uint64_t now, uint32_t nframes, int32_t state, uint32_t frame)
{
    jn_follow *f = &p->follow;
    f->period = nframes;
    uint32_t seq = LOAD(&f->cmd_seq);
    if (seq != f->done_seq) {
        f->done_seq = seq;
        int32_t kind = f->cmd_kind;
        f->armed = 0;
        f->stop_pending = 0;
        if (kind == JN_FOLLOW_LOCATE) {
            p->api.transport_locate(p->client, f->cmd_frame);
        } else if (kind == JN_FOLLOW_ROLL) {
            /* Come too late to roll at its cycle (JACK needs three): roll
             * as much later, at as much further on, still aligned. */
            uint64_t earliest = now + 3 * (uint64_t)nframes;
            if (f->cmd_at < earliest) {
                f->cmd_frame += (uint32_t)(earliest - f->cmd_at);
                f->cmd_at = earliest;
            }
            p->api.transport_locate(p->client, f->cmd_frame);
            if (state != 1)
                p->api.transport_start(p->client);
            f->armed_frame = f->cmd_frame;
            f->armed_at = f->cmd_at;
            STORE(&f->armed, 1);
        } else if (kind == JN_FOLLOW_STOP) {
            f->stop_at = f->cmd_at;
            f->stop_frame = f->cmd_frame;
            f->stop_pending = 1;
        }
    }
    if (f->stop_pending && now + nframes >= f->stop_at) {
        p->api.transport_stop(p->client);
        p->api.transport_locate(p->client, f->stop_frame);
        f->stop_pending = 0;
    }
    /* Rolled; or the roll cannot come (another client located meanwhile):
     * never hold the room's transport for longer than a few cycles. */
    if (LOAD(&f->armed) && ((state == 1 && now >= f->armed_at)
                            || now > f->armed_at + JN_FOLLOW_HOLD_CYCLES * (uint64_t)nframes))
        STORE(&f->armed, 0);
    STORE(&f->snap_seq, f->snap_seq + 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    f->snap_now = now;
    f->snap_read = now - (uint64_t)LOAD(&p->offset);
    f->snap_state = state;
    f->snap_frame = frame;
    f->snap_done = seq;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    STORE(&f->snap_seq, f->snap_seq + 1);
}

/*
 * JACK's sync callback (slow-sync): ready, unless a roll is armed and its
 * cycle has not come yet or the transport is not at its frame.  Called on
 * JACK's process thread before the process callbacks, so `now` is one
 * period past the last cycle's.
 */
int jn_follow_sync(int32_t state, jn_position *pos, void *arg)
{
    jn_playout *p = arg;
    jn_follow *f = &p->follow;
    (void)state;
    if (!LOAD(&f->armed))
        return 1;
    uint64_t now = LOAD(&p->now) + f->period;
    if (pos->frame == f->armed_frame && now + f->period >= f->armed_at)
        return 1;
    __atomic_fetch_add(&f->held, 1, __ATOMIC_RELAXED);
    return 0;
}

/* JACK's timebase callback (--timebase): the BBT of the sender's timeline,
 * carried on to this cycle's frame. */
void jn_follow_timebase(int32_t state, uint32_t nframes, jn_position *pos, int32_t new_pos, void *arg)
{
    jn_playout *p = arg;
    jn_follow *f = &p->follow;
    (void)state;
    (void)nframes;
    (void)new_pos;
    /* While the network thread writes a new reference (its Python can be
     * switched out mid-way, for milliseconds), the last one read whole
     * carries on: returning without a BBT would leave JACK's from the
     * last cycle beside this cycle's frame, a period behind it. */
    uint32_t s1 = LOAD(&f->bbt_seq);
    if (!(s1 & 1)) {
        jn_bbt ref = f->bbt;
        uint32_t ref_frame = f->bbt_frame, rate = f->bbt_rate;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (LOAD(&f->bbt_seq) == s1) {
            f->bbt_kept = ref;
            f->bbt_kept_frame = ref_frame;
            f->bbt_kept_rate = rate;
            f->bbt_kept_valid = 1;
        }
    }
    if (!f->bbt_kept_valid)
        return;
    jn_bbt_at(&f->bbt_kept, f->bbt_kept_frame,
              f->bbt_kept_rate ? f->bbt_kept_rate : pos->frame_rate, pos->frame, pos);
}

double jn_seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
