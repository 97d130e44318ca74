/*
 * Hot-path benchmark of libbreakglass from C.
 *   hotpath hot            per-call cost of bg_generate / bg_verify: median and p99 of batch means
 *   hotpath contention N   generate+verify pairs per second with N threads (1 s)
 *   hotpath redis URL      per-call bg_generate / bg_verify on the shared slot at URL (one
 *                          connection per operation, as the library does)
 * Output: one line per figure, "name value unit", for benches/run.sh.
 */
#define _GNU_SOURCE
#include "breakglass.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timing.h"

static void report(const char *name, double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  printf("%s_median %.1f ns\n", name, v[n / 2]);
  printf("%s_p99 %.1f ns\n", name, v[(int)(n * 0.99)]);
}

#define BATCHES 2000
#define BATCH 200

static void hot(void) {
  static double gen[BATCHES], pair[BATCHES], verify_one[BATCHES * 5], none[BATCHES], clk[BATCHES];
  char code[BG_OTP_BUF_LEN];
  for (int i = 0; i < 20000; i++) { /* warm up */
    bg_generate(code, sizeof code);
    bg_verify(code);
  }
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH; i++) bg_generate(code, sizeof code);
    gen[b] = (now_ns() - t0) / BATCH;
  }
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH; i++) {
      bg_generate(code, sizeof code);
      if (bg_verify(code) != BG_OK) abort();
    }
    pair[b] = (now_ns() - t0) / BATCH;
  }
  bg_clear();
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH; i++) bg_verify("123456");
    none[b] = (now_ns() - t0) / BATCH;
  }
  /* bg_verify of a pending, matching code, timed call by call; the clock's own cost (measured
   * the same way) is subtracted. */
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    clk[b] = now_ns() - t0;
  }
  qsort(clk, BATCHES, sizeof *clk, cmp);
  double clock_cost = clk[BATCHES / 2];
  for (int i = 0; i < BATCHES * 5; i++) {
    bg_generate(code, sizeof code);
    double t0 = now_ns();
    bg_status st = bg_verify(code);
    verify_one[i] = now_ns() - t0 - clock_cost;
    if (st != BG_OK) abort();
  }
  report("c_generate", gen, BATCHES);
  report("c_verify", verify_one, BATCHES * 5);
  report("c_pair", pair, BATCHES);
  report("c_verify_nothing_pending", none, BATCHES);
  printf("c_clock_cost %.1f ns\n", clock_cost);
}

static atomic_int go;
static atomic_long pairs;

static void *spin(void *arg) {
  (void)arg;
  char code[BG_OTP_BUF_LEN];
  long n = 0;
  while (!atomic_load_explicit(&go, memory_order_relaxed)) {
  }
  while (atomic_load_explicit(&go, memory_order_relaxed) == 1) {
    bg_generate(code, sizeof code);
    bg_verify(code);
    n++;
  }
  atomic_fetch_add(&pairs, n);
  return NULL;
}

static void contention(int threads) {
  pthread_t t[64];
  char code[BG_OTP_BUF_LEN];
  bg_generate(code, sizeof code);
  bg_verify(code);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, spin, NULL);
  double t0 = now_ns();
  atomic_store(&go, 1);
  struct timespec s = {1, 0};
  nanosleep(&s, NULL);
  atomic_store(&go, 2);
  double el = now_ns() - t0;
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  printf("c_contention_%d %.0f pairs/s\n", threads, (double)atomic_load(&pairs) / (el / 1e9));
}

#define REDIS_ROUNDS 1000

static void redis(const char *url) {
  static double gen[REDIS_ROUNDS], ver[REDIS_ROUNDS];
  char code[BG_OTP_BUF_LEN];
  if (bg_configure("slot_url", url) != BG_OK) abort();
  for (int i = 0; i < 50; i++) { /* warm up */
    bg_generate(code, sizeof code);
    bg_verify(code);
  }
  for (int i = 0; i < REDIS_ROUNDS; i++) {
    double t0 = now_ns();
    if (bg_generate(code, sizeof code) != BG_OK) abort();
    double t1 = now_ns();
    if (bg_verify(code) != BG_OK) abort();
    gen[i] = t1 - t0;
    ver[i] = now_ns() - t1;
  }
  report("c_redis_generate", gen, REDIS_ROUNDS);
  report("c_redis_verify", ver, REDIS_ROUNDS);
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "redis") == 0) {
    redis(argv[2]);
  } else if (argc > 1 && strcmp(argv[1], "hot") == 0) {
    hot();
  } else if (argc > 2 && strcmp(argv[1], "contention") == 0) {
    int n = atoi(argv[2]);
    if (n < 1 || n > 64) return 2;
    contention(n);
  } else {
    fprintf(stderr, "usage: hotpath hot | hotpath contention N | hotpath redis URL\n");
    return 2;
  }
  return 0;
}
