/*
 * The login state's stores, measured in one run (benches/run.sh):
 *
 *   store_cost attempt mem              one attempt on the in-process state
 *   store_cost attempt dir DIR          ... on state_dir DIR (a tmpfs directory)
 *   store_cost attempt redis URL        ... on slot_url URL (a loopback redis-server)
 *   store_cost attempt-full STORE [ARG] the same after a flood from 10,000 other addresses
 *                                       (BG_FILL overrides the count): the table is full
 *
 * "One attempt" is bg_login_complete with a code from an address that holds none: one counted
 * failure, i.e. one store transaction that reads, applies the rules and writes. (A password
 * attempt adds the hash check, the same on every store and far larger.) The address is reset
 * (untimed) before it would be locked, so the state stays the size a quiet host has.
 *
 *   store_cost flood DIR                8 processes forked after configuring state_dir DIR,
 *                                       each sending 250 wrong passwords from one address
 *
 * The flood needs BREAKGLASS_PASSWORD_HASH (a real argon2id hash). It reports the guesses
 * evaluated in all (must be at most max_attempts, 5), the refusals, the rate, and one worker's
 * resident memory after its first 10 attempts and after all 250.
 * Output: one line per figure, "name value unit".
 */
#define _GNU_SOURCE
#include "breakglass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

#define ATTEMPTS 2000
#define WORKERS 8
#define PER_WORKER 250
#define WARM 10

static void must(const char *key, const char *value) {
  if (bg_configure(key, value) == BG_OK) return;
  char why[256] = "";
  bg_last_error(why, sizeof why);
  fprintf(stderr, "store_cost: %s: %s\n", key, why);
  exit(1);
}

static int attempt(const char *store, const char *arg, int fill) {
  static double lat[ATTEMPTS];
  char token[BG_SESSION_TOKEN_BUF_LEN], ip[64];
  if (strcmp(store, "dir") == 0) must("state_dir", arg);
  else if (strcmp(store, "redis") == 0) {
    must("slot_url", arg);
    must("slot_key", fill ? "bench:store:full" : "bench:store");
  }
  must("allowed_ips", "10.0.0.0/8");
  must("max_attempts", "5");
  /* A flood from `fill` other addresses first: the state holds that many keys. */
  for (int i = 0; i < fill; i++) {
    snprintf(ip, sizeof ip, "10.%d.%d.%d", 1 + i / 62500, i / 250 % 250, i % 250 + 1);
    bg_login_complete(ip, "123456", token, sizeof token);
  }
  int n = fill ? ATTEMPTS / 10 : ATTEMPTS;
  for (int i = 0; i < 100 + n; i++) { /* the first 100 warm up */
    if (i % 4 == 0) bg_reset_attempts("10.0.0.1");
    double t0 = now_ns();
    bg_status st = bg_login_complete("10.0.0.1", "123456", token, sizeof token);
    double dt = now_ns() - t0;
    if (st != BG_NO_PENDING_OTP) {
      fprintf(stderr, "store_cost: unexpected status %s\n", bg_status_str(st));
      return 1;
    }
    if (i >= 100) lat[i - 100] = dt;
  }
  qsort(lat, (size_t)n, sizeof *lat, cmp);
  const char *what = fill ? "_full" : "";
  printf("store_%s%s_attempt_median %.0f ns\n", store, what, lat[n / 2]);
  printf("store_%s%s_attempt_p99 %.0f ns\n", store, what, lat[n * 99 / 100]);
  return 0;
}

static int flood(const char *dir) {
  const char *hash = getenv("BREAKGLASS_PASSWORD_HASH");
  if (!hash) {
    fprintf(stderr, "store_cost flood: BREAKGLASS_PASSWORD_HASH is not set\n");
    return 2;
  }
  must("state_dir", dir);
  must("password_hash", hash);
  must("allowed_ips", "10.0.0.0/8");
  must("max_attempts", "5");
  int fds[WORKERS];
  pid_t pids[WORKERS];
  double t0 = now_ns();
  for (int w = 0; w < WORKERS; w++) {
    int p[2];
    if (pipe(p) != 0) return 1;
    pids[w] = fork();
    if (pids[w] < 0) return 1;
    if (pids[w] == 0) {
      close(p[0]);
      int counts[3] = {0, 0, 0}; /* evaluated, refused, other */
      long before = 0;
      for (int i = 0; i < PER_WORKER; i++) {
        /* Measured once the first attempts have set up what a process sets up once. */
        if (i == WARM) before = rss_kib();
        bg_status st = bg_login_begin("10.0.0.1", "not the password");
        counts[st == BG_WRONG_PASSWORD ? 0 : st == BG_LOCKED_OUT ? 1 : 2]++;
      }
      long after = rss_kib();
      char out[128];
      int n = snprintf(out, sizeof out, "%d %d %d %ld %ld", counts[0], counts[1], counts[2],
                       before, after);
      if (write(p[1], out, (size_t)n) != n) _exit(1);
      _exit(0);
    }
    close(p[1]);
    fds[w] = p[0];
  }
  int evaluated = 0, refused = 0, other = 0;
  long before = 0, after = 0;
  for (int w = 0; w < WORKERS; w++) {
    char in[128] = "";
    ssize_t n = read(fds[w], in, sizeof in - 1);
    close(fds[w]);
    int status = 0;
    waitpid(pids[w], &status, 0);
    int e, r, o;
    long b, a;
    if (n <= 0 || sscanf(in, "%d %d %d %ld %ld", &e, &r, &o, &b, &a) != 5 || status != 0) {
      fprintf(stderr, "store_cost flood: worker %d failed\n", w);
      return 1;
    }
    evaluated += e;
    refused += r;
    other += o;
    if (w == 0) {
      before = b;
      after = a;
    }
  }
  double secs = (now_ns() - t0) / 1e9;
  printf("flood_dir_attempts %d attempts\n", WORKERS * PER_WORKER);
  printf("flood_dir_attempts_per_s %.0f /s\n", WORKERS * PER_WORKER / secs);
  printf("flood_dir_evaluated %d guesses\n", evaluated);
  printf("flood_dir_refused %d attempts\n", refused);
  printf("flood_dir_other %d attempts\n", other);
  printf("flood_dir_rss_before %ld KiB\n", before);
  printf("flood_dir_rss_after %ld KiB\n", after);
  return evaluated <= 5 && other == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  bg_set_logger(NULL, NULL, 0);
  const char *fill_env = getenv("BG_FILL");
  int fill = 0;
  if (argc > 1 && strcmp(argv[1], "attempt-full") == 0) fill = fill_env ? atoi(fill_env) : 10000;
  int is_attempt = argc > 1 && (fill || strcmp(argv[1], "attempt") == 0);
  if (argc == 3 && is_attempt && strcmp(argv[2], "mem") == 0) return attempt("mem", NULL, fill);
  if (argc == 4 && is_attempt) return attempt(argv[2], argv[3], fill);
  if (argc == 3 && strcmp(argv[1], "flood") == 0) return flood(argv[2]);
  fprintf(stderr, "usage: store_cost attempt[-full] mem | attempt[-full] dir DIR | "
                  "attempt[-full] redis URL | flood DIR\n");
  return 2;
}
