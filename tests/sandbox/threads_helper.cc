// A static test program for the ptrace sandbox: 8 threads open, read and stat files at once, so the
// tracer rewrites paths of several threads concurrently (each thread has its own scratch area).
// Prints "bad=N" (N wrong reads) and exits non-zero when N > 0.
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
static int bad;
static void* work(void* arg) {
  long id = reinterpret_cast<intptr_t>(arg);
  char path[64], buf[64];
  for (int i = 0; i < 300; i++) {
    snprintf(path, sizeof path, "/data/f%ld", id % 4);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED); continue; }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    char want[16]; snprintf(want, sizeof want, "f%ld\n", id % 4);
    if (strcmp(buf, want) != 0) __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
    struct stat st;
    if (stat(path, &st) != 0) __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}
int main(void) {
  pthread_t t[8];
  for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, work, reinterpret_cast<void*>(i));
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  printf("bad=%d\n", bad);
  return bad != 0;
}
