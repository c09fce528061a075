// LD_PRELOAD=libvigil-stepped-clock.so VIGIL_CLOCK_OFFSET_FILE=FILE: the wall clock
// (CLOCK_REALTIME, gettimeofday, time) of the process runs at the offset in FILE, whole
// seconds, re-read every 100 ms; writing a new offset steps the clock, the way settimeofday
// or an NTP step does. CLOCK_MONOTONIC and CLOCK_BOOTTIME are left alone.
//
// The fault suite's own tool, not libfaketime: under libfaketime 0.9.10 a Swift program sees
// no command line arguments, and timed waits on a CLOCK_MONOTONIC condition end at once.
// The kernel does not see the offset: an absolute CLOCK_REALTIME wait computed from the
// faked clock would be off by it (vigil waits on CLOCK_MONOTONIC only).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void) {
    static _Atomic(clock_gettime_fn) real;
    clock_gettime_fn f = atomic_load(&real);
    if (!f) {
        f = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
        atomic_store(&real, f);
    }
    return f;
}

static _Atomic long long offset_seconds;
static _Atomic long long next_read_ns;

static void refresh(void) {
    struct timespec m;
    real_clock_gettime()(CLOCK_MONOTONIC, &m);
    long long now = (long long)m.tv_sec * 1000000000LL + m.tv_nsec;
    long long due = atomic_load(&next_read_ns);
    if (now < due || !atomic_compare_exchange_strong(&next_read_ns, &due, now + 100000000LL)) return;
    const char *path = getenv("VIGIL_CLOCK_OFFSET_FILE");
    if (!path) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    long long s;
    if (fscanf(f, "%lld", &s) == 1) atomic_store(&offset_seconds, s);
    fclose(f);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = real_clock_gettime()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        refresh();
        ts->tv_sec += (time_t)atomic_load(&offset_seconds);
    }
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    // glibc declares tv nonnull, yet callers may pass NULL: test a copy, not the parameter.
    struct timeval *volatile out = tv;
    if (rc == 0 && out != NULL) {
        out->tv_sec = ts.tv_sec;
        out->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
