// A temporary directory removed (recursively) when the object goes out of scope.
#pragma once

#include <string>

namespace kiln::testing {

class TempDir {
 public:
  /// Creates a fresh directory under $TMPDIR (or /tmp). Aborts the test binary if that fails.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// path() + "/" + rel.
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

/// Writes `content` to `path` (creating parent directories). Aborts on failure.
void WriteFile(const std::string& path, const std::string& content, int mode = 0644);
/// Reads a whole file. Aborts on failure.
std::string ReadFile(const std::string& path);
/// Runs a shell command, returns its exit status (as from system(3), decoded) and fills `output` with
/// stdout+stderr when non-null.
int RunShell(const std::string& command, std::string* output = nullptr);

}  // namespace kiln::testing
