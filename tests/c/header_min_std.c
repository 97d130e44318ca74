/*
 * The header at its stated minimum: compiled as C99 and as C++11 (make test-c), included twice
 * to check the include guard, using every type it declares.
 */
#include "breakglass.h"
#include "breakglass.h"

#include <stdio.h>

static void on_log(int32_t level, const char *message, void *user_data) {
  (void)level;
  (void)message;
  (void)user_data;
}

int main(void) {
  bg_stats stats;
  bg_log_fn log_fn = on_log;
  int32_t status = BG_OK;
  char code[BG_OTP_BUF_LEN];
  (void)log_fn;
  if (bg_generate(code, sizeof code) != BG_OK) return 1;
  status = bg_verify(code);
  if (status != BG_OK || bg_get_stats(&stats) != BG_OK) return 1;
  printf("header_min_std: %s %s\n", BREAKGLASS_VERSION, bg_status_str(status));
  return 0;
}
