/*
 * Time to dlopen libbreakglass and make the first call (bg_generate), in a fresh process.
 * Usage: footprint /path/to/libbreakglass.so   prints "c_dlopen_first_call N us"
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

typedef int32_t (*generate_fn)(char *, size_t);

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  struct timespec t0, t1, t2;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  generate_fn gen;
  *(void **)(&gen) = dlsym(h, "bg_generate");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  char code[7];
  if (!gen || gen(code, sizeof code) != 0) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t2);
  double a = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
  double b = (double)(t2.tv_sec - t0.tv_sec) * 1e6 + (double)(t2.tv_nsec - t0.tv_nsec) / 1e3;
  printf("%.1f %.1f\n", a, b);
  return 0;
}
