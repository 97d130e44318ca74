/*
 * A fork-per-connection login server, the way sshd serves one: the parent configures the
 * library once (bg_configure_from_env, so BREAKGLASS_STATE_DIR or nothing), listens on
 * 127.0.0.1, and forks a child for each connection, which serves exactly one login step and
 * exits. tests/c/fork_server_test.py drives it; the limits must hold across all the children
 * (state_dir), and in-process state must be refused in them.
 *
 * Protocol, one line each way:
 *   BEGIN <ip> <password>\n      ->  <status number>\t<status name>\t<bg_last_error>\n
 *   COMPLETE <ip> <code>\n       ->  the same
 * <ip> is the client address the login step is made for (a front end's X-Forwarded-For, say),
 * so one driver can speak for many addresses. The listening port is printed on stdout.
 *
 * Bounded: the parent exits after the lifetime given as argv[1] (seconds, default 120) and a
 * child after 30 s; nothing listens beyond 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "breakglass.h"

static void die(const char *what) {
  perror(what);
  exit(2);
}

/* Reads one line (without its newline) of at most len-1 bytes; -1 on EOF or error. */
static int read_line(int fd, char *buf, size_t len) {
  size_t n = 0;
  while (n + 1 < len) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return -1;
    }
    if (c == '\n') {
      break;
    }
    buf[n++] = c;
  }
  buf[n] = '\0';
  return 0;
}

static void write_all(int fd, const char *text) {
  size_t left = strlen(text);
  while (left > 0) {
    ssize_t w = write(fd, text, left);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return;
    }
    text += w;
    left -= (size_t)w;
  }
}

/* One login step in a child process. */
static void serve(int conn) {
  char line[512];
  char reply[1024];
  char error[512];
  char token[BG_SESSION_TOKEN_BUF_LEN];
  bg_status st;
  alarm(30);
  if (read_line(conn, line, sizeof line) != 0) {
    return;
  }
  char *save = NULL;
  char *verb = strtok_r(line, " ", &save);
  char *ip = strtok_r(NULL, " ", &save);
  char *arg = strtok_r(NULL, "", &save);
  if (verb == NULL || ip == NULL || arg == NULL) {
    write_all(conn, "-1 usage BEGIN|COMPLETE ip argument\n");
    return;
  }
  if (strcmp(verb, "BEGIN") == 0) {
    st = bg_login_begin(ip, arg);
  } else if (strcmp(verb, "COMPLETE") == 0) {
    st = bg_login_complete(ip, arg, token, sizeof token);
  } else {
    write_all(conn, "-1 usage BEGIN|COMPLETE ip argument\n");
    return;
  }
  error[0] = '\0';
  if (st != BG_OK) {
    bg_last_error(error, sizeof error);
  }
  /* The code email leaves through this process's queue: send it before the child exits. */
  bg_flush(10000);
  snprintf(reply, sizeof reply, "%d\t%s\t%s\n", (int)st, bg_status_str(st), error);
  write_all(conn, reply);
}

int main(int argc, char **argv) {
  unsigned lifetime = argc > 1 ? (unsigned)atoi(argv[1]) : 120;
  bg_status st = bg_configure_from_env();
  if (st != BG_OK) {
    char error[512] = "";
    bg_last_error(error, sizeof error);
    fprintf(stderr, "fork_server: configure: %s: %s\n", bg_status_str(st), error);
    return 2;
  }
  int lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lsock < 0) {
    die("socket");
  }
  int one = 1;
  setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(lsock, (struct sockaddr *)&addr, sizeof addr) != 0) {
    die("bind");
  }
  if (listen(lsock, 128) != 0) {
    die("listen");
  }
  socklen_t alen = sizeof addr;
  if (getsockname(lsock, (struct sockaddr *)&addr, &alen) != 0) {
    die("getsockname");
  }
  printf("%u\n", (unsigned)ntohs(addr.sin_port));
  fflush(stdout);
  alarm(lifetime);
  for (;;) {
    int conn = accept(lsock, NULL, NULL);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      die("accept");
    }
    pid_t pid = fork();
    if (pid < 0) {
      die("fork");
    }
    if (pid == 0) {
      close(lsock);
      serve(conn);
      close(conn);
      _exit(0);
    }
    close(conn);
  }
}
