/*
 * Caller-side cost of libbreakglass's delivery calls from C, against bgserve.py.
 *   delivery latency SMTP_PORT HTTP_PORT N   per-call latency of bg_alert and bg_send_otp
 *                                            (servers stalled/hanging): p50, p99, max
 *   delivery flood SMTP_PORT HTTP_PORT N     N bg_alert calls: calls/s, RSS growth, threads,
 *                                            dropped
 * Output: one line per figure, "name value unit", for benches/run.sh.
 */
#define _GNU_SOURCE
#include "breakglass.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timing.h"

static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') v = atol(line + n + 1);
  if (f) fclose(f);
  return v;
}

static int task_count(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static void configure(int smtp, int http) {
  char url[128];
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d?tls=opportunistic", smtp);
  if (bg_configure("mailer", url) != BG_OK) abort();
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", http);
  if (bg_configure("alert_webhook_url", url) != BG_OK) abort();
  if (bg_configure("from_email", "bg@example.com") != BG_OK) abort();
  if (bg_configure("otp_email", "admin@example.com") != BG_OK) abort();
  if (bg_configure("alert_emails", "ops@example.com") != BG_OK) abort();
  bg_set_logger(NULL, NULL, 0); /* a full queue logs errors; keep the output clean */
}

static void summary(const char *name, double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  printf("%s_p50 %.2f us\n", name, v[n / 2] / 1e3);
  printf("%s_p99 %.2f us\n", name, v[(int)(n * 0.99)] / 1e3);
  printf("%s_max %.2f us\n", name, v[n - 1] / 1e3);
}

static void latency(int n) {
  double *a = calloc((size_t)n, sizeof *a), *o = calloc((size_t)n, sizeof *o);
  char code[BG_OTP_BUF_LEN];
  bg_generate(code, sizeof code);
  bg_stats before, after;
  bg_get_stats(&before);
  for (int i = 0; i < n; i++) { /* interleaved, so both see the same queue state */
    double t0 = now_ns();
    bg_alert("203.0.113.7");
    a[i] = now_ns() - t0;
    t0 = now_ns();
    bg_send_otp(code);
    o[i] = now_ns() - t0;
  }
  bg_get_stats(&after);
  summary("c_alert", a, n);
  summary("c_send_otp", o, n);
  printf("c_latency_calls %d calls\n", n);
  printf("c_latency_queued %llu jobs\n", (unsigned long long)(after.queued - before.queued));
  printf("c_latency_dropped %llu jobs\n", (unsigned long long)(after.dropped - before.dropped));
  free(a);
  free(o);
}

static void flood(int n) {
  int threads0 = task_count();
  long rss0 = status_kb("VmRSS");
  bg_stats before, after;
  bg_get_stats(&before);
  double t0 = now_ns();
  for (int i = 0; i < n; i++) bg_alert("198.51.100.23");
  double el = now_ns() - t0;
  bg_get_stats(&after);
  printf("c_flood_calls %d calls\n", n);
  printf("c_flood_rate %.0f calls/s\n", n / (el / 1e9));
  printf("c_flood_rss_growth %.2f MB\n", (double)(status_kb("VmHWM") - rss0) / 1024.0);
  printf("c_flood_library_threads %d threads\n", task_count() - threads0);
  printf("c_flood_queued %llu jobs\n", (unsigned long long)(after.queued - before.queued));
  printf("c_flood_dropped %llu jobs\n", (unsigned long long)(after.dropped - before.dropped));
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: delivery latency|flood SMTP_PORT HTTP_PORT N\n");
    return 2;
  }
  configure(atoi(argv[2]), atoi(argv[3]));
  int n = atoi(argv[4]);
  if (n < 1) return 2;
  if (strcmp(argv[1], "latency") == 0) latency(n);
  else if (strcmp(argv[1], "flood") == 0) flood(n);
  else return 2;
  fflush(stdout);
  /* The workers are still blocked on the stalled servers: leave without waiting. */
  _Exit(0);
}
