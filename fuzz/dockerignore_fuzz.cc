// Fuzz target: .dockerignore (executor/dockerfile/dockerignore.h, glob.h). The input is the file as a
// build context carries it: read into patterns, compiled, and matched against context paths (and
// against its own lines, so that patterns meet paths that look like them); each line is also tried
// as a COPY source glob.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "executor/dockerfile/dockerignore.h"
#include "executor/dockerfile/glob.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::dockerfile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> patterns = ReadIgnorePatterns(text);
  static const char* const kPaths[] = {".", "Dockerfile", "a/b/c.txt", ".git/config", "node_modules/x/y.js",
                                       "dir", "dir/sub/file", "a b/[c]", "x*y", "\xff\xfe/z"};
  auto m = IgnoreMatcher::Create(patterns);
  if (m.ok()) {
    for (const char* p : kPaths) (void)m->Excluded(p);
    size_t n = 0;
    for (const std::string& p : patterns) {
      if (++n > 16) break;
      (void)m->Excluded(CleanPath(p));
    }
  }
  size_t n = 0;
  for (const std::string& p : patterns) {
    if (++n > 16) break;
    (void)CleanPath(p);
    for (const char* path : kPaths) (void)GlobMatch(p, path);
  }
  return 0;
}
