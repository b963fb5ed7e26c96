"""cffi build script for jacknet's real-time path (``jacknet/rt.c``).

Run by setuptools at install time (``cffi_modules`` in ``setup.py``); it
produces the extension module ``jacknet._rt``.
"""
from pathlib import Path

from cffi import FFI

CDEF = """
#define JN_MAX_CHANNELS 64
typedef struct {
    void *(*port_get_buffer)(void *port, uint32_t nframes);
    uint32_t (*last_frame_time)(const void *client);
    int (*transport_query)(const void *client, void *pos);
    uint32_t (*get_current_transport_frame)(const void *client);
} jn_jack_api;

typedef struct {
    uint64_t wpos;
    uint32_t frame_time;
    uint32_t nframes;
    int32_t transport_state;
    uint32_t transport_frame;
} jn_cycle_meta;

typedef struct {
    jn_jack_api api;
    void *client;
    uint32_t nch;
    uint32_t capacity;
    float *buf;
    void *ports[64];
    uint64_t wpos;
    uint64_t rpos;
    uint64_t cycles;
    uint64_t discontinuities;
    uint64_t dropped;
    ...;
} jn_capture;

jn_capture *jn_capture_new(uint32_t nch, uint32_t capacity);
void jn_capture_free(jn_capture *c);
void jn_capture_push(jn_capture *c, uint32_t frame_time, uint32_t nframes,
                     float *const *ins, int32_t tstate, uint32_t tframe);
int jn_capture_process(uint32_t nframes, void *arg);
uint64_t jn_capture_available(jn_capture *c);
int64_t jn_capture_read(jn_capture *c, float *dst, uint32_t n);
int jn_capture_meta(jn_capture *c, uint64_t pos, jn_cycle_meta *out);
int jn_capture_wait(jn_capture *c, double timeout);
void jn_capture_skip(jn_capture *c);

typedef struct {
    jn_jack_api api;
    void *client;
    uint32_t nch;
    uint32_t capacity;
    float *buf;
    void *ports[64];
    int64_t offset;
    int32_t locked;
    uint64_t count_from;
    uint64_t now;
    uint64_t read_end;
    uint32_t fade_len;
    uint64_t cycles;
    uint64_t played_frames;
    uint64_t concealed_frames;
    uint64_t underruns;
    ...;
} jn_playout;

jn_playout *jn_playout_new(uint32_t nch, uint32_t capacity, uint32_t fade_len, float decay);
void jn_playout_free(jn_playout *p);
void jn_playout_write(jn_playout *p, uint64_t idx, uint32_t n, uint32_t src_nch, const float *src);
int jn_playout_has(jn_playout *p, uint64_t idx);
void jn_playout_run(jn_playout *p, uint64_t now, uint32_t nframes, float *const *outs);
int jn_playout_process(uint32_t nframes, void *arg);

float jn_test_sample(uint32_t ch, uint32_t t);
float jn_music_sample(uint32_t ch, uint32_t t);
typedef struct {
    jn_jack_api api;
    void *client;
    uint32_t nch;
    void *ports[64];
    int32_t mode;
    uint32_t impulse_interval;
    uint32_t tone_hz;
    uint32_t rate;
    uint64_t cycles;
    ...;
} jn_generator;
jn_generator *jn_generator_new(uint32_t nch);
void jn_generator_free(jn_generator *g);
int jn_generator_process(uint32_t nframes, void *arg);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "jacknet._rt",
    (Path(__file__).with_name("rt.c")).read_text(),
    extra_compile_args=["-O2", "-std=gnu11"],
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
