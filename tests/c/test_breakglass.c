/*
 * C (and C++) test of the whole libbreakglass C ABI, against the committed header and the
 * built shared library. Exercises every export and every status a C caller can provoke,
 * expiry, fork behaviour, and runs under valgrind memcheck in `make test`.
 */
#include "breakglass.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    checks++;                                                                    \
    if (!(cond)) {                                                               \
      failures++;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                            \
  } while (0)

#define CHECK_STATUS(call, want)                                                 \
  do {                                                                           \
    bg_status got_ = (call);                                                     \
    checks++;                                                                    \
    if (got_ != (want)) {                                                        \
      failures++;                                                                \
      fprintf(stderr, "%s:%d: %s gave %d (%s), wanted %d (%s)\n", __FILE__,      \
              __LINE__, #call, (int)got_, bg_status_str(got_), (int)(want),      \
              bg_status_str(want));                                              \
    }                                                                            \
  } while (0)

static int is_code(const char *s) {
  if (strlen(s) != BG_OTP_LEN) return 0;
  for (int i = 0; i < BG_OTP_LEN; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* A code other than `code`, for the wrong-code cases. */
static void other_code(const char *code, char *out) {
  memcpy(out, code, BG_OTP_BUF_LEN);
  out[0] = (char)(code[0] == '9' ? '0' : code[0] + 1);
}

static void test_generate_and_verify(void) {
  char code[BG_OTP_BUF_LEN];
  char wrong[BG_OTP_BUF_LEN];

  CHECK_STATUS(bg_clear(), BG_OK);
  CHECK_STATUS(bg_verify("123456"), BG_NO_PENDING_OTP);

  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  CHECK(is_code(code));
  CHECK_STATUS(bg_verify(code), BG_OK);
  CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP); /* used once */

  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  other_code(code, wrong);
  CHECK_STATUS(bg_verify(wrong), BG_INVALID);
  CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP); /* a failed verify consumes */

  /* A new code replaces the old one. */
  char first[BG_OTP_BUF_LEN], second[BG_OTP_BUF_LEN];
  CHECK_STATUS(bg_generate(first, sizeof first), BG_OK);
  do {
    CHECK_STATUS(bg_generate(second, sizeof second), BG_OK);
  } while (strcmp(first, second) == 0);
  CHECK_STATUS(bg_verify(first), BG_INVALID);
  CHECK_STATUS(bg_verify(second), BG_NO_PENDING_OTP);

  /* Malformed input is invalid and consumes. */
  const char *malformed[] = {"", "12345", "1234567", " 123456", "12345\n", "abcdef",
                             "\xff\xfe\xfd\xfc\xfb\xfa", "123456789012345678901234567890"};
  for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
    CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
    CHECK_STATUS(bg_verify(malformed[i]), BG_INVALID);
    CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP);
  }

  /* NULL: an error, and it consumes too. */
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  CHECK_STATUS(bg_verify(NULL), BG_ERR_NULL);
  CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP);

  /* bg_clear empties the slot. */
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  CHECK_STATUS(bg_clear(), BG_OK);
  CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP);
}

static void test_generate_bad_buffers(void) {
  char code[BG_OTP_BUF_LEN];
  char small[BG_OTP_BUF_LEN] = "xxxxxx";
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  CHECK_STATUS(bg_generate(NULL, 7), BG_ERR_NULL);
  CHECK_STATUS(bg_generate(small, BG_OTP_BUF_LEN - 1), BG_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS(bg_generate(small, 0), BG_ERR_BUFFER_TOO_SMALL);
  CHECK(strcmp(small, "xxxxxx") == 0);       /* not written */
  CHECK_STATUS(bg_verify(code), BG_OK);      /* the pending code was untouched */
}

static void test_expiry(void) {
  char code[BG_OTP_BUF_LEN];
  CHECK_STATUS(bg_configure("otp_ttl_seconds", "1"), BG_OK);
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  usleep(1100 * 1000);
  CHECK_STATUS(bg_verify(code), BG_EXPIRED); /* expired even though it matches */
  CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", NULL), BG_OK);
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  usleep(1100 * 1000);
  CHECK_STATUS(bg_verify(code), BG_OK); /* the default TTL is back */
}

static void test_configure(void) {
  CHECK_STATUS(bg_configure(NULL, "1"), BG_ERR_NULL);
  CHECK_STATUS(bg_configure("no_such_key", "1"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", "0"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", "86401"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", "ten"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", "\xff"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("\xff", "1"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("from_email", "not an address"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("mailer", "gopher://x"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("dev_otp_log", "maybe"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", "86400"), BG_OK);
  CHECK_STATUS(bg_configure("otp_ttl_seconds", NULL), BG_OK);

  setenv("BREAKGLASS_OTP_TTL_SECONDS", "0", 1);
  CHECK_STATUS(bg_configure_from_env(), BG_ERR_ARGUMENT);
  setenv("BREAKGLASS_OTP_TTL_SECONDS", "30", 1);
  CHECK_STATUS(bg_configure_from_env(), BG_OK);
  unsetenv("BREAKGLASS_OTP_TTL_SECONDS");
  CHECK_STATUS(bg_configure("otp_ttl_seconds", NULL), BG_OK);
}

static void test_strings(void) {
  CHECK(strcmp(bg_version(), BREAKGLASS_VERSION) == 0);
  CHECK(strcmp(bg_status_str(BG_OK), "ok") == 0);
  CHECK(strcmp(bg_status_str(BG_EXPIRED), "expired") == 0);
  CHECK(strcmp(bg_status_str(BG_ERR_BACKEND), "backend error") == 0);
  CHECK(strcmp(bg_status_str(-1), "unknown status") == 0);
  CHECK(strcmp(bg_status_str(12345), "unknown status") == 0);
  CHECK(strcmp(bg_status_str(BG_ERR_AUDIT), "audit failure") == 0);
  for (int s = BG_OK; s <= BG_ERR_AUDIT; s++)
    CHECK(bg_status_str(s) != NULL && strcmp(bg_status_str(s), "unknown status") != 0);
}

/* The idiom the demo uses: print the status's name, then the reason. Neither bg_status_str,
 * bg_version nor a key-table look-up may clear the reason in between. */
static void test_status_str_keeps_the_reason(void) {
  char why[256];
  bg_config_key_info info;
  int st = bg_configure("otp_ttl_seconds", "0");
  CHECK(st == BG_ERR_ARGUMENT);
  const char *name = bg_status_str(st);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  printf("bg_configure: %s: %s\n", name, why);
  CHECK(strstr(why, "otp_ttl_seconds") != NULL);
  CHECK(bg_version() != NULL);
  CHECK(bg_config_key_count() > 0);
  CHECK_STATUS(bg_config_key(0, &info), BG_OK);
  CHECK(bg_status_str(st) != NULL);
  why[0] = '\0';
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(strstr(why, "otp_ttl_seconds") != NULL);
  /* Every non-OK return carries a reason, the argument checks of bg_send_otp and
   * bg_get_stats included. */
  CHECK_STATUS(bg_send_otp(NULL), BG_ERR_NULL);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(why[0] != '\0');
  CHECK_STATUS(bg_get_stats(NULL), BG_ERR_NULL);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(why[0] != '\0');
}

struct log_capture {
  int records;
  int saw_code;
  char code[BG_OTP_BUF_LEN];
};

static void capture(int32_t level, const char *message, void *user_data) {
  struct log_capture *cap = (struct log_capture *)user_data;
  (void)level;
  cap->records++;
  if (cap->code[0] && strstr(message, cap->code)) cap->saw_code = 1;
}

static void test_logger_and_delivery_errors(void) {
  struct log_capture cap;
  memset(&cap, 0, sizeof cap);
  char code[BG_OTP_BUF_LEN];

  CHECK_STATUS(bg_set_logger(capture, &cap, 6), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_set_logger(capture, &cap, 5), BG_OK);
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  memcpy(cap.code, code, sizeof code);

  CHECK_STATUS(bg_send_otp(NULL), BG_ERR_NULL);
  CHECK_STATUS(bg_send_otp("12345"), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_send_otp(code), BG_ERR_NOT_CONFIGURED);
  CHECK(!cap.saw_code); /* dev_otp_log is off */
  CHECK_STATUS(bg_configure("dev_otp_log", "true"), BG_OK);
  CHECK_STATUS(bg_send_otp(code), BG_ERR_NOT_CONFIGURED);
  CHECK(cap.saw_code); /* ... and on: logged even though email is not configured */
  CHECK_STATUS(bg_configure("dev_otp_log", NULL), BG_OK);
  CHECK_STATUS(bg_verify(code), BG_OK);

  /* An alert with no channel configured still returns BG_OK, and says so in the log. */
  int before = cap.records;
  CHECK_STATUS(bg_alert(NULL), BG_OK);
  CHECK_STATUS(bg_alert("198.51.100.7"), BG_OK);
  CHECK(cap.records > before);

  bg_stats stats;
  CHECK_STATUS(bg_get_stats(NULL), BG_ERR_NULL);
  CHECK_STATUS(bg_get_stats(&stats), BG_OK);
  CHECK_STATUS(bg_flush(1000), BG_OK);

  CHECK_STATUS(bg_set_logger(NULL, NULL, 0), BG_OK);
}

/* A listening socket that never accepts: the kernel completes the handshake, and the mail
 * server then never says a word, so the job stays in flight. */
static int stalled_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
    return -1;
  *port = ntohs(addr.sin_port);
  return fd;
}

static void test_flush_timeout_and_queue(void) {
  int port = 0;
  int fd = stalled_listener(&port);
  CHECK(fd >= 0);
  char url[64];
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d?tls=opportunistic", port);
  char code[BG_OTP_BUF_LEN];
  bg_stats before, after;

  CHECK_STATUS(bg_set_logger(NULL, NULL, 0), BG_OK); /* the failures below are expected */
  CHECK_STATUS(bg_get_stats(&before), BG_OK);
  CHECK_STATUS(bg_configure("mailer", url), BG_OK);
  CHECK_STATUS(bg_configure("from_email", "breakglass@example.com"), BG_OK);
  CHECK_STATUS(bg_configure("otp_email", "admin@example.com"), BG_OK);
  CHECK_STATUS(bg_configure("delivery_timeout_ms", "200"), BG_OK);
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  CHECK_STATUS(bg_send_otp(code), BG_OK); /* queued at once, though the server is mute */
  CHECK_STATUS(bg_flush(20), BG_ERR_TIMEOUT);
  CHECK_STATUS(bg_get_stats(&after), BG_OK);
  CHECK(after.queued == before.queued + 1);
  CHECK_STATUS(bg_verify(code), BG_OK); /* the slot does not wait on delivery */
  CHECK_STATUS(bg_flush(30000), BG_OK);  /* three attempts time out, then it fails */
  CHECK_STATUS(bg_get_stats(&after), BG_OK);
  CHECK(after.emails_failed == before.emails_failed + 1);
  close(fd);
  const char *keys[] = {"mailer", "from_email", "otp_email", "delivery_timeout_ms"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) CHECK_STATUS(bg_configure(keys[i], NULL), BG_OK);
}

static void test_backend_errors(void) {
  char code[BG_OTP_BUF_LEN] = "xxxxxx";
  CHECK_STATUS(bg_configure("slot_url", "http://x"), BG_ERR_ARGUMENT);
  /* Nothing listens on port 1: a shared slot that cannot be reached is an error, never a
   * silent fall back to the in-process slot. */
  CHECK_STATUS(bg_configure("slot_url", "redis://127.0.0.1:1"), BG_OK);
  CHECK_STATUS(bg_generate(code, sizeof code), BG_ERR_BACKEND);
  CHECK(strcmp(code, "xxxxxx") == 0);
  CHECK_STATUS(bg_verify("123456"), BG_ERR_BACKEND);
  CHECK_STATUS(bg_clear(), BG_ERR_BACKEND);
  CHECK_STATUS(bg_configure("slot_url", NULL), BG_OK);
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  CHECK_STATUS(bg_verify(code), BG_OK);
}

static void test_fork(void) {
  char code[BG_OTP_BUF_LEN];
  CHECK_STATUS(bg_generate(code, sizeof code), BG_OK);
  pid_t pid = fork();
  if (pid == 0) {
    /* The child starts with an empty slot. */
    int ok = bg_verify(code) == BG_NO_PENDING_OTP;
    char mine[BG_OTP_BUF_LEN];
    ok = ok && bg_generate(mine, sizeof mine) == BG_OK && bg_verify(mine) == BG_OK;
    _exit(ok ? 0 : 1);
  }
  int wstatus = 0;
  CHECK(pid > 0 && waitpid(pid, &wstatus, 0) == pid);
  CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  CHECK_STATUS(bg_verify(code), BG_OK); /* the parent can still use it, once */
  CHECK_STATUS(bg_verify(code), BG_NO_PENDING_OTP);

  /* Codes generated after a fork are independent in parent and child: with a shared
   * generator state they would coincide every time; by chance, once in a million. */
  int same = 0;
  for (int round = 0; round < 20; round++) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid = fork();
    if (pid == 0) {
      char child_code[BG_OTP_BUF_LEN] = {0};
      bg_generate(child_code, sizeof child_code);
      ssize_t n = write(fds[1], child_code, BG_OTP_BUF_LEN);
      _exit(n == BG_OTP_BUF_LEN ? 0 : 1);
    }
    char parent_code[BG_OTP_BUF_LEN], child_code[BG_OTP_BUF_LEN] = {0};
    CHECK_STATUS(bg_generate(parent_code, sizeof parent_code), BG_OK);
    CHECK(read(fds[0], child_code, BG_OTP_BUF_LEN) == BG_OTP_BUF_LEN);
    waitpid(pid, &wstatus, 0);
    close(fds[0]);
    close(fds[1]);
    CHECK(is_code(child_code));
    if (strcmp(parent_code, child_code) == 0) same++;
  }
  CHECK(same <= 1);
  CHECK_STATUS(bg_clear(), BG_OK);
}

/* A log callback that blocks, the first time a delivery thread calls it, until released. */
struct blocker {
  volatile int entered;
  int release_fd; /* read end of a pipe */
};

static void blocking_logger(int32_t level, const char *message, void *user_data) {
  struct blocker *b = (struct blocker *)user_data;
  (void)level;
  if (strstr(message, "accepted") && !b->entered) {
    char c;
    b->entered = 1;
    if (read(b->release_fd, &c, 1) < 0) b->entered = 2;
  }
}

/* fork() must not wait for a log callback in progress on another thread (it may need
 * something the forking thread holds), and the child's logger must work. */
static void test_fork_during_a_log_callback(void) {
  char dir[] = "/tmp/bg-fork-log-XXXXXX";
  char url[64];
  int fds[2];
  struct blocker b;
  CHECK(mkdtemp(dir) != NULL && pipe(fds) == 0);
  b.entered = 0;
  b.release_fd = fds[0];
  snprintf(url, sizeof url, "file://%s", dir);
  CHECK_STATUS(bg_configure("mailer", url), BG_OK);
  CHECK_STATUS(bg_configure("from_email", "bg@example.com"), BG_OK);
  CHECK_STATUS(bg_configure("alert_emails", "ops@example.com"), BG_OK);
  CHECK_STATUS(bg_set_logger(blocking_logger, &b, 3), BG_OK);
  CHECK_STATUS(bg_alert("192.0.2.55"), BG_OK);
  for (int i = 0; i < 1000 && !b.entered; i++) usleep(10 * 1000);
  CHECK(b.entered == 1);

  /* The child reports through a pipe rather than its exit status: under valgrind the child's
   * leak check counts the parent's in-flight delivery (its thread is gone) as lost. */
  int report[2];
  CHECK(pipe(report) == 0);
  alarm(20); /* a deadlocked fork ends the test here, as a failure */
  pid_t pid = fork();
  if (pid == 0) {
    char code[BG_OTP_BUF_LEN];
    int ok = bg_set_logger(NULL, NULL, 0) == BG_OK && bg_generate(code, sizeof code) == BG_OK &&
             bg_verify(code) == BG_OK;
    ssize_t n = write(report[1], ok ? "ok" : "no", 2);
    _exit(n == 2 ? 0 : 1);
  }
  char answer[3] = {0};
  CHECK(pid > 0 && read(report[0], answer, 2) == 2);
  CHECK(strcmp(answer, "ok") == 0);
  CHECK(waitpid(pid, NULL, 0) == pid);
  alarm(0);
  close(report[0]);
  close(report[1]);

  CHECK(write(fds[1], "x", 1) == 1); /* let the callback return */
  CHECK_STATUS(bg_flush(10000), BG_OK);
  CHECK_STATUS(bg_set_logger(NULL, NULL, 0), BG_OK);
  close(fds[0]);
  close(fds[1]);
  const char *keys[] = {"mailer", "from_email", "alert_emails"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) CHECK_STATUS(bg_configure(keys[i], NULL), BG_OK);
}

/* Counts the records that reach it; in a child, only the child's own records count. */
static void counting_logger(int32_t level, const char *message, void *user_data) {
  (void)level;
  (void)message;
  (*(int *)user_data)++;
}

struct setter {
  volatile int stop;
  int *counter;
};

static void *set_logger_in_a_loop(void *arg) {
  struct setter *s = (struct setter *)arg;
  while (!s->stop) bg_set_logger(counting_logger, s->counter, 2);
  return NULL;
}

/* A fork while another thread is inside bg_set_logger (holding or waiting for its lock) must
 * leave the child with the host's callback, never fall back to stderr. */
static void test_fork_while_another_thread_sets_the_logger(void) {
  enum { FORKS = 200 };
  static int counter;
  struct setter s;
  pthread_t thread;
  int kept = 0, reported = 0;
  s.stop = 0;
  s.counter = &counter;
  CHECK_STATUS(bg_set_logger(counting_logger, &counter, 2), BG_OK);
  CHECK(pthread_create(&thread, NULL, set_logger_in_a_loop, &s) == 0);
  for (int i = 0; i < FORKS; i++) {
    int report[2];
    if (pipe(report) != 0) break;
    pid_t pid = fork();
    if (pid == 0) {
      /* A refused setting logs a warning; it must reach the callback. The answer goes through
       * a pipe: under valgrind a child's exit status also carries its leak check. */
      counter = 0;
      bg_configure("otp_ttl_seconds", "0");
      ssize_t n = write(report[1], counter > 0 ? "y" : "n", 1);
      _exit(n == 1 ? 0 : 1);
    }
    char answer = 0;
    if (pid > 0 && read(report[0], &answer, 1) == 1) {
      reported++;
      if (answer == 'y') kept++;
    }
    if (pid > 0) waitpid(pid, NULL, 0);
    close(report[0]);
    close(report[1]);
  }
  s.stop = 1;
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(reported == FORKS);
  CHECK(kept == FORKS);
  if (kept != FORKS) fprintf(stderr, "%d of %d children lost the log callback\n", FORKS - kept, FORKS);
  CHECK_STATUS(bg_set_logger(NULL, NULL, 0), BG_OK);
}

/* The login flow from C: a file outbox carries the code; the token comes back in a
 * caller-owned buffer; every denial has its status and its reason. */
static void read_code_from(const char *dir, char *code) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "grep -ho 'one-time code is: [0-9]*' %s/*.eml | tail -1 | cut -c19-24", dir);
  FILE *p = popen(cmd, "r");
  code[0] = 0;
  if (p) {
    if (!fgets(code, BG_OTP_BUF_LEN, p)) code[0] = 0;
    pclose(p);
  }
}

/* The whole of a small file, NUL-terminated, or "" when it cannot be read. */
static void slurp(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  size_t n = 0;
  if (f) {
    n = fread(buf, 1, len - 1, f);
    fclose(f);
  }
  buf[n] = 0;
}

static void test_login(void) {
  char dir[] = "/tmp/bg-c-login-XXXXXX", url[300], code[BG_OTP_BUF_LEN], cmd[320];
  char audit[320], trail[16384];
  char token[BG_SESSION_TOKEN_BUF_LEN], why[256];
  uint32_t left = 99;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(url, sizeof url, "file://%s", dir);
  CHECK_STATUS(bg_configure("mailer", url), BG_OK);
  CHECK_STATUS(bg_configure("from_email", "bg@example.com"), BG_OK);
  CHECK_STATUS(bg_configure("otp_email", "oncall@example.com"), BG_OK);
  /* bcrypt, cost 4 (fast for a test), of "correct horse". */
  CHECK_STATUS(bg_configure("password_hash",
                            "$2b$04$yUBCyfGraBusVpGw0SNl7uamWW6f95K6JOgURFT3ZzI.xkfZpq2UC"),
               BG_OK);
  CHECK_STATUS(bg_configure("allowed_ips", "192.0.2.0/24"), BG_OK);
  snprintf(audit, sizeof audit, "%s/audit.log", dir);
  CHECK_STATUS(bg_configure("audit_log", audit), BG_OK);
  CHECK_STATUS(bg_login_begin("203.0.113.1", "correct horse"), BG_IP_NOT_ALLOWED);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(strstr(why, "allowed_ips") != NULL);
  CHECK_STATUS(bg_login_begin("192.0.2.7", "wrong horse"), BG_WRONG_PASSWORD);
  CHECK_STATUS(bg_attempts_left("192.0.2.7", &left), BG_OK);
  CHECK(left == 4);
  CHECK_STATUS(bg_login_begin("192.0.2.7", "correct horse"), BG_OK);
  CHECK_STATUS(bg_flush(10000), BG_OK);
  read_code_from(dir, code);
  CHECK(is_code(code));
  CHECK_STATUS(bg_login_complete("192.0.2.7", code, token, 8), BG_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS(bg_login_complete("192.0.2.7", code, token, sizeof token), BG_OK);
  CHECK(strlen(token) == BG_SESSION_TOKEN_BUF_LEN - 1);
  CHECK_STATUS(bg_session_check(token), BG_OK);
  CHECK_STATUS(bg_session_end(token), BG_OK);
  CHECK_STATUS(bg_session_check(token), BG_NO_SESSION);
  CHECK_STATUS(bg_session_check(NULL), BG_ERR_NULL);
  CHECK(strcmp(bg_status_str(BG_LOCKED_OUT), "locked out") == 0);
  /* The audit trail has the login, and neither the code, the password nor the token. */
  slurp(audit, trail, sizeof trail);
  CHECK(strstr(trail, "\"event\":\"login_succeeded\"") != NULL);
  CHECK(strstr(trail, "\"event\":\"session_ended\"") != NULL);
  /* A code leak would start a value or a word; six digits inside a mac, an id or the
   * microseconds of a time are chance. */
  snprintf(cmd, sizeof cmd, "\"%s", code);
  CHECK(strstr(trail, cmd) == NULL);
  snprintf(cmd, sizeof cmd, " %s", code);
  CHECK(strstr(trail, cmd) == NULL);
  CHECK(strstr(trail, token) == NULL);
  CHECK(strstr(trail, "correct horse") == NULL);
  /* A success that cannot be recorded is refused while audit_required is on (the default):
   * the audit file is replaced by a directory, which nothing can append to. */
  snprintf(cmd, sizeof cmd, "rm -f %s/audit.log && mkdir %s/audit.log", dir, dir);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "rm -f %s/*.eml", dir);
  CHECK(system(cmd) == 0);
  CHECK_STATUS(bg_login_begin("192.0.2.7", "correct horse"), BG_OK);
  CHECK_STATUS(bg_flush(10000), BG_OK);
  read_code_from(dir, code);
  CHECK(is_code(code));
  CHECK_STATUS(bg_login_complete("192.0.2.7", code, token, sizeof token), BG_ERR_AUDIT);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(strstr(why, "audit_log") != NULL);
  CHECK_STATUS(bg_login_complete("192.0.2.7", code, token, sizeof token), BG_NO_PENDING_OTP);
  CHECK_STATUS(bg_flush(10000), BG_OK); /* nothing of this test is still being delivered */
  const char *keys[] = {"mailer", "from_email", "otp_email", "password_hash", "allowed_ips",
                        "audit_log"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) bg_configure(keys[i], NULL);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

static void test_key_table(void) {
  bg_config_key_info info;
  size_t n = bg_config_key_count();
  int found = 0;
  CHECK(n >= 19);
  for (size_t i = 0; i < n; i++) {
    CHECK_STATUS(bg_config_key(i, &info), BG_OK);
    if (strcmp(info.name, "max_attempts") == 0) {
      found = 1;
      CHECK(strcmp(info.kind, "integer") == 0 && strcmp(info.default_value, "5") == 0);
      CHECK(info.min == 1 && info.max == 1000);
    }
  }
  CHECK(found);
  CHECK_STATUS(bg_config_key(n, &info), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_config_key(0, NULL), BG_ERR_NULL);
}

struct drill_lines {
  int calls;
  int32_t outcome;
  char channel[128];
  char detail[256];
};

static void drill_line(const char *channel, int32_t outcome, const char *detail, void *user_data) {
  struct drill_lines *d = (struct drill_lines *)user_data;
  d->calls++;
  d->outcome = outcome;
  snprintf(d->channel, sizeof d->channel, "%s", channel);
  snprintf(d->detail, sizeof d->detail, "%s", detail);
}

/* The drill's report reaches C through the callback with nothing to free; no channel is
   BG_ERR_NOT_CONFIGURED without a call; a receiver nothing listens on is unreachable. */
static void test_drill(void) {
  struct drill_lines d;
  memset(&d, 0, sizeof d);
  CHECK(bg_drill(0, drill_line, &d) == BG_ERR_NOT_CONFIGURED);
  CHECK(d.calls == 0);
  CHECK(bg_configure("alert_webhook_url", "http://127.0.0.1:1/hook") == BG_OK);
  CHECK(bg_configure("delivery_timeout_ms", "1000") == BG_OK);
  CHECK(bg_drill(0, drill_line, &d) == BG_DRILL_FAILED);
  CHECK(d.calls == 1);
  CHECK(d.outcome == BG_DRILL_UNREACHABLE);
  CHECK(strcmp(d.channel, "webhook json http://127.0.0.1:1") == 0);
  CHECK(d.detail[0] != '\0');
  CHECK(bg_drill(0, NULL, NULL) == BG_DRILL_FAILED); /* no callback: the status alone */
  CHECK(strcmp(bg_status_str(BG_DRILL_FAILED), "drill failed") == 0);
  CHECK(bg_configure("alert_webhook_url", NULL) == BG_OK);
  CHECK(bg_configure("delivery_timeout_ms", NULL) == BG_OK);
}

/* bg_hash_password makes a hash the login flow accepts, and checks its arguments. */
static void test_hash_password(void) {
  char hash[BG_PASSWORD_HASH_BUF_LEN], small[BG_PASSWORD_HASH_BUF_LEN - 1], why[256];
  CHECK_STATUS(bg_hash_password("correct horse", hash, sizeof hash), BG_OK);
  CHECK(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
  CHECK(strlen(hash) < sizeof hash);
  CHECK_STATUS(bg_configure("password_hash", hash), BG_OK);
  CHECK_STATUS(bg_configure("password_hash", NULL), BG_OK);
  CHECK_STATUS(bg_hash_password("correct horse", small, sizeof small), BG_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(strstr(why, "BG_PASSWORD_HASH_BUF_LEN") != NULL);
  CHECK_STATUS(bg_hash_password(NULL, hash, sizeof hash), BG_ERR_NULL);
  CHECK_STATUS(bg_hash_password("x", NULL, sizeof hash), BG_ERR_NULL);
  CHECK_STATUS(bg_hash_password("", hash, sizeof hash), BG_ERR_ARGUMENT);
  CHECK_STATUS(bg_last_error(why, sizeof why), BG_OK);
  CHECK(strstr(why, "empty") != NULL && strstr(why, "correct") == NULL);
}

int main(void) {
  test_strings();
  test_hash_password();
  test_status_str_keeps_the_reason();
  test_key_table();
  test_generate_and_verify();
  test_generate_bad_buffers();
  test_configure();
  test_expiry();
  test_logger_and_delivery_errors();
  test_backend_errors();
  test_fork();
  test_fork_during_a_log_callback();
  test_fork_while_another_thread_sets_the_logger();
  /* After the fork tests: it starts the delivery threads, which a forked child (under
   * valgrind) would report as lost. */
  test_login();
  test_drill();
  test_flush_timeout_and_queue();
  printf("c: %d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
