/* Shared by the C benchmarks: a monotonic clock in nanoseconds, a comparator for qsort, and the
 * process's resident memory. */
#ifndef BG_BENCH_TIMING_H
#define BG_BENCH_TIMING_H

#include <stdio.h>
#include <time.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* This process's resident memory (VmRSS) in KiB; -1 when /proc cannot tell. */
static inline long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  if (f) fclose(f);
  return kib;
}

#endif
