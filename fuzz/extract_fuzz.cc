// Fuzz target: a layer blob (gzip, zstd or plain tar, as a registry would serve it) extracted into a
// fresh rootfs. Beyond the sanitizers it asserts kiln's containment promise (layers/extract.h):
// after every input, the "outside" directory next to the rootfs is exactly as it was, and the
// parent directory holds nothing but the two. Anything else aborts, which libFuzzer records as a crash.
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <dirent.h>

#include "core/digest.h"
#include "core/io.h"
#include "layers/extract.h"
#include "layers/safe_path.h"

namespace {

std::string g_dir, g_rootfs, g_outside;
std::string g_outside_before;

// One line per entry below `path` (not following symlinks): name, type, mode, size, mtime, content.
std::string* g_listing = nullptr;
int ListEntry(const char* path, const struct stat* st, int, struct FTW*) {
  char line[512];
  std::snprintf(line, sizeof line, "%s %o %lld %lld %lld\n", path, st->st_mode, (long long)st->st_size,
                (long long)st->st_mtim.tv_sec, (long long)st->st_mtim.tv_nsec);
  *g_listing += line;
  if (S_ISREG(st->st_mode)) {
    int fd = ::open(path, O_RDONLY | O_NOFOLLOW);
    char buf[256];
    ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
    if (n > 0) g_listing->append(buf, static_cast<size_t>(n));
    if (fd >= 0) ::close(fd);
  }
  return 0;
}

std::string Listing(const std::string& root) {
  std::string out;
  g_listing = &out;
  ::nftw(root.c_str(), ListEntry, 16, FTW_PHYS);
  g_listing = nullptr;
  return out;
}

std::string Children(const std::string& dir) {
  std::string out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out += n + "\n";
    }
    ::closedir(d);
  }
  return out;
}

void Die(const char* what) {
  std::fprintf(stderr, "extract_fuzz: %s\n", what);
  std::abort();
}

void WriteSentinel(const std::string& path, const char* text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) Die("cannot write a sentinel file");
  std::fputs(text, f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/kiln-extract-fuzz-XXXXXX";
  if (::mkdtemp(base.data()) == nullptr) Die("mkdtemp failed");
  g_dir = base;
  g_rootfs = g_dir + "/rootfs";
  g_outside = g_dir + "/outside";
  if (::mkdir(g_outside.c_str(), 0755) != 0 || ::mkdir((g_outside + "/dir").c_str(), 0755) != 0) {
    Die("cannot make the sentinel tree");
  }
  WriteSentinel(g_outside + "/sentinel", "sentinel");
  WriteSentinel(g_outside + "/dir/victim", "victim");
  if (::symlink("../rootfs", (g_outside + "/link").c_str()) != 0) Die("cannot make the sentinel link");
  g_outside_before = Listing(g_outside);
  std::atexit([] {
    int fd = ::open("/", O_PATH | O_DIRECTORY);
    (void)kiln::layers::RemoveAllAt(fd, g_dir.substr(1));
    ::close(fd);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  if (::mkdir(g_rootfs.c_str(), 0755) != 0) Die("cannot make the rootfs");
  std::string bytes(reinterpret_cast<const char*>(data), size);
  layers::LayerExpectation expect;
  // The blob's true digest and size, as a manifest would promise them, so the whole layer applies.
  expect.digest = Sha256Of(bytes);
  expect.size = size;
  StringReader blob(std::move(bytes));
  layers::ExtractOptions options;
  options.create_device_nodes = false;        // never make real device nodes on the fuzzing host
  options.max_uncompressed_bytes = 64 << 20;  // decompression bombs stop here
  options.skip_paths = {"proc", "kiln/cache"};
  options.warn = [](std::string_view) {};
  // Both path resolvers: openat2 where the kernel has it, and the component-by-component fallback.
  options.resolve = (size & 1) != 0 ? layers::ResolveMode::kManual : layers::ResolveMode::kAuto;
  Result<layers::ExtractResult> r = layers::ExtractLayer(blob, expect, g_rootfs, options);
  if (std::getenv("KILN_FUZZ_DEBUG") != nullptr) {  // to see why a seed stops where it does
    std::fprintf(stderr, "extract: %s (%llu entries)\n", r.ok() ? "ok" : r.status().message().c_str(),
                 r.ok() ? static_cast<unsigned long long>(r->entries) : 0ULL);
  }

  if (Listing(g_outside) != g_outside_before) Die("the directory next to the rootfs changed");
  if (Children(g_dir) != "outside\nrootfs\n" && Children(g_dir) != "rootfs\noutside\n") {
    Die("something was created next to the rootfs");
  }
  int fd = ::open(g_dir.c_str(), O_PATH | O_DIRECTORY);
  Status removed = layers::RemoveAllAt(fd, "rootfs");
  ::close(fd);
  if (!removed.ok()) Die("the rootfs could not be removed");
  return 0;
}
