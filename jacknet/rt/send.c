/*
 * The sender's steady state without Python (issue 16): PCM packets cut from
 * the capture ring, encoded, stamped and sent on a connected UDP socket.
 *
 * Why: a Python worker woken for every packet spends ~100 us of a core on
 * it, cold-cache interpreter work that dwarfs the copy and the send(2).
 * Python still owns the stream's state and makes every decision: each call
 * takes the state in (jn_sendpath), sends the packets that need no decision,
 * and hands the first one that does (a missed cycle, a change of the JACK
 * transport, a position block due) back to Python, already read into
 * s->block, together with the state as it left it.
 *
 * Runs on the sender's network thread, never on JACK's; the GIL is released
 * for the whole call (cffi does so around every call).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "rt.h"

#define STATE_ROLLING 1

static uint8_t *put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p = put16(p, v >> 16);
    return put16(p, v & 0xFFFF);
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    p = put32(p, (uint32_t)(v >> 32));
    return put32(p, (uint32_t)v);
}

/* The header of protocol.HEADER ("!4sBBBBIIQIIHHBBH"), network byte order. */
static void put_header(const jn_sendpath *s, uint8_t *p, uint64_t timestamp, int32_t state,
                       uint32_t frame, uint32_t index, uint32_t count, uint32_t len)
{
    memcpy(p, "JNET", 4);
    p[4] = JN_PROTOCOL_VERSION;
    p[5] = (uint8_t)s->codec;
    p[6] = (uint8_t)s->flags;
    p[7] = (uint8_t)(state | (s->epoch % JN_TRANSPORT_EPOCHS) << 3);
    p = put32(p + 8, s->stream_id);
    p = put32(p, s->seq);
    p = put64(p, timestamp);
    p = put32(p, s->rate);
    p = put32(p, frame);
    p = put16(p, s->frames);
    p = put16(p, s->nch);
    p[0] = (uint8_t)index;
    p[1] = (uint8_t)count;
    put16(p + 2, len);
}

/* Whether the transport at this packet is what the last one said, carried
 * on: the rule of sync.watch.TransportWatch._changed at equal rates.  Only
 * then is the packet the C path's to send. */
static int transport_carries_on(const jn_sendpath *s, int32_t state, uint32_t frame,
                                uint64_t timestamp)
{
    if (!s->have_last)
        return 0;
    if ((state == STATE_ROLLING) != (s->last_state == STATE_ROLLING))
        return 0;
    if (state != STATE_ROLLING)
        return frame == s->last_frame;
    int32_t off = (int32_t)(frame - (s->last_frame + (uint32_t)(timestamp - s->last_ts)));
    return off >= -2 && off <= 2;
}

/* The transport's state and frame in the cycle that captured pos, as
 * engines.Capture.jack_transport_at gives them: 0 if forgotten. */
static void transport_at(jn_capture *c, uint64_t pos, int32_t *state, uint32_t *frame)
{
    jn_cycle_meta m;
    if (!jn_capture_meta(c, pos, &m)) {
        *state = 0;
        *frame = 0;
        return;
    }
    uint64_t rolled = pos - m.wpos - m.filled;
    *state = m.transport_state;
    *frame = m.transport_frame + (m.transport_state == STATE_ROLLING ? (uint32_t)rolled : 0);
}

/* int16 as codecs.pcm.Int16Encoder without dither: scaled by 32768 (exact
 * in float32), rounded half to even like numpy.rint, clipped and counted. */
static const uint8_t *encode_int16(jn_sendpath *s, size_t n)
{
    int16_t *out = (int16_t *)s->payload;
    for (size_t i = 0; i < n; i++) {
        float v = rintf(s->block[i] * 32768.0f);
        if (v != v)
            v = 0.0f;  /* NaN from a broken client: converting it is undefined */
        else if (v > 32767.0f || v < -32768.0f) {
            s->clipped++;
            v = v > 0 ? 32767.0f : -32768.0f;
        }
        out[i] = (int16_t)v;
    }
    return s->payload;
}

/* Encode, cut into fragments and send the packet in s->block. */
static void send_packet(jn_sendpath *s, uint64_t timestamp, int32_t state, uint32_t frame)
{
    size_t n = (size_t)s->nch * s->frames;
    const uint8_t *payload;
    size_t len;
    if (s->codec == JN_CODEC_INT16) {
        payload = encode_int16(s, n);
        len = n * 2;
    } else {
        payload = (const uint8_t *)s->block;  /* little-endian planar float32, as on the wire */
        len = n * 4;
    }
    size_t room = s->mtu - JN_HEADER_SIZE;
    uint32_t count = len ? (uint32_t)((len + room - 1) / room) : 1;
    for (uint32_t i = 0; i < count; i++) {
        size_t part = len - i * room < room ? len - i * room : room;
        put_header(s, s->datagram, timestamp, state, frame, i, count, (uint32_t)part);
        memcpy(s->datagram + JN_HEADER_SIZE, payload + i * room, part);
        if (send(s->fd, s->datagram, JN_HEADER_SIZE + part, MSG_DONTWAIT) < 0) {
            s->send_errors++;  /* nobody listening yet, no route, or a full buffer */
        } else {
            s->datagrams++;
            s->bytes += JN_HEADER_SIZE + part;
        }
    }
    s->seq++;
    s->packets++;
    s->have_last = 1;
    s->last_state = state;
    s->last_frame = frame;
    s->last_ts = timestamp;
}

int jn_send_pump(jn_sendpath *s, jn_capture *c, double seconds)
{
    double deadline = jn_seconds_now() + seconds;
    for (;;) {
        int64_t got;
        while ((got = jn_capture_read(c, s->block, s->frames)) >= 0) {
            uint64_t pos = (uint64_t)got;
            s->position = pos;
            int32_t state = JN_TRANSPORT_NONE;
            uint32_t frame = 0;
            if (jn_capture_filled_in(c, pos, s->frames))
                return JN_SEND_PYTHON;
            if (s->share) {
                transport_at(c, pos, &state, &frame);
                if (s->position_due || pos >= s->next_position
                        || !transport_carries_on(s, state, frame, pos))
                    return JN_SEND_PYTHON;
            }
            send_packet(s, pos, state, frame);
        }
        double left = deadline - jn_seconds_now();
        if (left <= 0)
            return JN_SEND_IDLE;
        jn_capture_wait(c, left);
    }
}
