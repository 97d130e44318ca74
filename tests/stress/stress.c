/*
 * Stress test of libbreakglass's C ABI: 8 threads mix bg_generate, bg_verify, bg_clear,
 * bg_configure, bg_send_otp and bg_alert for a bounded time against a file:// outbox in a
 * temporary directory, then check the invariants:
 *
 *   - no issued code is ever verified OK twice (each successful bg_generate gets a generation
 *     number; an OK marks that generation; a second OK for the same generation fails, unless
 *     the same six digits were also issued under another generation: a 1-in-10^6 collision
 *     that is counted, not failed);
 *   - at most one OK per successful bg_generate overall;
 *   - every call returns a status it is documented to return;
 *   - bg_flush returns BG_OK within a generous timeout once the threads stop;
 *   - the counters add up: queued + dropped == bg_send_otp calls that returned BG_OK or
 *     BG_ERR_QUEUE_FULL + bg_alert calls (each had a channel); dropped >= the QUEUE_FULL
 *     results; emails_sent + emails_failed == one per queued code email + one per recipient
 *     of each queued alert; emails_failed == 0 (the outbox is a local directory).
 *
 * Usage: stress [seconds] (default 3; also STRESS_SECONDS). Prints `stress: N passed, M failed`
 * and exits non-zero on any failure.
 */
#define _GNU_SOURCE
#include "breakglass.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define MAX_GENS (1u << 22)        /* generations tracked; past this, threads stop generating */
#define DELIVERY_BUDGET 20000      /* bg_send_otp + bg_alert calls, to bound the outbox size */
#define ALERT_RECIPIENTS 2

static atomic_long passed;
static atomic_long failed;

#define CHECK(cond, ...)                                                         \
  do {                                                                           \
    if (cond) {                                                                  \
      atomic_fetch_add_explicit(&passed, 1, memory_order_relaxed);               \
    } else {                                                                     \
      atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);               \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
      fprintf(stderr, __VA_ARGS__);                                              \
      fputc('\n', stderr);                                                       \
    }                                                                            \
  } while (0)

/* Every issued code by generation number, and whether that generation was verified OK. */
static uint32_t *gen_code;
static atomic_uchar *gen_ok;
static atomic_uint_fast64_t next_gen = 1;   /* generation 0 is never issued */
/* The most recently published (generation << 20 | code); 0 when none yet. */
static atomic_uint_fast64_t board;

static atomic_long generated_ok, verified_ok, collisions;
static atomic_long otp_ok, otp_full, alerts_called;
static atomic_long delivery_budget = DELIVERY_BUDGET;
static atomic_int stop;

struct counts {
  long ops[8];
};

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static int is_code(const char *s) {
  if (strlen(s) != BG_OTP_LEN) return 0;
  for (int i = 0; i < BG_OTP_LEN; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int is_verify_status(bg_status st) {
  return st == BG_OK || st == BG_INVALID || st == BG_EXPIRED || st == BG_NO_PENDING_OTP;
}

static void code_text(uint32_t code, char out[BG_OTP_BUF_LEN]) {
  code %= 1000000u;
  for (int i = BG_OTP_LEN - 1; i >= 0; i--) {
    out[i] = (char)('0' + code % 10u);
    code /= 10u;
  }
  out[BG_OTP_LEN] = '\0';
}

/* Was `code` issued under any generation other than `gen`? (Only asked after a double OK.) */
static int issued_twice(uint32_t code, uint64_t gen) {
  uint64_t n = atomic_load(&next_gen);
  if (n > MAX_GENS) n = MAX_GENS;
  for (uint64_t g = 1; g < n; g++)
    if (g != gen && gen_code[g] == code) return 1;
  return 0;
}

static void do_generate(char last[BG_OTP_BUF_LEN]) {
  char code[BG_OTP_BUF_LEN];
  bg_status st = bg_generate(code, sizeof code);
  CHECK(st == BG_OK, "bg_generate gave %d (%s)", (int)st, bg_status_str(st));
  if (st != BG_OK) return;
  CHECK(is_code(code), "bg_generate wrote \"%s\"", code);
  atomic_fetch_add(&generated_ok, 1);
  uint64_t gen = atomic_fetch_add(&next_gen, 1);
  if (gen >= MAX_GENS) return;
  uint32_t value = (uint32_t)strtoul(code, NULL, 10);
  gen_code[gen] = value;
  /* Publish: a release store, so a reader that sees `gen` also sees gen_code[gen]. */
  atomic_store_explicit(&board, (gen << 20) | value, memory_order_release);
  memcpy(last, code, BG_OTP_BUF_LEN);
}

static void do_verify_board(void) {
  uint64_t b = atomic_load_explicit(&board, memory_order_acquire);
  if (b == 0) return;
  uint64_t gen = b >> 20;
  uint32_t value = (uint32_t)(b & 0xFFFFF);
  char code[BG_OTP_BUF_LEN];
  code_text(value, code);
  bg_status st = bg_verify(code);
  CHECK(is_verify_status(st), "bg_verify gave %d (%s)", (int)st, bg_status_str(st));
  if (st != BG_OK) return;
  atomic_fetch_add(&verified_ok, 1);
  if (atomic_exchange(&gen_ok[gen], 1) != 0) {
    if (issued_twice(value, gen)) {
      atomic_fetch_add(&collisions, 1);
    } else {
      CHECK(0, "code %s (generation %llu) was verified OK twice", code,
            (unsigned long long)gen);
    }
  }
}

static void do_verify_bad(uint64_t *rng) {
  static const char *const malformed[] = {"", "12345", "1234567", " 123456", "12345\n",
                                          "abcdef", "\xff\xfe\xfd\xfc\xfb\xfa",
                                          "123456789012345678901234567890"};
  uint64_t r = xorshift(rng);
  bg_status st;
  if (r % 4 == 0) {
    st = bg_verify(NULL);
    CHECK(st == BG_ERR_NULL, "bg_verify(NULL) gave %d (%s)", (int)st, bg_status_str(st));
    return;
  }
  const char *input = malformed[(r >> 8) % (sizeof malformed / sizeof *malformed)];
  st = bg_verify(input);
  /* Malformed input can never match: anything but OK, and a verify status. */
  CHECK(st == BG_INVALID || st == BG_EXPIRED || st == BG_NO_PENDING_OTP,
        "bg_verify(malformed) gave %d (%s)", (int)st, bg_status_str(st));
}

static void do_configure(uint64_t *rng) {
  static const char *const ttls[] = {"1", "2", "60", "600", "86400"};
  static const char *const timeouts[] = {"1000", "5000", "10000", "30000"};
  uint64_t r = xorshift(rng);
  bg_status st;
  switch (r % 4) {
    case 0:
      st = bg_configure("otp_ttl_seconds", ttls[(r >> 8) % 5]);
      break;
    case 1:
      st = bg_configure("delivery_timeout_ms", timeouts[(r >> 8) % 4]);
      break;
    case 2:
      st = bg_configure("otp_ttl_seconds", NULL);
      break;
    default:
      st = bg_configure("otp_ttl_seconds", (r >> 8) % 2 ? "0" : "86401");
      CHECK(st == BG_ERR_ARGUMENT, "bad otp_ttl_seconds gave %d (%s)", (int)st,
            bg_status_str(st));
      return;
  }
  CHECK(st == BG_OK, "bg_configure gave %d (%s)", (int)st, bg_status_str(st));
}

static struct timespec started;
static double run_seconds;

/* Spreads the delivery budget over the run, so deliveries overlap every other operation
 * instead of all landing (and mostly being dropped) in the first moments. */
static int take_budget(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  double elapsed = (double)(now.tv_sec - started.tv_sec) + (double)(now.tv_nsec - started.tv_nsec) / 1e9;
  long allowed = (long)(DELIVERY_BUDGET * (elapsed / run_seconds));
  if (DELIVERY_BUDGET - atomic_load(&delivery_budget) >= allowed) return 0;
  return atomic_fetch_sub(&delivery_budget, 1) > 0;
}

static void do_send_otp(const char last[BG_OTP_BUF_LEN]) {
  if (!is_code(last) || !take_budget()) return;
  bg_status st = bg_send_otp(last);
  CHECK(st == BG_OK || st == BG_ERR_QUEUE_FULL, "bg_send_otp gave %d (%s)", (int)st,
        bg_status_str(st));
  if (st == BG_OK) atomic_fetch_add(&otp_ok, 1);
  if (st == BG_ERR_QUEUE_FULL) atomic_fetch_add(&otp_full, 1);
}

static void do_alert(uint64_t *rng) {
  if (!take_budget()) return;
  static const char *const ips[] = {"192.0.2.1", "2001:db8::1", "10.0.0.1\r\nBcc: x@evil",
                                    "\xff\xfe", ""};
  uint64_t r = xorshift(rng);
  bg_status st = (r % 8 == 0) ? bg_alert(NULL) : bg_alert(ips[(r >> 8) % 5]);
  CHECK(st == BG_OK, "bg_alert gave %d (%s)", (int)st, bg_status_str(st));
  atomic_fetch_add(&alerts_called, 1);
}

static void *worker(void *arg) {
  uint64_t rng = 0x9E3779B97F4A7C15ull * ((uint64_t)(uintptr_t)arg + 1);
  char last[BG_OTP_BUF_LEN] = "";
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    unsigned r = (unsigned)(xorshift(&rng) % 100);
    if (r < 30) {
      if (atomic_load(&next_gen) < MAX_GENS) do_generate(last);
    } else if (r < 62) {
      do_verify_board();
    } else if (r < 70) {
      do_verify_bad(&rng);
    } else if (r < 74) {
      bg_status st = bg_clear();
      CHECK(st == BG_OK, "bg_clear gave %d (%s)", (int)st, bg_status_str(st));
    } else if (r < 77) {
      do_configure(&rng);
    } else if (r < 88) {
      do_send_otp(last);
    } else {
      do_alert(&rng);
    }
  }
  return NULL;
}

static void quiet_logger(int32_t level, const char *message, void *user_data) {
  (void)message;
  atomic_long *errors = user_data;
  if (level == 1) atomic_fetch_add(errors, 1);
}

static atomic_long error_logs;

int main(int argc, char **argv) {
  double seconds = 3.0;
  const char *env = getenv("STRESS_SECONDS");
  if (argc > 1) seconds = atof(argv[1]);
  else if (env) seconds = atof(env);
  if (seconds <= 0) seconds = 3.0;

  gen_code = calloc(MAX_GENS, sizeof *gen_code);
  gen_ok = calloc(MAX_GENS, sizeof *gen_ok);
  if (!gen_code || !gen_ok) {
    fprintf(stderr, "stress: out of memory\n");
    return 2;
  }

  char dir[] = "/tmp/bg-stress-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  char url[sizeof dir + 16];
  snprintf(url, sizeof url, "file://%s", dir);

  /* Error-level records are counted, not printed: a full queue logs one each second. */
  CHECK(bg_set_logger(quiet_logger, &error_logs, 1) == BG_OK, "bg_set_logger");
  CHECK(bg_configure("mailer", url) == BG_OK, "mailer %s", url);
  CHECK(bg_configure("from_email", "Break Glass <bg@example.com>") == BG_OK, "from_email");
  CHECK(bg_configure("otp_email", "admin@example.com") == BG_OK, "otp_email");
  CHECK(bg_configure("alert_emails", "ops@example.com, sec@example.com") == BG_OK,
        "alert_emails");
  /* STRESS_SLOT_URL runs the same mix against the shared slot (run.sh starts a Redis). */
  const char *slot = getenv("STRESS_SLOT_URL");
  if (slot) CHECK(bg_configure("slot_url", slot) == BG_OK, "slot_url");

  bg_stats before, after;
  CHECK(bg_get_stats(&before) == BG_OK, "bg_get_stats");

  pthread_t threads[THREADS];
  run_seconds = seconds;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &started);
  for (uintptr_t i = 0; i < THREADS; i++)
    if (pthread_create(&threads[i], NULL, worker, (void *)i) != 0) {
      perror("pthread_create");
      return 2;
    }
  struct timespec nap = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&nap, NULL);
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  bg_status fl = bg_flush(60000);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double flush_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  CHECK(fl == BG_OK, "bg_flush(60000) gave %d (%s) after %.0f ms", (int)fl, bg_status_str(fl),
        flush_ms);
  CHECK(bg_get_stats(&after) == BG_OK, "bg_get_stats");

  long gens = atomic_load(&generated_ok), oks = atomic_load(&verified_ok);
  long sent_ok = atomic_load(&otp_ok), sent_full = atomic_load(&otp_full);
  long alerts = atomic_load(&alerts_called);
  uint64_t queued = after.queued - before.queued;
  uint64_t dropped = after.dropped - before.dropped;
  uint64_t emails = (after.emails_sent - before.emails_sent) +
                    (after.emails_failed - before.emails_failed);

  CHECK(oks <= gens, "%ld OK verifies for %ld codes issued", oks, gens);
  CHECK(oks > 0, "no verify ever succeeded (%ld codes issued)", gens);
  CHECK(queued + dropped == (uint64_t)(sent_ok + sent_full + alerts),
        "queued %llu + dropped %llu != send_otp OK %ld + QUEUE_FULL %ld + alerts %ld",
        (unsigned long long)queued, (unsigned long long)dropped, sent_ok, sent_full, alerts);
  CHECK(dropped >= (uint64_t)sent_full, "dropped %llu < QUEUE_FULL results %ld",
        (unsigned long long)dropped, sent_full);
  CHECK(queued >= (uint64_t)sent_ok, "queued %llu < send_otp OK %ld",
        (unsigned long long)queued, sent_ok);
  uint64_t alerts_queued = queued - (uint64_t)sent_ok;
  uint64_t expected = (uint64_t)sent_ok + ALERT_RECIPIENTS * alerts_queued;
  CHECK(emails == expected,
        "emails_sent + emails_failed = %llu, expected %llu (%ld code emails + %d x %llu alerts)",
        (unsigned long long)emails, (unsigned long long)expected, sent_ok, ALERT_RECIPIENTS,
        (unsigned long long)alerts_queued);
  CHECK(after.emails_failed == before.emails_failed, "%llu emails failed on a local outbox",
        (unsigned long long)(after.emails_failed - before.emails_failed));
  CHECK(after.webhooks_sent == before.webhooks_sent &&
            after.webhooks_failed == before.webhooks_failed,
        "webhook counters moved without a webhook configured");

  /* The library is still usable: one clean round trip. */
  char code[BG_OTP_BUF_LEN];
  CHECK(bg_configure("otp_ttl_seconds", NULL) == BG_OK, "reset ttl");
  CHECK(bg_generate(code, sizeof code) == BG_OK, "final generate");
  CHECK(bg_verify(code) == BG_OK, "final verify");
  CHECK(bg_verify(code) == BG_NO_PENDING_OTP, "final verify twice");
  CHECK(bg_set_logger(NULL, NULL, 2) == BG_OK, "restore logger");

  printf("stress: %d threads, %.1f s: %ld codes issued, %ld verified OK (%ld digit collisions),"
         " %ld send_otp OK, %ld QUEUE_FULL, %ld alerts; queued %llu, dropped %llu, emails %llu,"
         " flush %.0f ms\n",
         THREADS, seconds, gens, oks, atomic_load(&collisions), sent_ok, sent_full, alerts,
         (unsigned long long)queued, (unsigned long long)dropped, (unsigned long long)emails,
         flush_ms);

  /* Remove the outbox. */
  char cmd[sizeof dir + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "stress: could not remove %s\n", dir);
  free(gen_code);
  free(gen_ok);

  long p = atomic_load(&passed), f = atomic_load(&failed);
  printf("stress: %ld passed, %ld failed\n", p, f);
  return f == 0 ? 0 : 1;
}
