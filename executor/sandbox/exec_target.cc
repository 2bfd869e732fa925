#include "executor/sandbox/exec_target.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace kiln::sandbox::internal {

std::optional<ExecTarget> InspectExecutable(const std::string& host_path) {
  int fd = ::open(host_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char head[4096];
  ssize_t n = ::pread(fd, head, sizeof head, 0);
  ExecTarget t;
  if (n >= 2 && head[0] == '#' && head[1] == '!') {
    std::string line(head + 2, static_cast<size_t>(std::min<ssize_t>(n, 256) - 2));
    line = line.substr(0, line.find('\n'));
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) {
      ::close(fd);
      return std::nullopt;
    }
    size_t e = line.find_first_of(" \t", b);
    t.script = true;
    t.interpreter = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (e != std::string::npos) {
      size_t ab = line.find_first_not_of(" \t", e);
      size_t ae = line.find_last_not_of(" \t\r");
      if (ab != std::string::npos && ae >= ab) t.script_arg = line.substr(ab, ae - ab + 1);
    }
    ::close(fd);
    return t;
  }
  if (n >= static_cast<ssize_t>(sizeof(Elf64_Ehdr)) && std::memcmp(head, ELFMAG, SELFMAG) == 0 &&
      head[EI_CLASS] == ELFCLASS64) {
    Elf64_Ehdr eh;
    std::memcpy(&eh, head, sizeof eh);
    for (int i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      if (::pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) != sizeof ph) break;
      if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) continue;
      std::string interp(ph.p_filesz, '\0');
      if (::pread(fd, interp.data(), interp.size(), static_cast<off_t>(ph.p_offset)) != static_cast<ssize_t>(interp.size())) break;
      interp.resize(::strnlen(interp.c_str(), interp.size()));
      t.interpreter = interp;
      break;
    }
  }
  ::close(fd);
  return t;
}

}  // namespace kiln::sandbox::internal
