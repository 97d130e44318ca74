/* Shared by the C benchmarks: a monotonic clock in nanoseconds and a comparator for qsort. */
#ifndef BG_BENCH_TIMING_H
#define BG_BENCH_TIMING_H

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

#endif
