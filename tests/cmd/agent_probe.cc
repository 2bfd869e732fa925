// A static program for the RUN --mount=type=ssh tests, run inside a busybox image: asks the agent
// at $SSH_AUTH_SOCK for its identities (SSH2_AGENTC_REQUEST_IDENTITIES) and prints
// "<count> key(s)" and each key's comment, one per line — what `ssh-add -l` would tell.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int ReadFull(int fd, unsigned char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return 0;
}

static uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

int main() {
  const char* path = getenv("SSH_AUTH_SOCK");
  if (path == nullptr) {
    fprintf(stderr, "SSH_AUTH_SOCK is not set\n");
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    perror("connect");
    return 3;
  }
  const unsigned char request[] = {0, 0, 0, 1, 11};
  if (write(fd, request, sizeof request) != sizeof request) return 4;
  unsigned char len[4];
  if (ReadFull(fd, len, 4) != 0) return 5;
  uint32_t n = Be32(len);
  if (n > (1u << 20)) return 6;
  unsigned char* body = static_cast<unsigned char*>(malloc(n));
  if (ReadFull(fd, body, n) != 0 || n < 5 || body[0] != 12) return 7;
  uint32_t count = Be32(body + 1);
  printf("%u key(s)\n", count);
  size_t off = 5;
  for (uint32_t i = 0; i < count; ++i) {
    if (off + 4 > n) return 8;
    off += 4 + Be32(body + off);  // the key blob
    if (off + 4 > n) return 8;
    uint32_t clen = Be32(body + off);
    off += 4;
    if (off + clen > n) return 8;
    printf("%.*s\n", static_cast<int>(clen), body + off);
    off += clen;
  }
  return 0;
}
