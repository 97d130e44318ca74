/*
 * Brute-force flood of bg_login_complete: 8 threads, 10 000 distinct client addresses (one
 * attempt each, as an attacker rotating addresses would), against the in-process state or a
 * shared slot.
 *   login_flood [SLOT_URL]
 * Two runs: with the default global limit (max_global_failures = 20), which shows how many
 * guesses are evaluated before the lockout; and with the limit out of the way (10^6), which
 * shows what an evaluated attempt costs. Then a bare bg_verify for comparison.
 * Output: one line per figure, "name value unit", for benches/run.sh.
 */
#define _GNU_SOURCE
#include "breakglass.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"

#define THREADS 8
#define ADDRESSES 10000
#define PER_THREAD (ADDRESSES / THREADS)

static double lat[ADDRESSES];
static int evaluated[THREADS], refused[THREADS], no_code[THREADS];

static void *flood(void *arg) {
  int t = (int)(long)arg;
  char ip[64], token[BG_SESSION_TOKEN_BUF_LEN];
  for (int i = 0; i < PER_THREAD; i++) {
    int n = t * PER_THREAD + i;
    /* A /64 of its own for every attempt: per-address limits never trigger. */
    snprintf(ip, sizeof ip, "2001:db8:%x:%x::1", n >> 8, n & 0xff);
    double t0 = now_ns();
    bg_status st = bg_login_complete(ip, "123456", token, sizeof token);
    lat[n] = now_ns() - t0;
    if (st == BG_LOCKED_OUT) refused[t]++;
    /* No address here holds a code (none passed the password): never compared, counted
     * against the address only. */
    else if (st == BG_NO_PENDING_OTP) no_code[t]++;
    else if (st == BG_INVALID || st == BG_EXPIRED) evaluated[t]++;
    else { fprintf(stderr, "unexpected status %s\n", bg_status_str(st)); exit(1); }
  }
  return NULL;
}

static void run(const char *name, const char *limit) {
  pthread_t th[THREADS];
  bg_configure("max_global_failures", limit);
  memset(evaluated, 0, sizeof evaluated);
  memset(refused, 0, sizeof refused);
  memset(no_code, 0, sizeof no_code);
  long before = rss_kib();
  double t0 = now_ns();
  for (long t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, flood, (void *)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  double secs = (now_ns() - t0) / 1e9;
  long after = rss_kib();
  int ev = 0, rf = 0, nc = 0;
  for (int t = 0; t < THREADS; t++) { ev += evaluated[t]; rf += refused[t]; nc += no_code[t]; }
  qsort(lat, ADDRESSES, sizeof *lat, cmp);
  printf("%s_attempts_per_s %.0f /s\n", name, ADDRESSES / secs);
  printf("%s_evaluated %d guesses\n", name, ev);
  printf("%s_refused %d attempts\n", name, rf);
  printf("%s_no_code %d attempts\n", name, nc);
  printf("%s_rss_before %ld KiB\n", name, before);
  printf("%s_rss_after %ld KiB\n", name, after);
  printf("%s_median %.0f ns\n", name, lat[ADDRESSES / 2]);
  printf("%s_p99 %.0f ns\n", name, lat[ADDRESSES * 99 / 100]);
}

/* login_flood MODE [SLOT_URL]: MODE is "limit20" (the default max_global_failures) or
 * "unlimited" (10^6); each mode runs in a process of its own, on a slot key of its own. */
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *mode = argv[1];
  const char *prefix = argc > 2 ? "redis" : "mem";
  char name[64], key[64];
  bg_set_logger(NULL, NULL, 1);
  if (argc > 2 && bg_configure("slot_url", argv[2]) != BG_OK) return 1;
  snprintf(key, sizeof key, "bench:login:%s", mode);
  bg_configure("slot_key", key);
  bg_configure("allowed_ips", "0.0.0.0/0, ::/0");
  snprintf(name, sizeof name, "login_%s_%s", prefix, mode);
  run(name, strcmp(mode, "unlimited") == 0 ? "1000000" : "20");
  if (strcmp(mode, "unlimited") == 0) {
    /* A bare bg_verify on the same slot, for comparison. */
    static double v[2000];
    for (int i = 0; i < 2000; i++) {
      double t0 = now_ns();
      bg_verify("123456");
      v[i] = now_ns() - t0;
    }
    qsort(v, 2000, sizeof *v, cmp);
    printf("login_%s_bare_verify_median %.0f ns\n", prefix, v[1000]);
    printf("login_%s_bare_verify_p99 %.0f ns\n", prefix, v[1980]);
  }
  return 0;
}
