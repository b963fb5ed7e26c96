/*
 * The C real-time path's shared declarations: the states the JACK process
 * callbacks work on, and the functions the Python face calls.  This file is
 * also the cffi cdef: rt/_build.py reads it, drops the preprocessor lines and
 * writes the JN_ constants' values in, so it holds declarations only.
 */
#ifndef JN_RT_H
#define JN_RT_H
#include <semaphore.h>
#include <stdint.h>

#define JN_MAX_CHANNELS 64
#define JN_META_SLOTS 1024
#define JN_POSITION_BBT 16
#define JN_LEVEL_SLOTS 1024
#define JN_RECV_FRAGMENTS 32
#define JN_RECV_RECORDS 128
#define JN_PEER_BYTES 128
#define JN_RECV_KNOWN 32


#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* JACK's jack_position_t, field for field (jack/types.h; 136 bytes, which
 * tests/test_follow.py checks against JACK-Client's declaration). */
typedef struct {
    uint64_t unique_1;
    uint64_t usecs;
    uint32_t frame_rate;
    uint32_t frame;
    int32_t valid;            /* JN_POSITION_BBT when the BBT fields are set */
    int32_t bar;
    int32_t beat;
    int32_t tick;
    double bar_start_tick;
    float beats_per_bar;
    float beat_type;
    double ticks_per_beat;
    double beats_per_minute;
    double frame_time;
    double next_time;
    uint32_t bbt_offset;
    float audio_frames_per_video_frame;
    uint32_t video_offset;
    int32_t padding[7];
    uint64_t unique_2;
} jn_position;

typedef struct {
    void *(*port_get_buffer)(void *port, uint32_t nframes);
    uint32_t (*last_frame_time)(const void *client);
    uint32_t (*frame_time)(const void *client);
    int (*transport_query)(const void *client, jn_position *pos);
    int (*transport_locate)(void *client, uint32_t frame);
    void (*transport_start)(void *client);
    void (*transport_stop)(void *client);
} jn_jack_api;

/* The musical position (BBT) of a JACK transport, as a timebase master gave it. */
typedef struct {
    int32_t valid;            /* 0: no timebase master */
    int32_t bar;
    int32_t beat;
    int32_t tick;
    double bar_start_tick;
    float beats_per_bar;
    float beat_type;
    double ticks_per_beat;
    double beats_per_minute;
} jn_bbt;

typedef struct {
    uint64_t wpos;        /* capture position of the cycle's first frame */
    uint32_t frame_time;  /* JACK frame time of that frame */
    uint32_t nframes;     /* frames written: the silence filled, then the cycle's own */
    uint32_t filled;      /* silence standing in for cycles JACK did not run us in */
    int32_t transport_state;
    uint32_t transport_frame;
    uint32_t transport_rate;  /* the JACK transport's frame rate */
    jn_bbt bbt;
} jn_cycle_meta;

/* One cycle's level of one channel. */
typedef struct {
    float peak;       /* largest magnitude */
    float sumsq;      /* sum of squares */
    uint32_t clips;   /* samples at or beyond full scale (|x| >= 1) */
    uint32_t frames;
} jn_level;

/*
 * Levels where the audio is: each cycle the process callback writes one
 * jn_level per channel into slot (cycles % JN_LEVEL_SLOTS), then publishes
 * cycles; a reader folds the slots it has not seen (jn_meter_read).
 */
typedef struct {
    uint32_t nch;
    jn_level *slots;      /* JN_LEVEL_SLOTS * nch */
    uint64_t cycles;      /* atomic */
} jn_meter;

/* The 64-bit extension of JACK's 32-bit frame clock, which wraps after a day. */
typedef struct {
    uint64_t now;
    uint32_t last;
    int started;
} jn_clock;

typedef struct {
    jn_jack_api api;
    void *client;
    uint32_t nch;
    uint32_t capacity;            /* frames, a power of two */
    float *buf;                   /* nch * capacity, planar */
    void *ports[JN_MAX_CHANNELS];
    uint64_t wpos;                /* frames published (atomic) */
    uint64_t wbusy;               /* end of the region being written (atomic) */
    uint64_t rpos;                /* reader's position (reader thread only) */
    uint64_t cycles;
    uint64_t discontinuities;     /* cycles whose frame time did not follow on */
    uint64_t dropped;             /* frames the reader lost to overruns */
    uint32_t next_frame_time;
    uint32_t fill_max;            /* longest stretch of missed cycles filled with silence */
    uint64_t filled;              /* frames of silence filled in so far */
    jn_meter meter;               /* the inputs' levels */
    jn_cycle_meta meta[JN_META_SLOTS];
    sem_t wake;
} jn_capture;

/*
 * A receiver's JACK transport following the sender's (jacknet.sync.follow
 * decides; this carries it out on JACK's thread, at the cycle it is due).
 * The control thread posts one command at a time: it writes the cmd_ fields,
 * then bumps cmd_seq.  Each cycle publishes what the transport was doing
 * (snap_, guarded by snap_seq: odd while being written).
 */
typedef struct {
    int32_t enabled;              /* atomic: query the transport every cycle */
    uint32_t cmd_seq;             /* atomic */
    int32_t cmd_kind;             /* JN_FOLLOW_* */
    uint32_t cmd_frame;
    uint64_t cmd_at;              /* receiver clock of the cycle that rolls or stops */
    uint32_t done_seq;            /* RT thread only */
    int32_t armed;                /* a roll waits for its cycle: the sync callback holds */
    uint32_t armed_frame;
    uint64_t armed_at;
    int32_t stop_pending;
    uint64_t stop_at;
    uint32_t stop_frame;
    uint32_t period;              /* frames of the last cycle */
    uint64_t held;                /* cycles the sync callback held the transport (atomic) */
    uint32_t snap_seq;            /* atomic */
    uint64_t snap_now;
    uint64_t snap_read;           /* ring index played first in that cycle */
    int32_t snap_state;
    uint32_t snap_frame;
    uint32_t snap_done;           /* commands carried out */
    uint32_t bbt_seq;             /* atomic, odd while the timebase fields are written */
    jn_bbt bbt;                   /* the musical position at bbt_frame */
    uint32_t bbt_frame;
    uint32_t bbt_rate;
    jn_bbt bbt_kept;              /* RT thread only: the last copy read whole */
    uint32_t bbt_kept_frame;
    uint32_t bbt_kept_rate;
    int32_t bbt_kept_valid;
} jn_follow;

typedef struct {
    jn_jack_api api;
    void *client;
    uint32_t nch;
    uint32_t capacity;            /* frames, a power of two */
    float *buf;                   /* nch * capacity, planar */
    uint64_t *stamp;              /* ring index + 1 of the frame held */
    void *ports[JN_MAX_CHANNELS];
    int64_t offset;               /* ring index = clock - offset (atomic) */
    int32_t locked;               /* atomic */
    uint64_t count_from;          /* first ring index of the stream: earlier gaps are no loss */
    jn_clock clock;
    uint64_t now;                 /* clock at the start of the last cycle (atomic) */
    uint64_t read_end;            /* ring index after the last frame played (atomic) */
    int64_t last_offset;
    uint32_t fade_len;
    uint32_t fade_pos;
    float decay;
    float hold[JN_MAX_CHANNELS];
    uint64_t cycles;
    uint64_t concealed_frames;
    uint64_t underruns;           /* cycles with at least one frame missing */
    float limit;                  /* no stored sample's magnitude exceeds it (writer only) */
    uint64_t nonfinite_samples;   /* NaN or Inf written: stored as silence */
    uint64_t limited_samples;     /* written beyond +-limit: stored at the limit */
    uint32_t fade_out;            /* closing: frames to fade to silence over; 0 while open (atomic) */
    uint32_t fade_out_pos;        /* frames of that fade played */
    jn_follow follow;
    jn_meter meter;               /* the outputs' levels, as played */
} jn_playout;

typedef struct {
    jn_jack_api api;
    void *client;
    uint32_t nch;
    void *ports[JN_MAX_CHANNELS];
    int32_t mode;               /* atomic */
    uint32_t impulse_interval;  /* frames between impulses */
    uint32_t tone_hz;           /* tone: frequency, and the rate it is computed at */
    uint32_t rate;
    uint64_t cycles;
} jn_generator;

/* What JACK tells a client outside its cycles (xruns, the server's end),
 * recorded by C callbacks: JACK may call them on its process thread (jack2
 * calls its shutdown callback there), where no Python may ever run. */
typedef struct {
    uint64_t xruns;          /* atomic */
    int32_t shutdown;        /* atomic: set once the server has let go of us */
    char reason[256];        /* written before shutdown is set */
} jn_watch;

/*
 * The sender's PCM packets sent without Python (send.c).  Python fills in
 * the stream's format and its state before each call and reads the state
 * back after it; the counts are what that one call did.
 */
typedef struct {
    int32_t fd;                   /* connected UDP socket */
    uint32_t codec;               /* JN_CODEC_FLOAT32 or JN_CODEC_INT16 */
    uint32_t nch, frames, rate, mtu;
    uint32_t stream_id;
    uint32_t flags;               /* header flags */
    int32_t share;                /* 0: every packet says there is no transport */
    float *block;                 /* nch * frames: the packet read last */
    uint8_t *payload;             /* nch * frames * 2: int16 encoded */
    uint8_t *datagram;            /* mtu bytes */
    /* the stream's state, Python's in between calls */
    uint32_t seq;
    uint32_t epoch;
    int32_t have_last;            /* last_*: what the last packet said of the transport */
    int32_t last_state;
    uint32_t last_frame;
    uint64_t last_ts;
    int32_t position_due;         /* packets that must still carry a position block */
    uint64_t next_position;       /* from this timestamp on, one is due again */
    uint64_t position;            /* out: capture position of the packet read last */
    /* what the call did */
    uint64_t packets, datagrams, bytes, send_errors, clipped;
} jn_sendpath;

/* One packet jn_recv_pump placed, for Python to account for. */
typedef struct {
    uint32_t seq;
    uint64_t timestamp;
    uint64_t arrival;             /* receiver clock */
    double at;                    /* CLOCK_MONOTONIC seconds (Python's time.monotonic) */
    uint64_t read_end;            /* the playout's, as the packet was placed */
    uint32_t tbyte;               /* the header's transport state byte and frame */
    uint32_t tframe;
    uint32_t datagrams, bytes;
} jn_recvrecord;

/*
 * The receiver's PCM packets placed without Python (recv.c).  Python fills
 * in the stream's format and where its next packet goes before each call;
 * the call hands back what it placed, and the datagram (with the fragments
 * gathered before it) that needs Python.
 */
typedef struct {
    int32_t fd;                   /* the bound UDP socket */
    uint32_t codec;               /* JN_CODEC_FLOAT32 or JN_CODEC_INT16 */
    uint32_t nch, frames, rate;   /* the stream's (its headers') */
    uint32_t stream_id;
    uint8_t peer[JN_PEER_BYTES];  /* the sender locked to (a sockaddr) */
    uint32_t peer_len;            /* 0: any sender */
    int64_t base;                 /* ring index = timestamp + base */
    uint32_t guard;               /* frames the ring keeps free beyond the read position */
    int64_t skew, window;         /* a packet's timestamp - arrival lies within window of skew */
    uint64_t arrival;             /* the receiver clock, without a JACK client (tests) */
    /* the next packet of the stream, Python's in between calls */
    uint32_t seq;
    uint64_t timestamp;
    uint32_t known[JN_RECV_KNOWN];  /* packets Python has had a part of: its own */
    uint32_t nknown;
    /* buffers */
    uint8_t *datagram;            /* JN_MAX_DATAGRAM bytes: the last datagram read */
    uint8_t *packet;              /* the payload gathered */
    uint8_t *held;                /* the fragments gathered, whole */
    float *block;                 /* nch * frames */
    /* what the call did */
    uint32_t length;              /* bytes of the datagram Python must take, 0: none */
    uint8_t sender[JN_PEER_BYTES];  /* ... and its sender (a sockaddr) */
    uint32_t sender_len;
    uint32_t gathered;            /* fragments before it that Python must take first */
    uint32_t held_len[JN_RECV_FRAGMENTS];
    uint32_t held_bytes;
    uint32_t gathered_payload;
    uint32_t placed;
    jn_recvrecord records[JN_RECV_RECORDS];
    /* CLOCK_MONOTONIC seconds of the newest datagram from the sender
     * played, written as it comes: other threads read it during the call
     * (an outage going on is not one while C is taking packets) */
    double heard_at;
} jn_recvpath;

/* Levels per channel summed over cycles, for a reader (jn_meter_read). */
typedef struct {
    float peak[JN_MAX_CHANNELS];     /* the largest */
    double sumsq[JN_MAX_CHANNELS];
    uint64_t clips[JN_MAX_CHANNELS];
    uint64_t frames;                 /* of each channel */
} jn_sums;

uint64_t jn_meter_read(jn_meter *m, uint64_t from, jn_sums *tenth, jn_sums *second);
int jn_watch_xrun(void *arg);
void jn_watch_shutdown(int code, const char *reason, void *arg);
/* libjack's error and info function: libjack may call it on any of its
 * threads, the process thread among them, so it only drops the message. */
void jn_jack_message(const char *msg);

/* For tests: the next cycle of a stalling capture never returns, as a
 * process thread that lost its wake-up (cancelled when JACK closes it). */
extern int32_t jn_test_stall_next;
int jn_stalling_capture_process(uint32_t nframes, void *arg);

jn_capture *jn_capture_new(uint32_t nch, uint32_t capacity);
void jn_capture_free(jn_capture *c);
void jn_capture_push(jn_capture *c, uint32_t frame_time, uint32_t nframes, float *const *ins, const jn_position *pos, int32_t tstate);
int jn_capture_process(uint32_t nframes, void *arg);
int64_t jn_capture_read(jn_capture *c, float *dst, uint32_t n);
int jn_capture_meta(jn_capture *c, uint64_t pos, jn_cycle_meta *out);
int jn_capture_filled_in(jn_capture *c, uint64_t pos, uint32_t n);
void jn_capture_skip(jn_capture *c);
int jn_capture_wait(jn_capture *c, double timeout);
/* CLOCK_MONOTONIC in seconds: the C paths' deadlines. */
double jn_seconds_now(void);
int jn_send_pump(jn_sendpath *s, jn_capture *c, double seconds);
int jn_recv_pump(jn_recvpath *r, jn_playout *p, double seconds);
jn_playout *jn_playout_new(uint32_t nch, uint32_t capacity, uint32_t fade_len, float decay, float limit);
void jn_playout_free(jn_playout *p);
void jn_playout_write(jn_playout *p, uint64_t idx, uint32_t n, uint32_t src_nch, const float *src);
int jn_playout_has(jn_playout *p, uint64_t idx);
void jn_playout_run(jn_playout *p, uint64_t now, uint32_t nframes, float *const *outs);
int jn_playout_process(uint32_t nframes, void *arg);
void jn_follow_cycle(jn_playout *p, uint64_t now, uint32_t nframes, int32_t state, uint32_t frame);
int jn_follow_sync(int32_t state, jn_position *pos, void *arg);
void jn_follow_timebase(int32_t state, uint32_t nframes, jn_position *pos, int32_t new_pos, void *arg);
void jn_bbt_at(const jn_bbt *ref, uint32_t ref_frame, uint32_t rate, uint32_t frame, jn_position *pos);
float jn_test_sample(uint32_t ch, uint32_t t);
float jn_music_sample(uint32_t ch, uint32_t t);
jn_generator *jn_generator_new(uint32_t nch);
void jn_generator_free(jn_generator *g);
int jn_generator_process(uint32_t nframes, void *arg);

enum { JN_GEN_SILENCE = 0, JN_GEN_NOISE = 1, JN_GEN_IMPULSE = 2, JN_GEN_MUSIC = 3, JN_GEN_TONE = 4, JN_GEN_TRANSPORT = 5 };
enum { JN_FOLLOW_NONE = 0, JN_FOLLOW_LOCATE = 1, JN_FOLLOW_ROLL = 2, JN_FOLLOW_STOP = 3 };
enum { JN_FOLLOW_HOLD_CYCLES = 16 };  /* a roll not made by then is given up */
/* jn_send_pump: time is up, or the packet in s->block needs Python. */
enum { JN_SEND_IDLE = 0, JN_SEND_PYTHON = 1 };
/* jn_recv_pump: time is up (or its records are full), or a datagram needs Python. */
enum { JN_RECV_IDLE = 0, JN_RECV_PYTHON = 1, JN_MAX_DATAGRAM = 65507 };
/* net.protocol's codec ids, transport constants and header. */
enum { JN_CODEC_FLOAT32 = 0, JN_CODEC_INT16 = 1, JN_TRANSPORT_NONE = 7, JN_TRANSPORT_EPOCHS = 32 };
enum { JN_HEADER_SIZE = 40, JN_PROTOCOL_VERSION = 2 };

#endif
