/*
 * libbreakglass demo: the main job end to end, on a file outbox.
 *
 * Configures the library (a file:// outbox for mail, and whatever BREAKGLASS_* variables the
 * environment sets: the password hash, the allow-list and the webhook URL the demo runner
 * provides), then runs the whole emergency login (a wrong password, the right one, the code
 * read back from the outbox, the session), then the single-call primitives with every verify
 * outcome, raises the alarm, flushes, and reports.
 */
#include "breakglass.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int show(const char *what, bg_status status) {
  printf("  %-46s -> %s\n", what, bg_status_str(status));
  return status;
}

static void log_line(int32_t level, const char *message, void *user_data) {
  (void)user_data;
  static const char *names[] = {"", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
  printf("  [library %s] %s\n", (level >= 1 && level <= 5) ? names[level] : "?", message);
}

/* The code in a code email of `outbox` that is not `not_this` (the demo reads the outbox as
 * the on-call person reads their mail). */
static int code_from_outbox(const char *outbox, const char *not_this, char *code) {
  DIR *d = opendir(outbox);
  struct dirent *e;
  char path[4096], line[512];
  int found = 0;
  while (d && !found && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", outbox, e->d_name);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
      char *at = strstr(line, "one-time code is: ");
      if (at && strncmp(at + 18, not_this, BG_OTP_LEN) != 0) {
        memcpy(code, at + 18, BG_OTP_LEN);
        code[BG_OTP_LEN] = 0;
        found = 1;
        break;
      }
    }
    if (f) fclose(f);
  }
  if (d) closedir(d);
  return found;
}

static int login(const char *outbox) {
  const char *password = getenv("BREAKGLASS_DEMO_PASSWORD");
  char code[BG_OTP_BUF_LEN] = "", token[BG_SESSION_TOKEN_BUF_LEN], why[256];
  uint32_t left = 0;
  int bad = 0;
  if (!password) {
    printf("  (BREAKGLASS_DEMO_PASSWORD is not set: skipping the login flow)\n");
    return 0;
  }
  bad |= show("bg_login_begin(\"198.51.100.1\", the password)",
              bg_login_begin("198.51.100.1", password)) != BG_IP_NOT_ALLOWED;
  bg_last_error(why, sizeof why);
  printf("  %-46s    (%s)\n", "", why);
  bad |= show("bg_login_begin(\"203.0.113.7\", \"wrong\")", bg_login_begin("203.0.113.7", "wrong")) !=
         BG_WRONG_PASSWORD;
  bg_attempts_left("203.0.113.7", &left);
  printf("  %-46s    (attempts left for 203.0.113.7: %u)\n", "", (unsigned)left);
  bad |= show("bg_login_begin(\"203.0.113.7\", the password)", bg_login_begin("203.0.113.7", password)) !=
         BG_OK;
  bg_flush(15000);
  if (!code_from_outbox(outbox, "------", code)) {
    printf("  no code email in the outbox\n");
    return 1;
  }
  printf("  (the code in the outbox is %s)\n", code);
  bad |= show("bg_login_complete(\"203.0.113.7\", the code)",
              bg_login_complete("203.0.113.7", code, token, sizeof token)) != BG_OK;
  bad |= show("bg_session_check(the token)", bg_session_check(token)) != BG_OK;
  bad |= show("bg_session_end(the token)", bg_session_end(token)) != BG_OK;
  bad |= show("bg_session_check(the token, after the end)", bg_session_check(token)) != BG_NO_SESSION;
  return bad;
}

int main(void) {
  const char *outbox = getenv("BREAKGLASS_DEMO_OUTBOX");
  char mailer[4096];
  char code[BG_OTP_BUF_LEN];
  char wrong[BG_OTP_BUF_LEN];
  int bad = 0;

  if (!outbox) {
    fprintf(stderr, "set BREAKGLASS_DEMO_OUTBOX to a directory (make demo does)\n");
    return 2;
  }
  printf("libbreakglass %s demo\n\n", bg_version());
  bg_set_logger(log_line, NULL, 3);

  printf("configure:\n");
  snprintf(mailer, sizeof mailer, "file://%s", outbox);
  bad |= show("mailer = file://<outbox>", bg_configure("mailer", mailer)) != BG_OK;
  bad |= show("from_email", bg_configure("from_email", "Break Glass <breakglass@example.com>")) != BG_OK;
  bad |= show("otp_email", bg_configure("otp_email", "oncall-admin@example.com")) != BG_OK;
  bad |= show("alert_emails", bg_configure("alert_emails", "security@example.com, sre-lead@example.com")) != BG_OK;
  bad |= show("BREAKGLASS_* from the environment", bg_configure_from_env()) != BG_OK;

  printf("\nthe whole emergency login:\n");
  bad |= login(outbox);

  printf("\nthe single-call primitives: issue a code and email it:\n");
  bad |= show("bg_generate", bg_generate(code, sizeof code)) != BG_OK;
  printf("  (the code is %s; it is in the outbox too)\n", code);
  bad |= show("bg_send_otp", bg_send_otp(code)) != BG_OK;

  printf("\nverify outcomes:\n");
  bad |= show("bg_verify(the emailed code)", bg_verify(code)) != BG_OK;
  bad |= show("bg_verify(the same code again)", bg_verify(code)) != BG_NO_PENDING_OTP;
  bg_generate(code, sizeof code);
  memcpy(wrong, code, sizeof code);
  wrong[5] = (char)(code[5] == '9' ? '0' : code[5] + 1);
  bad |= show("bg_verify(a wrong code)", bg_verify(wrong)) != BG_INVALID;
  bad |= show("bg_verify(the right one, after the wrong)", bg_verify(code)) != BG_NO_PENDING_OTP;
  bg_configure("otp_ttl_seconds", "1");
  bg_generate(code, sizeof code);
  sleep(2);
  bad |= show("bg_verify(right code, 2 s after a 1 s TTL)", bg_verify(code)) != BG_EXPIRED;
  bg_configure("otp_ttl_seconds", NULL);
  bad |= show("bg_verify(NULL)", bg_verify(NULL)) != BG_ERR_NULL;
  bad |= show("bg_verify(\"12345\")", bg_verify("12345")) != BG_NO_PENDING_OTP;

  printf("\nbreak-glass login succeeded: raise the alarm\n");
  bad |= show("bg_alert(\"203.0.113.7\")", bg_alert("203.0.113.7")) != BG_OK;
  bad |= show("bg_flush(15000)", bg_flush(15000)) != BG_OK;

  bg_stats s;
  bg_get_stats(&s);
  printf("\nstats: queued=%llu emails_sent=%llu emails_failed=%llu webhooks_sent=%llu "
         "webhooks_failed=%llu dropped=%llu\n",
         (unsigned long long)s.queued, (unsigned long long)s.emails_sent,
         (unsigned long long)s.emails_failed, (unsigned long long)s.webhooks_sent,
         (unsigned long long)s.webhooks_failed, (unsigned long long)s.dropped);
  printf("messages are in %s\n", outbox);
  bg_set_logger(NULL, NULL, 2);
  return bad ? 1 : 0;
}
