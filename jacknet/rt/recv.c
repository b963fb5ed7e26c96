/*
 * The receiver's steady state without Python (issue 16): PCM packets read
 * from the UDP socket, checked, gathered from their fragments, decoded and
 * written into the playout ring.
 *
 * Why: a Python worker woken for every datagram spends 100-150 us of a core
 * on it, cold-cache interpreter work that dwarfs the copy.  Python keeps the
 * stream and every decision: each call takes in where the next packet of
 * the stream played must go (jn_recvpath), places only that packet, then
 * the one after it, and so on, and records each placement for Python to
 * account for (its transit, slack, loss, transport) after the call, by the
 * same rules as a packet it placed itself.  Anything else (another sender,
 * another stream, a packet out of order, late, a duplicate, a flag, a
 * malformed datagram) is handed back to Python, with the fragments of the
 * packet gathered so far, to take the usual way.
 *
 * Runs on the receiver's network thread, never on JACK's; the GIL is
 * released for the whole call (cffi does so around every call).
 */
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "rt.h"


static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Now on the playout's 64-bit receiver clock, as Receiver._arrival_clock
 * makes it; without a JACK client (tests), the arrival Python gave. */
static uint64_t arrival_now(const jn_recvpath *r, jn_playout *p)
{
    if (!p->api.frame_time)
        return r->arrival;
    uint64_t ref = LOAD(&p->now);
    int32_t delta = (int32_t)(p->api.frame_time(p->client) - (uint32_t)ref);
    return ref + (int64_t)delta;
}

/* Whether the datagram in r->datagram is the next fragment of the next
 * packet of the stream played (protocol.parse's checks, and more: nothing
 * that needs a decision).  Sets *tstate, *tframe and *index, *count. */
static int is_next(const jn_recvpath *r, size_t n, uint32_t *tbyte, uint32_t *tframe,
                   uint32_t *index, uint32_t *count)
{
    const uint8_t *d = r->datagram;
    if (n <= JN_HEADER_SIZE || memcmp(d, "JNET", 4) != 0 || d[4] != JN_PROTOCOL_VERSION
            || d[5] != r->codec || d[6] != 0)
        return 0;
    uint32_t state = d[7] & 7;
    if (state > 4 && state != JN_TRANSPORT_NONE)
        return 0;
    if (get32(d + 8) != r->stream_id || get32(d + 12) != r->seq
            || get64(d + 16) != r->timestamp || get32(d + 24) != r->rate
            || get16(d + 32) != r->frames || get16(d + 34) != r->nch
            || get16(d + 38) != n - JN_HEADER_SIZE)
        return 0;
    *index = d[36];
    *count = d[37];
    if (*count == 0 || *count > JN_RECV_FRAGMENTS || *index != r->gathered)
        return 0;
    for (uint32_t i = 0; i < r->nknown; i++)
        if (r->known[i] == r->seq)
            return 0;  /* its reassembler or sequencer has a part of it: as they say */
    *tbyte = d[7];
    *tframe = get32(d + 28);
    return 1;
}

/* The payload gathered, decoded into r->block (planar, as codecs.pcm does). */
static void decode(jn_recvpath *r, size_t samples)
{
    if (r->codec == JN_CODEC_INT16) {
        const int16_t *in = (const int16_t *)r->packet;  /* little-endian, as on the wire */
        for (size_t i = 0; i < samples; i++)
            r->block[i] = (float)in[i] * (1.0f / 32768.0f);
    } else {
        memcpy(r->block, r->packet, samples * 4);
    }
}

/* Place the packet gathered if the playout may take it where Python's
 * JitterBuffer.insert would store it at once; 0 if not. */
static int place(jn_recvpath *r, jn_playout *p, uint64_t arrival, uint32_t tbyte,
                 uint32_t tframe, uint32_t datagrams, uint32_t bytes)
{
    int64_t off = (int64_t)(r->timestamp - arrival) - r->skew;
    if (off < -r->window || off > r->window)
        return 0;  /* off the stream's timeline: Timeline.place decides */
    uint64_t first = r->timestamp + (uint64_t)r->base;
    uint64_t end = first + r->frames;
    uint64_t read_end = LOAD(&p->read_end);
    if (!LOAD(&p->locked) || first < read_end
            || end > read_end + p->capacity - r->guard
            || jn_playout_has(p, first) || jn_playout_has(p, end - 1))
        return 0;
    decode(r, (size_t)r->nch * r->frames);
    jn_playout_write(p, first, r->frames, r->nch, r->block);
    jn_recvrecord *rec = &r->records[r->placed++];
    rec->seq = r->seq;
    rec->timestamp = r->timestamp;
    rec->arrival = arrival;
    rec->at = jn_seconds_now();
    rec->read_end = read_end;
    rec->tbyte = tbyte;
    rec->tframe = tframe;
    rec->datagrams = datagrams;
    rec->bytes = bytes;
    r->seq++;
    r->timestamp += r->frames;
    return 1;
}

int jn_recv_pump(jn_recvpath *r, jn_playout *p, double seconds)
{
    double deadline = jn_seconds_now() + seconds;
    size_t expected = (size_t)r->nch * r->frames * (r->codec == JN_CODEC_INT16 ? 2 : 4);
    uint32_t bytes = 0, first_tbyte = 0, first_tframe = 0;
    r->placed = r->gathered = r->held_bytes = 0;
    r->length = 0;
    r->gathered_payload = 0;
    for (;;) {
        ssize_t n;
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        /* Nothing waiting, or an error (an ICMP one, which this read has
         * taken off the socket): wait for more until time is up. */
        while ((n = recvfrom(r->fd, r->datagram, JN_MAX_DATAGRAM, MSG_DONTWAIT,
                             (struct sockaddr *)&from, &from_len)) < 0) {
            double left = deadline - jn_seconds_now();
            if (left <= 0) {
                r->length = 0;  /* the last one read is gathered already */
                return r->gathered ? JN_RECV_PYTHON : JN_RECV_IDLE;
            }
            struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
            poll(&pfd, 1, (int)(left * 1000) + 1);
            from_len = sizeof from;
        }
        r->length = (uint32_t)n;
        memcpy(r->sender, &from, from_len < sizeof r->sender ? from_len : sizeof r->sender);
        r->sender_len = from_len;
        if (r->peer_len && (from_len != r->peer_len || memcmp(&from, r->peer, from_len) != 0))
            return JN_RECV_PYTHON;
        double now = jn_seconds_now();
        __atomic_store(&r->heard_at, &now, __ATOMIC_RELEASE);
        uint32_t tbyte, tframe, index, count;
        if (!is_next(r, (size_t)n, &tbyte, &tframe, &index, &count))
            return JN_RECV_PYTHON;
        if (index == 0) {
            /* a packet's header is its first fragment's, as for Reassembler */
            first_tbyte = tbyte;
            first_tframe = tframe;
        }
        size_t part = (size_t)n - JN_HEADER_SIZE;
        if (r->gathered_payload + part > expected || (index + 1 == count) !=
                (r->gathered_payload + part == expected))
            return JN_RECV_PYTHON;  /* not this format's size: protocol's checks say why */
        memcpy(r->packet + r->gathered_payload, r->datagram + JN_HEADER_SIZE, part);
        if (index + 1 < count) {
            /* kept whole, in case Python must take the packet after all */
            memcpy(r->held + r->held_bytes, r->datagram, (size_t)n);
            r->held_len[r->gathered++] = (uint32_t)n;
            r->held_bytes += (uint32_t)n;
            r->gathered_payload += part;
            bytes += (uint32_t)n;
            continue;
        }
        if (!place(r, p, arrival_now(r, p), first_tbyte, first_tframe, count,
                   bytes + (uint32_t)n))
            return JN_RECV_PYTHON;
        r->length = 0;
        r->gathered = r->held_bytes = 0;
        r->gathered_payload = 0;
        bytes = 0;
        if (r->placed == JN_RECV_RECORDS)
            return JN_RECV_IDLE;
    }
}
